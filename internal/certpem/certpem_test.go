package certpem_test

import (
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/gitca-dev/gitca/internal/certpem"
	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	a, _ := testpki.PEMPair(t, "a")
	b, _ := testpki.PEMPair(t, "b")
	key := string(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}))
	junk := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	for _, tc := range []struct {
		name, data string
		max        int
		want       []string // common names
		err        string
	}{
		{name: "two in order", data: a + b, want: []string{"a", "b"}},
		{name: "max stops early, before a broken block", data: a + junk, max: 1, want: []string{"a"}},
		{name: "other blocks skipped", data: key + b, want: []string{"b"}},
		{name: "a broken block is named by its position among all blocks", data: key + a + junk, err: "PEM block 3 is not a valid certificate"},
		{name: "nothing", data: key, err: certpem.ErrNone.Error()},
		{name: "not PEM", data: "hello", err: certpem.ErrNone.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := certpem.Parse([]byte(tc.data), tc.max)
			if tc.err != "" {
				require.Error(t, err)
				assert.True(t, strings.Contains(err.Error(), tc.err), err.Error())
				return
			}
			require.NoError(t, err)
			var got []string
			for _, c := range certs {
				got = append(got, c.Subject.CommonName)
			}
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := certpem.Parse(nil, 0)
	assert.True(t, errors.Is(err, certpem.ErrNone))
}
