package state

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScanPlaintextKeys(t *testing.T) {
	k := testpki.NewAgeKey(t)
	crt, key := testpki.PEMPair(t, "leaf")
	ageLine := ""
	content, err := os.ReadFile(k.File)
	require.NoError(t, err)
	for _, l := range strings.Split(string(content), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			ageLine = l
		}
	}
	rsaLike := strings.ReplaceAll(key, "PRIVATE KEY", "RSA PRIVATE KEY")
	indent := func(s string) string {
		return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
	}
	sealed := sealedTLSSecret(t, k)

	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []Finding
	}{
		{"plain manifest", map[string]string{"clusters/c/secret.yaml": "apiVersion: v1\nkind: Secret\nstringData:\n  tls.crt: |\n" + indent(crt) + "  tls.key: |\n" + indent(key)},
			[]Finding{{Path: "clusters/c/secret.yaml", Line: 6 + strings.Count(crt, "\n"), What: "PEM PRIVATE KEY"}}},
		{"bare PEM file, RSA label", map[string]string{"keys/a.pem": rsaLike},
			[]Finding{{Path: "keys/a.pem", Line: 1, What: "PEM RSA PRIVATE KEY"}}},
		{"escaped one-line string", map[string]string{"x.json": `{"k": "` + strings.ReplaceAll(key, "\n", `\n`) + `"}`},
			[]Finding{{Path: "x.json", Line: 1, What: "PEM PRIVATE KEY"}}},
		{"base64 in Secret data", map[string]string{"s.yaml": "kind: Secret\ndata:\n  tls.crt: " + b64(crt) + "\n  tls.key: " + b64(key) + "\n"},
			[]Finding{{Path: "s.yaml", Line: 4, What: "PEM PRIVATE KEY (base64)"}}},
		{"kubeconfig client-key-data", map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: " + b64(crt) + "\n    client-key-data: " + b64(key) + "\n"},
			[]Finding{{Path: "kubeconfig", Line: 7, What: "PEM PRIVATE KEY (base64)"}}},
		{"age identity", map[string]string{"notes.txt": "hello\n\nkey: " + ageLine + "\n"},
			[]Finding{{Path: "notes.txt", Line: 3, What: "age secret key"}}},
		{"two findings in two files, sorted", map[string]string{"b.txt": ageLine + "\n", "a/z.pem": key},
			[]Finding{{Path: "a/z.pem", Line: 1, What: "PEM PRIVATE KEY"}, {Path: "b.txt", Line: 1, What: "age secret key"}}},
		{"sealed files are clean", map[string]string{"clusters/c/secret.yaml": string(sealed)}, nil},
		{"certificates and public keys are fine", map[string]string{"ca.crt": crt, "sa.pub": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}, nil},
		{"a marker named in prose is not a key", map[string]string{"doc.md": "Paste the -----BEGIN PRIVATE KEY----- block here.\nAGE-SECRET-KEY-... goes in keys.txt\n"}, nil},
		{"base64 of a certificate", map[string]string{"c.yaml": "ca.crt: " + base64.StdEncoding.EncodeToString([]byte(crt)) + "\n"}, nil},
		{".git is skipped", map[string]string{".git/objects/leak": key, "ok.txt": "fine\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, c := range tc.files {
				full := filepath.Join(dir, filepath.FromSlash(p))
				require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o700))
				require.NoError(t, os.WriteFile(full, []byte(c), 0o600))
			}
			got, err := ScanPlaintextKeys(dir)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			for _, f := range got {
				s := f.String() + f.What + f.Path
				for _, l := range pemBody(key) {
					assert.NotContains(t, s, l, "a finding never carries the secret")
				}
				assert.NotContains(t, s, ageLine)
			}
		})
	}

	_, err = ScanPlaintextKeys(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
