package secrets

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// testKey is one age identity written to a key file inside the test's temp dir.
type testKey struct {
	file      string
	recipient string
	ids       Identities
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	content, rcp, err := GenerateAgeKey(time.Now())
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "keys.txt")
	require.NoError(t, os.WriteFile(file, content, 0o600))
	ids, err := ParseIdentities(bytes.NewReader(content))
	require.NoError(t, err)
	return testKey{file: file, recipient: rcp, ids: ids}
}

// pemPair makes a fresh self-signed certificate and its key, PEM-encoded.
func pemPair(t testing.TB, cn string) (certPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// manifest is a Secret as the renderer writes it; the JSON tags are the ones
// sigs.k8s.io/yaml renders with (TestSealDocMatchesSeal).
type manifest struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
	Type       string `yaml:"type,omitempty" json:"type,omitempty"`
	Metadata   struct {
		Name        string            `yaml:"name" json:"name"`
		Namespace   string            `yaml:"namespace,omitempty" json:"namespace,omitempty"`
		Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
		Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	} `yaml:"metadata" json:"metadata"`
	StringData map[string]string `yaml:"stringData" json:"stringData"`
}

func (m manifest) yaml(t testing.TB) []byte {
	t.Helper()
	b, err := yaml.Marshal(m)
	require.NoError(t, err)
	return b
}

// tlsSecret is a kubernetes.io/tls Secret as the renderer writes it.
func tlsSecret(t testing.TB) manifest {
	t.Helper()
	caCrt, _ := pemPair(t, "demo-ca")
	crt, key := pemPair(t, "demo-apiserver")
	var m manifest
	m.APIVersion, m.Kind, m.Type = "v1", "Secret", "kubernetes.io/tls"
	m.Metadata.Name, m.Metadata.Namespace = "demo-apiserver", "kube-system"
	m.Metadata.Labels = map[string]string{"app.kubernetes.io/managed-by": "gitca"}
	m.Metadata.Annotations = map[string]string{
		"gitca.dev/spec-hash": "sha256:0123456789abcdef",
		"gitca.dev/object":    "Certificate/demo-apiserver",
	}
	m.StringData = map[string]string{"ca.crt": caCrt, "tls.crt": crt, "tls.key": key}
	return m
}

// caSecret has two private values, so that changing one can be seen to leave
// the other's ciphertext alone.
func caSecret(t testing.TB) manifest {
	t.Helper()
	m := tlsSecret(t)
	_, caKey := pemPair(t, "demo-ca")
	m.StringData["ca.key"] = caKey
	return m
}

func kubeconfigSecret(t testing.TB) manifest {
	t.Helper()
	crt, key := pemPair(t, "admin")
	var m manifest
	m.APIVersion, m.Kind = "v1", "Secret"
	m.Metadata.Name = "admin-kubeconfig"
	m.StringData = map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: " +
		b64(crt) + "\n    client-key-data: " + b64(key) + "\n"}
	return m
}

func saKeySecret(t testing.TB) manifest {
	t.Helper()
	_, key := pemPair(t, "sa")
	var m manifest
	m.APIVersion, m.Kind = "v1", "Secret"
	m.Metadata.Name = "sa"
	m.StringData = map[string]string{"sa.key": key, "sa.pub": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", "front-proxy-ca.key": key}
	return m
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// semantic parses YAML so that documents can be compared regardless of layout.
func semantic(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(b, &v))
	return v
}

// pemBody is the base64 body of a PEM block: what must never appear in a sealed file.
func pemBody(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

var encRe = regexp.MustCompile(`(?m)^\s*([\w.-]+): (ENC\[AES256_GCM,[^\]]+\])`)

// encValues maps each sealed key to its ciphertext.
func encValues(b []byte) map[string]string {
	out := map[string]string{}
	for _, m := range encRe.FindAllSubmatch(b, -1) {
		if string(m[1]) == "mac" { // the sops block's own MAC
			continue
		}
		out[string(m[1])] = string(m[2])
	}
	return out
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := newTestKey(t)
	other := newTestKey(t)
	for _, tc := range []struct {
		name      string
		m         manifest
		encrypted []string
	}{
		{"tls", tlsSecret(t), []string{"tls.key"}},
		{"ca", caSecret(t), []string{"ca.key", "tls.key"}},
		{"kubeconfig", kubeconfigSecret(t), []string{"kubeconfig"}},
		{"sa key pair", saKeySecret(t), []string{"front-proxy-ca.key", "sa.key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := tc.m.yaml(t)
			sealed, err := Seal(plain, []string{k.recipient, other.recipient}, testNow)
			require.NoError(t, err)
			enc := encValues(sealed)
			var got []string
			for key := range enc {
				got = append(got, key)
			}
			assert.ElementsMatch(t, tc.encrypted, got, "exactly the private values are encrypted")

			for _, ids := range []Identities{k.ids, other.ids} {
				opened, err := Open(sealed, ids)
				require.NoError(t, err)
				assert.Equal(t, semantic(t, plain), semantic(t, opened))
			}
		})
	}
}

func TestSealKeepsPublicMaterialReadable(t *testing.T) {
	k := newTestKey(t)
	m := tlsSecret(t)
	sealed, err := Seal(m.yaml(t), []string{k.recipient}, testNow)
	require.NoError(t, err)
	s := string(sealed)

	// Certificates stay readable PEM, as block scalars.
	assert.Contains(t, s, "tls.crt: |")
	assert.Contains(t, s, "ca.crt: |")
	for _, l := range pemBody(m.StringData["tls.crt"]) {
		assert.Contains(t, s, l)
	}
	assert.Contains(t, s, "sha256:0123456789abcdef")
	assert.Contains(t, s, "Certificate/demo-apiserver")
	// The private key does not appear, not even one line of it.
	for _, l := range pemBody(m.StringData["tls.key"]) {
		assert.NotContains(t, s, l)
	}
	assert.NotContains(t, s, "PRIVATE KEY")

	// Still a Kubernetes object with a top-level sops block, as Flux expects.
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(sealed, &doc))
	assert.Equal(t, "Secret", doc["kind"])
	require.Contains(t, doc, "sops")
	sopsBlock := doc["sops"].(map[string]any)
	assert.Equal(t, EncryptedRegex, sopsBlock["encrypted_regex"])
	assert.NotContains(t, sopsBlock, "mac_only_encrypted", "the MAC covers every value")
}

func TestSealRejects(t *testing.T) {
	k := newTestKey(t)
	sealed, err := Seal(tlsSecret(t).yaml(t), []string{k.recipient}, testNow)
	require.NoError(t, err)
	for _, tc := range []struct {
		name       string
		plain      string
		recipients []string
		want       string
	}{
		{"no recipients", "a: b\n", nil, "no age recipients"},
		{"blank recipients", "a: b\n", []string{" ", ""}, "no age recipients"},
		{"bad recipient", "a: b\n", []string{"age1nope"}, "age recipient"},
		{"two documents", "a: b\n---\nc: d\n", []string{k.recipient}, "exactly one YAML document"},
		{"empty", "", []string{k.recipient}, "exactly one YAML document"},
		{"already sealed", string(sealed), []string{k.recipient}, "already sealed"},
		{"not YAML", "a: [\n", []string{k.recipient}, "parsing manifest"},
		{"duplicate keys", "a: b\na: c\n", []string{k.recipient}, "parsing manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Seal([]byte(tc.plain), tc.recipients, testNow)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestOpenDetectsTampering(t *testing.T) {
	k := newTestKey(t)
	m := caSecret(t)
	sealed, err := Seal(m.yaml(t), []string{k.recipient}, testNow)
	require.NoError(t, err)
	enc := encValues(sealed)
	flip := func(s string) string {
		// Change one character of the ciphertext's data field.
		i := strings.Index(s, "data:") + len("data:")
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
	}{
		{"annotation value", func(s string) string {
			return strings.Replace(s, "sha256:0123456789abcdef", "sha256:0123456789abcdee", 1)
		}},
		{"label value", func(s string) string { return strings.Replace(s, "managed-by: gitca", "managed-by: someone", 1) }},
		{"certificate", func(s string) string {
			l := pemBody(m.StringData["tls.crt"])[1]
			return strings.Replace(s, l, strings.ToLower(l[:4])+l[4:], 1)
		}},
		// Not listed: renaming a readable key. The sops MAC hashes values
		// only (sops.Tree.Encrypt), so a renamed key with its value intact
		// passes; renaming an encrypted key fails, its path being the AAD.
		{"renamed encrypted key", func(s string) string { return strings.Replace(s, "ca.key:", "ca2.key:", 1) }},
		{"swapped ciphertexts", func(s string) string {
			s = strings.Replace(s, enc["ca.key"], "@@", 1)
			s = strings.Replace(s, enc["tls.key"], enc["ca.key"], 1)
			return strings.Replace(s, "@@", enc["tls.key"], 1)
		}},
		{"altered ciphertext", func(s string) string { return strings.Replace(s, enc["tls.key"], flip(enc["tls.key"]), 1) }},
		{"lastmodified", func(s string) string {
			return regexp.MustCompile(`lastmodified: "[^"]+"`).ReplaceAllString(s, `lastmodified: "2001-01-01T00:00:00Z"`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(string(sealed))
			require.NotEqual(t, string(sealed), edited, "the edit must change the file")
			_, err := Open([]byte(edited), k.ids)
			require.ErrorIs(t, err, ErrMACMismatch)
			for _, l := range pemBody(m.StringData["tls.key"]) {
				assert.NotContains(t, err.Error(), l, "the error names nothing secret")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	k := newTestKey(t)
	stranger := newTestKey(t)
	sealed, err := Seal(tlsSecret(t).yaml(t), []string{k.recipient}, testNow)
	require.NoError(t, err)

	_, err = Open(sealed, stranger.ids)
	require.ErrorIs(t, err, ErrNoMatchingIdentity)
	assert.Contains(t, err.Error(), k.recipient, "names the recipients that could open it")

	_, err = Open(sealed, Identities{})
	require.ErrorIs(t, err, ErrNoMatchingIdentity)

	_, err = Open(tlsSecret(t).yaml(t), k.ids)
	require.ErrorIs(t, err, ErrNotSealed)
}

func TestReseal(t *testing.T) {
	k := newTestKey(t)
	sealAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := caSecret(t)
	prev, err := Seal(m.yaml(t), []string{k.recipient}, sealAt)
	require.NoError(t, err)
	prevEnc := encValues(prev)
	require.Len(t, prevEnc, 2)

	t.Run("unchanged plaintext returns prev", func(t *testing.T) {
		sealAt := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		out, err := Reseal(m.yaml(t), prev, []string{k.recipient}, k.ids, sealAt)
		require.NoError(t, err)
		assert.Equal(t, string(prev), string(out))
	})

	t.Run("readable value changed: every ciphertext kept", func(t *testing.T) {
		sealAt := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		m2 := m
		m2.Metadata.Annotations = map[string]string{"gitca.dev/spec-hash": "sha256:new", "gitca.dev/object": "Certificate/demo-apiserver"}
		crt, _ := pemPair(t, "renewed")
		m2.StringData = map[string]string{"ca.crt": m.StringData["ca.crt"], "ca.key": m.StringData["ca.key"], "tls.crt": crt, "tls.key": m.StringData["tls.key"]}
		out, err := Reseal(m2.yaml(t), prev, []string{k.recipient}, k.ids, sealAt)
		require.NoError(t, err)
		assert.Equal(t, prevEnc, encValues(out))
		assert.Equal(t, sopsAgeBlock(t, prev), sopsAgeBlock(t, out), "same data key, same wrapped key")
		opened, err := Open(out, k.ids)
		require.NoError(t, err)
		assert.Equal(t, semantic(t, m2.yaml(t)), semantic(t, opened))
		md, err := ReadMetadata(out)
		require.NoError(t, err)
		assert.Equal(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), md.LastModified)
	})

	t.Run("one private value changed: only its ciphertext changes", func(t *testing.T) {
		sealAt := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
		_, newKey := pemPair(t, "rekeyed")
		m2 := m
		m2.StringData = map[string]string{"ca.crt": m.StringData["ca.crt"], "ca.key": m.StringData["ca.key"], "tls.crt": m.StringData["tls.crt"], "tls.key": newKey}
		out, err := Reseal(m2.yaml(t), prev, []string{k.recipient}, k.ids, sealAt)
		require.NoError(t, err)
		got := encValues(out)
		assert.Equal(t, prevEnc["ca.key"], got["ca.key"])
		assert.NotEqual(t, prevEnc["tls.key"], got["tls.key"])
		opened, err := Open(out, k.ids)
		require.NoError(t, err)
		assert.Equal(t, semantic(t, m2.yaml(t)), semantic(t, opened))
		// Only the changed value's lines and the sops MAC/lastmodified differ.
		assert.Equal(t, []string{"tls.key", "lastmodified", "mac"}, changedKeys(string(prev), string(out)))
	})

	t.Run("recipients changed: new data key", func(t *testing.T) {
		added := newTestKey(t)
		out, err := Reseal(m.yaml(t), prev, []string{k.recipient, added.recipient}, k.ids, sealAt)
		require.NoError(t, err)
		got := encValues(out)
		assert.NotEqual(t, prevEnc["ca.key"], got["ca.key"])
		assert.NotEqual(t, prevEnc["tls.key"], got["tls.key"])
		for _, ids := range []Identities{k.ids, added.ids} {
			opened, err := Open(out, ids)
			require.NoError(t, err)
			assert.Equal(t, semantic(t, m.yaml(t)), semantic(t, opened))
		}
		md, err := ReadMetadata(out)
		require.NoError(t, err)
		assert.Equal(t, slices.Sorted(maps.Keys(map[string]bool{k.recipient: true, added.recipient: true})), md.Recipients)

		// Dropping a recipient also re-keys, so the dropped key cannot read what follows.
		out2, err := Reseal(m.yaml(t), out, []string{added.recipient}, added.ids, sealAt)
		require.NoError(t, err)
		_, err = Open(out2, k.ids)
		require.ErrorIs(t, err, ErrNoMatchingIdentity)
	})

	t.Run("identity that cannot open prev", func(t *testing.T) {
		stranger := newTestKey(t)
		_, err := Reseal(m.yaml(t), prev, []string{k.recipient}, stranger.ids, sealAt)
		require.ErrorIs(t, err, ErrNoMatchingIdentity)
	})

	t.Run("tampered prev is not trusted", func(t *testing.T) {
		bad := strings.Replace(string(prev), "sha256:0123456789abcdef", "sha256:x", 1)
		_, err := Reseal(m.yaml(t), []byte(bad), []string{k.recipient}, k.ids, sealAt)
		require.ErrorIs(t, err, ErrMACMismatch)
	})
}

// sopsAgeBlock returns the age stanzas of a sealed file.
func sopsAgeBlock(t *testing.T, b []byte) any {
	t.Helper()
	var doc struct {
		Sops struct {
			Age any `yaml:"age"`
		} `yaml:"sops"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	return doc.Sops.Age
}

// changedKeys names, in order, the YAML keys on lines that differ between two
// files of the same shape.
func changedKeys(a, b string) []string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range al {
		if i < len(bl) && al[i] != bl[i] {
			k, _, _ := strings.Cut(strings.TrimSpace(al[i]), ":")
			out = append(out, k)
		}
	}
	return out
}

func TestReadMetadata(t *testing.T) {
	k1, k2 := newTestKey(t), newTestKey(t)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	sealAt := at.Add(500 * time.Millisecond)
	sealed, err := Seal(tlsSecret(t).yaml(t), []string{k2.recipient, k1.recipient, k2.recipient}, sealAt)
	require.NoError(t, err)
	md, err := ReadMetadata(sealed)
	require.NoError(t, err)
	assert.Equal(t, slices.Sorted(maps.Keys(map[string]bool{k1.recipient: true, k2.recipient: true})), md.Recipients)
	assert.Equal(t, at, md.LastModified)
	assert.True(t, md.HasMAC)
	assert.Equal(t, EncryptedRegex, md.EncryptedRegex)
	assert.False(t, md.MACOnlyEncrypted)
	assert.NotEmpty(t, md.Version)

	_, err = ReadMetadata([]byte("apiVersion: v1\nkind: Secret\n"))
	require.ErrorIs(t, err, ErrNotSealed)
	_, err = ReadMetadata([]byte("a: [\n"))
	require.Error(t, err)
}

// sopsCLI returns the sops binary and an environment in which it finds only
// the given key file.
func sopsCLI(t *testing.T, keyFile string) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("sops")
	if err != nil {
		t.Skip("sops CLI not found: install with `make tools`")
	}
	home := t.TempDir()
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOPS_") && !strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "XDG_CONFIG_HOME=") {
			env = append(env, e)
		}
	}
	env = append(env, "SOPS_DISABLE_VERSION_CHECK=1", "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	if keyFile != "" {
		env = append(env, "SOPS_AGE_KEY_FILE="+keyFile)
	}
	return bin, env
}

func runSops(t *testing.T, bin string, env []string, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = env, dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "sops %v: %s", args, stderr.String())
	return out
}

func TestSopsCLIDecryptsSealed(t *testing.T) {
	k := newTestKey(t)
	bin, env := sopsCLI(t, k.file)
	dir := t.TempDir()
	m := caSecret(t)
	sealed, err := Seal(m.yaml(t), []string{k.recipient}, testNow)
	require.NoError(t, err)
	m2 := m
	m2.Metadata.Annotations = map[string]string{"gitca.dev/spec-hash": "sha256:changed"}
	resealed, err := Reseal(m2.yaml(t), sealed, []string{k.recipient}, k.ids, testNow)
	require.NoError(t, err)

	for name, tc := range map[string]struct{ sealed, plain []byte }{
		"sealed":   {sealed, m.yaml(t)},
		"resealed": {resealed, m2.yaml(t)},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".yaml")
			require.NoError(t, os.WriteFile(p, tc.sealed, 0o600))
			out := runSops(t, bin, env, dir, "--decrypt", "--input-type", "yaml", "--output-type", "yaml", p)
			assert.Equal(t, semantic(t, tc.plain), semantic(t, out))
		})
	}

	t.Run("sops detects a hand edit too", func(t *testing.T) {
		p := filepath.Join(dir, "edited.yaml")
		require.NoError(t, os.WriteFile(p, bytes.Replace(sealed, []byte("demo-apiserver"), []byte("demo-apiserverx"), 1), 0o600))
		cmd := exec.Command(bin, "--decrypt", p)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), "MAC mismatch")
	})
}

func TestOpenReadsWhatSopsCLIWrites(t *testing.T) {
	k := newTestKey(t)
	bin, env := sopsCLI(t, k.file)
	dir := t.TempDir()

	t.Run("yaml manifest", func(t *testing.T) {
		m := tlsSecret(t)
		p := filepath.Join(dir, "secret.yaml")
		require.NoError(t, os.WriteFile(p, m.yaml(t), 0o600))
		sealed := runSops(t, bin, env, dir, "--encrypt", "--age", k.recipient, "--encrypted-regex", EncryptedRegex, p)
		opened, err := Open(sealed, k.ids)
		require.NoError(t, err)
		assert.Equal(t, semantic(t, m.yaml(t)), semantic(t, opened))
		md, err := ReadMetadata(sealed)
		require.NoError(t, err)
		assert.Equal(t, []string{k.recipient}, md.Recipients)
		assert.Equal(t, EncryptedRegex, md.EncryptedRegex)

		// A file sops wrote under the same rules can be resealed in place.
		same, err := Reseal(m.yaml(t), sealed, []string{k.recipient}, k.ids, testNow)
		require.NoError(t, err)
		assert.Equal(t, string(sealed), string(same))
	})

	t.Run("binary PEM key", func(t *testing.T) {
		_, key := pemPair(t, "imported")
		p := filepath.Join(dir, "root.key")
		require.NoError(t, os.WriteFile(p, []byte(key), 0o600))
		sealed := runSops(t, bin, env, dir, "--encrypt", "--age", k.recipient, "--input-type", "binary", "--output-type", "json", p)
		opened, err := Open(sealed, k.ids)
		require.NoError(t, err)
		assert.Equal(t, key, string(opened))
	})
}

// fastCorpus holds documents the fast paths must treat exactly as the sops
// YAML store does: gitca's manifests and every scalar-style corner case.
func fastCorpus(t *testing.T) map[string]string {
	docs := map[string]string{
		"tls":        string(tlsSecret(t).yaml(t)),
		"kubeconfig": string(kubeconfigSecret(t).yaml(t)),
		"sa":         string(saKeySecret(t).yaml(t)),
		"scalars": `a: yes
b: "on"
c: 1:20
c2: "1:20"
d: ""
e: "123"
f: 123
g: true
g2: "true"
h: null
i: ~
j: 1.5
j2: "1.5"
k: [1, "two", [3], {x: y}, null, ""]
l: {}
m: []
n: "multi\nline\n"
o: "  leading space"
p: "trailing space "
q: "tab\there"
r: "unicode ✓"
s: "#hash"
t2: "key: value"
u: '{"json": true}'
v: "- dash"
w: "line\n  indented\n"
x: "no trailing newline\nsecond"
y: "crlf\r\nline"
y2: "trailing spaces \nline  \n"
z: 0x1F
"1": numeric-looking key
nested: {deep: {tls.key: secret, ca.key: "", list: [a, b, {sa.key: k}]}}
NO: n
"<<": not a merge
`,
		"null key":   "~: tilde-key\n",
		"empty doc":  "",
		"null doc":   "---\n",
		"comments":   "# head\na: b # line\n# foot\n",
		"anchors":    "a: &x {b: c}\nd: *x\n",
		"timestamps": "t: 2001-12-14t21:59:43.10-05:00\n",
		"merge":      "a: &x {b: c}\nd:\n  <<: *x\n  e: f\n",
		"big int":    "n: 18446744073709551615\n",
	}
	return docs
}

func TestFastPathsMatchSopsStore(t *testing.T) {
	for name, doc := range fastCorpus(t) {
		t.Run(name, func(t *testing.T) {
			want, err := yamlStore.LoadPlainFile([]byte(doc))
			require.NoError(t, err)
			got, err := parseYAML([]byte(doc))
			require.NoError(t, err)
			assert.Equal(t, want, got, "same tree")

			wantOut, err := yamlStore.EmitPlainFile(want)
			require.NoError(t, err)
			gotOut, err := emitYAML(got)
			require.NoError(t, err)
			assert.Equal(t, string(wantOut), string(gotOut), "same bytes")
		})
	}
	// The corpus really exercises the fast path: these must not fall back.
	for _, name := range []string{"tls", "kubeconfig", "sa", "scalars", "null doc"} {
		_, err := fastParseYAML([]byte(fastCorpus(t)[name]))
		assert.NoError(t, err, name)
	}
	for _, name := range []string{"comments", "anchors", "timestamps", "merge", "big int"} {
		_, err := fastParseYAML([]byte(fastCorpus(t)[name]))
		assert.ErrorIs(t, err, errSlowPath, name)
	}
}

func TestFastWalkersMatchSops(t *testing.T) {
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	md := newMetadata(nil, 0)
	load := func(doc string) *sops.Tree {
		b, err := yamlStore.LoadPlainFile([]byte(doc))
		require.NoError(t, err)
		return &sops.Tree{Branches: b, Metadata: md}
	}
	for name, doc := range fastCorpus(t) {
		if name == "comments" || name == "timestamps" || name == "big int" || name == "null key" {
			continue // not fast trees: both sides run sops' own walker
		}
		t.Run(name, func(t *testing.T) {
			require.True(t, fastTree(load(doc).Branches))
			// Ours encrypts, sops decrypts: same MAC, same values.
			mine := load(doc)
			mac, err := encryptTree(mine, key, aes.NewCipher())
			require.NoError(t, err)
			macBack, err := mine.Decrypt(key, aes.NewCipher())
			require.NoError(t, err)
			assert.Equal(t, mac, macBack)
			assert.Equal(t, load(doc).Branches, mine.Branches)

			// Sops encrypts, ours decrypts.
			theirs := load(doc)
			mac, err = theirs.Encrypt(key, aes.NewCipher())
			require.NoError(t, err)
			macBack, err = decryptValues(theirs, key, aes.NewCipher())
			require.NoError(t, err)
			assert.Equal(t, mac, macBack)
			assert.Equal(t, load(doc).Branches, theirs.Branches)
		})
	}
}

// TestSealedSurvivesKustomizeBuild follows Flux's kustomize-controller, which
// builds the overlay first and decrypts the built Secrets afterwards. Kustomize
// re-sorts the fields, which breaks the order-sensitive sops MAC; Flux
// therefore decrypts with the MAC check off (its decryptor's checkSopsMac is
// false by default). What must hold is that the sops block survives and every
// value still decrypts, its path (the AAD) being unchanged by reordering.
func TestSealedSurvivesKustomizeBuild(t *testing.T) {
	k := newTestKey(t)
	m := caSecret(t)
	sealed, err := Seal(m.yaml(t), []string{k.recipient}, testNow)
	require.NoError(t, err)

	fs := filesys.MakeFsInMemory()
	require.NoError(t, fs.MkdirAll("/overlay"))
	require.NoError(t, fs.WriteFile("/overlay/secret.yaml", sealed))
	require.NoError(t, fs.WriteFile("/overlay/kustomization.yaml", []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- secret.yaml\n")))
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/overlay")
	require.NoError(t, err)
	require.Equal(t, 1, resMap.Size())
	built, err := resMap.Resources()[0].AsYAML()
	require.NoError(t, err)

	// As Flux does: sops' own tree decryption, MAC not checked.
	tree, err := loadSealed(built)
	require.NoError(t, err)
	svc := keyservice.NewCustomLocalClient(identityService(k.ids))
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{svc}, nil)
	require.NoError(t, err)
	_, err = tree.Decrypt(key, aes.NewCipher())
	require.NoError(t, err)
	out, err := yamlStore.EmitPlainFile(tree.Branches)
	require.NoError(t, err)
	assert.Equal(t, semantic(t, m.yaml(t)), semantic(t, out))
}

// TestConcurrentUse: the renderer seals and opens from many goroutines at
// once; run with -race (make test) this checks nothing is shared unsafely.
func TestConcurrentUse(t *testing.T) {
	k := newTestKey(t)
	plain := tlsSecret(t).yaml(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			sealed, err := Seal(plain, []string{k.recipient}, testNow)
			if err == nil {
				_, err = Open(sealed, k.ids)
			}
			if err == nil {
				_, err = Reseal(plain, sealed, []string{k.recipient}, k.ids, testNow)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// testNow stamps sops' lastmodified in tests that do not look at it.
var testNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
