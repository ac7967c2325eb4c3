package secrets

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadIdentitiesPrecedence(t *testing.T) {
	fileKey, envKey, defKey, extraKey := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	secretLine := func(k testKey) string {
		b, err := os.ReadFile(k.file)
		require.NoError(t, err)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
				return l
			}
		}
		t.Fatal("no secret line")
		return ""
	}
	// A config dir holding the sops default key file.
	cfg := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(cfg, "sops", "age"), 0o700))
	defContent, err := os.ReadFile(defKey.file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cfg, "sops", "age", "keys.txt"), defContent, 0o600))
	emptyCfg := t.TempDir()
	garbage := filepath.Join(t.TempDir(), "garbage.txt")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key\n"), 0o600))

	for _, tc := range []struct {
		name     string
		keyFile  string
		key      string
		cfgDir   string
		want     []string // recipients
		wantErr  error
		errParts []string
	}{
		{name: "key file wins over everything", keyFile: fileKey.file, key: secretLine(envKey), cfgDir: cfg, want: []string{fileKey.recipient}},
		{name: "SOPS_AGE_KEY wins over the default file", key: secretLine(envKey), cfgDir: cfg, want: []string{envKey.recipient}},
		{name: "SOPS_AGE_KEY with several identities on one line", key: secretLine(envKey) + " " + secretLine(extraKey), cfgDir: emptyCfg,
			want: slices.Sorted(maps.Keys(map[string]bool{envKey.recipient: true, extraKey.recipient: true}))},
		{name: "default file", cfgDir: cfg, want: []string{defKey.recipient}},
		{name: "nothing configured", cfgDir: emptyCfg, wantErr: ErrNoIdentity,
			errParts: []string{"SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY ", filepath.Join(emptyCfg, "sops", "age", "keys.txt")}},
		{name: "missing key file is an error, not a fallback", keyFile: filepath.Join(emptyCfg, "nope.txt"), cfgDir: cfg,
			errParts: []string{"SOPS_AGE_KEY_FILE", "no such file"}},
		{name: "unparseable key file", keyFile: garbage, cfgDir: cfg, errParts: []string{"SOPS_AGE_KEY_FILE", "line 1"}},
		{name: "unparseable SOPS_AGE_KEY", key: "AGE-SECRET-KEY-1BOGUS", cfgDir: cfg, errParts: []string{"SOPS_AGE_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOPS_AGE_KEY_FILE", tc.keyFile)
			t.Setenv("SOPS_AGE_KEY", tc.key)
			t.Setenv("XDG_CONFIG_HOME", tc.cfgDir)
			ids, err := LoadIdentities()
			if tc.want != nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, ids.Recipients())
				return
			}
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			for _, p := range tc.errParts {
				assert.Contains(t, err.Error(), p)
			}
			assert.NotContains(t, err.Error(), "AGE-SECRET-KEY-1", "an error never quotes a key")
		})
	}
}

func TestParseIdentities(t *testing.T) {
	a, b := newTestKey(t), newTestKey(t)
	ca, err := os.ReadFile(a.file)
	require.NoError(t, err)
	cb, err := os.ReadFile(b.file)
	require.NoError(t, err)

	ids, err := ParseIdentities(bytes.NewReader(append(append(ca, "\n\n   \n"...), cb...)))
	require.NoError(t, err)
	assert.Equal(t, 2, ids.Len())
	assert.Equal(t, slices.Sorted(maps.Keys(map[string]bool{a.recipient: true, b.recipient: true})), ids.Recipients())

	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "no identity"},
		{"comments only", "# created: now\n# public key: age1x\n", "no identity"},
		{"bad line", "# ok\n" + strings.Repeat("x", 20) + "AGE-SECRET-KEY-1SECRET\n", "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIdentities(strings.NewReader(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "SECRET\n")
			assert.NotContains(t, err.Error(), "1SECRET")
		})
	}
}

func TestIdentitiesNeverPrint(t *testing.T) {
	k := newTestKey(t)
	holder := struct {
		Name string
		IDs  Identities
		Ptr  *Identities
	}{"x", k.ids, &k.ids}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{k.ids, &k.ids, holder, &holder} {
			out := fmt.Sprintf(format, v)
			assert.NotContains(t, out, "AGE-SECRET-KEY", "%s of %T", format, v)
		}
	}
	assert.Equal(t, "<1 age identities>", k.ids.String())
}

func TestRecipientsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"", nil},
		{"age1a", []string{"age1a"}},
		{"age1a,age1b", []string{"age1a", "age1b"}},
		{" age1a , age1b\tage1c\nage1d ", []string{"age1a", "age1b", "age1c", "age1d"}},
		{"age1b,,age1a,age1b", []string{"age1b", "age1a"}},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("SOPS_AGE_RECIPIENTS", tc.env)
			assert.Equal(t, tc.want, RecipientsFromEnv())
		})
	}
}

func TestGenerateAgeKey(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Second)
	content, rcp, err := GenerateAgeKey(time.Now())
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
	require.Len(t, lines, 3)

	created, ok := strings.CutPrefix(lines[0], "# created: ")
	require.True(t, ok, lines[0])
	ts, err := time.Parse(time.RFC3339, created)
	require.NoError(t, err)
	assert.False(t, ts.Before(before))
	assert.Equal(t, "# public key: "+rcp, lines[1])

	id, err := age.ParseX25519Identity(lines[2])
	require.NoError(t, err)
	assert.Equal(t, rcp, id.Recipient().String())
	_, err = age.ParseX25519Recipient(rcp)
	require.NoError(t, err)

	other, rcp2, err := GenerateAgeKey(time.Now())
	require.NoError(t, err)
	assert.NotEqual(t, rcp, rcp2)
	assert.NotEqual(t, string(content), string(other))

	// The sops CLI accepts the file as SOPS_AGE_KEY_FILE.
	file := filepath.Join(t.TempDir(), "keys.txt")
	require.NoError(t, os.WriteFile(file, content, 0o600))
	bin, env := sopsCLI(t, file)
	sealed, err := Seal([]byte("stringData:\n  tls.key: hidden\n"), []string{rcp}, testNow)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "s.yaml")
	require.NoError(t, os.WriteFile(p, sealed, 0o600))
	out := runSops(t, bin, env, "", "--decrypt", "--extract", `["stringData"]["tls.key"]`, p)
	assert.Equal(t, "hidden", string(out))
}

func TestDefaultRecipients(t *testing.T) {
	key, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	ids := &Identities{}
	*ids, err = ParseIdentities(strings.NewReader(key.String()))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, env string
		ids       *Identities
		want      []string
		err       string
	}{
		{name: "the variable wins over the identity", env: other.Recipient().String(), ids: ids, want: []string{other.Recipient().String()}},
		{name: "no variable: the identity's own recipient", ids: ids, want: []string{key.Recipient().String()}},
		{name: "neither", want: nil},
		{name: "a secret key in the variable is refused, not echoed", env: other.String(), ids: ids, err: EnvAgeRecipients},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvAgeRecipients, tc.env)
			got, err := DefaultRecipients(tc.ids)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				assert.NotContains(t, err.Error(), other.String()[len("AGE-SECRET-KEY-1"):])
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
