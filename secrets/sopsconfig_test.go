package secrets

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestSopsConfigGolden(t *testing.T) {
	rules := []CreationRule{
		{PathRegex: `^ca/`, Age: []string{"age1zzz", "age1aaa", "age1zzz", " "}},
		{PathRegex: `^clusters/prod/`, Age: []string{"age1prod", "age1aaa"}},
	}
	got := SopsConfig(rules)
	want, err := os.ReadFile("testdata/sops.yaml.golden")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	assert.Equal(t, string(got), string(SopsConfig(rules)), "deterministic")

	// Empty input is still a valid config.
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(SopsConfig(nil), &doc))
	assert.Equal(t, []any{}, doc["creation_rules"])
}

// TestSopsConfigDrivesSopsCLI checks the config by its effect: the sops CLI
// picks the rule by path and seals to that rule's recipients with gitca's
// encrypted_regex, and gitca opens the result.
func TestSopsConfigDrivesSopsCLI(t *testing.T) {
	ca, prod := newTestKey(t), newTestKey(t)
	bin, env := sopsCLI(t, ca.file)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".sops.yaml"), SopsConfig([]CreationRule{
		{PathRegex: `^ca/`, Age: []string{ca.recipient}},
		{PathRegex: `^clusters/prod/`, Age: []string{prod.recipient, ca.recipient}},
	}), 0o600))
	m := tlsSecret(t)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"ca/root.yaml", []string{ca.recipient}},
		{"clusters/prod/pki/web.yaml", slices.Sorted(maps.Keys(map[string]bool{prod.recipient: true, ca.recipient: true}))},
	} {
		t.Run(tc.path, func(t *testing.T) {
			p := filepath.Join(dir, filepath.FromSlash(tc.path))
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
			require.NoError(t, os.WriteFile(p, m.yaml(t), 0o600))
			sealed := runSops(t, bin, env, dir, "--encrypt", tc.path)
			md, err := ReadMetadata(sealed)
			require.NoError(t, err)
			assert.Equal(t, tc.want, md.Recipients)
			assert.Equal(t, EncryptedRegex, md.EncryptedRegex)
			assert.Len(t, encValues(sealed), 1, "only tls.key is encrypted")
			opened, err := Open(sealed, ca.ids)
			require.NoError(t, err)
			assert.Equal(t, semantic(t, m.yaml(t)), semantic(t, opened))
		})
	}
}
