package topology

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "8760h", want: 8760 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "365d", want: 365 * 24 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "0d", want: 0},
		{in: "0", want: 0},
		{in: "-5d", want: -5 * 24 * time.Hour},
		{in: "-1h", want: -time.Hour},
		{in: " 30d ", want: 30 * 24 * time.Hour},
		{in: "8760", wantErr: `invalid duration "8760"`},
		{in: "1y", wantErr: `invalid duration "1y"`},
		{in: "1.5d", wantErr: `invalid duration "1.5d"`},
		{in: "d", wantErr: `invalid duration "d"`},
		{in: "1d12h", wantErr: `invalid duration "1d12h"`},
		{in: "", wantErr: `invalid duration ""`},
		{in: "999999999d", wantErr: `duration "999999999d" is out of range`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{8760 * time.Hour, "8760h"},
		{90 * time.Minute, "1h30m"},
		{30 * time.Minute, "30m"},
		{45 * time.Second, "45s"},
		{time.Hour + time.Second, "1h0m1s"},
		{0, "0s"},
		{-240 * time.Hour, "-240h"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, Duration{tc.in}.String())
		})
	}
}

func TestDurationRoundTrip(t *testing.T) {
	type holder struct {
		V *Duration `json:"v" yaml:"v"`
	}
	h := holder{V: NewDuration(30 * 24 * time.Hour)}

	js, err := json.Marshal(h)
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":"720h"}`, string(js))
	var back holder
	require.NoError(t, json.Unmarshal(js, &back))
	assert.Equal(t, h, back)

	ys, err := yaml.Marshal(h)
	require.NoError(t, err)
	assert.Equal(t, "v: 720h\n", string(ys))
	back = holder{}
	require.NoError(t, yaml.Unmarshal([]byte("v: 30d\n"), &back))
	assert.Equal(t, h, back)

	assert.Error(t, json.Unmarshal([]byte(`{"v":3600}`), &back), "a bare number has no unit")
	assert.Error(t, yaml.Unmarshal([]byte("v: [1h]\n"), &back))
}
