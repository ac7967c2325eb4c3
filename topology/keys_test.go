package topology

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testCert struct {
	pem []byte
	crt *x509.Certificate
	key *ecdsa.PrivateKey
}

// makeCert signs a certificate for cn with parent (self-signed when nil).
func makeCert(t *testing.T, cn string, parent *testCert, ca, basicConstraints bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: basicConstraints, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.crt
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	require.NoError(t, err)
	crt, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCert{pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), crt: crt, key: key}
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// keyBody is a line from the middle of a PEM key: no error may ever contain it.
func keyBody(k string) string { return strings.Split(k, "\n")[1] }

const importedCA = `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: imported
spec:
  import:
    certificate: ca.crt
    key: %s
`

const sopsStandIn = "tls.key: ENC[AES256_GCM,data:notreal,type:str]\nsops:\n  version: 3.13.3\n"

func TestImportedCAPlanTimeChecks(t *testing.T) {
	root := makeCert(t, "root", nil, true, true)
	inter := makeCert(t, "intermediate", root, true, true)
	leaf := makeCert(t, "leaf", root, false, true)
	noBC := makeCert(t, "no-bc", nil, true, false)
	// Subject equals issuer, but another key signed it: not a root either.
	impostor := makeCert(t, "root", root, true, true)
	key := keyPEM(t, root.key)

	for _, c := range []struct {
		name  string
		crt   string
		key   string            // spec.import.key; "" for an offline CA
		files map[string]string // more files
		want  []string          // none means it loads
	}{
		{name: "self-signed root with an encrypted key", crt: string(root.pem), key: "ca.key.sops.yaml", files: map[string]string{"ca.key.sops.yaml": sopsStandIn}},
		{name: "self-signed root, offline", crt: string(root.pem)},
		{name: "other PEM blocks before the certificate", crt: "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n" + string(root.pem)},
		{name: "sops binary JSON", crt: string(root.pem), key: "ca.sops.pem",
			files: map[string]string{"ca.sops.pem": `{"data": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "sops": {"version": "3.13.3"}}`}},
		{name: "intermediate", crt: string(inter.pem),
			want: []string{"ca.yaml:7:18: spec.import.certificate: ca.crt is not self-signed; only a root CA can be imported, not an intermediate (a self-signed root CA certificate; an intermediate is made by gitca (issuer: <its CA>))"}},
		{name: "same subject as the issuer, signed by another key", crt: string(impostor.pem), want: []string{"ca.crt is not self-signed"}},
		{name: "leaf", crt: string(leaf.pem), want: []string{"ca.yaml:7:18: spec.import.certificate: ca.crt is not a CA certificate (basicConstraints CA:TRUE required) (a self-signed root CA certificate)"}},
		{name: "no basic constraints", crt: string(noBC.pem), want: []string{"ca.crt is not a CA certificate (basicConstraints CA:TRUE required)"}},
		{name: "not PEM", crt: "hello\n", want: []string{"spec.import.certificate: ca.crt: no CERTIFICATE PEM block found"}},
		{name: "broken certificate", crt: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
			want: []string{"spec.import.certificate: ca.crt: PEM block 1 is not a valid certificate"}},
		{name: "plain PEM key", crt: string(root.pem), key: "ca.key", files: map[string]string{"ca.key": key},
			want: []string{
				"ca.key:1:1: plain private key (PEM EC PRIVATE KEY): a private key must never be committed unencrypted (encrypt it with sops and commit only the result: sops --encrypt --age <recipient> --input-type binary key.pem > key.sops.pem, or with the key under stringData.tls.key",
				"ca.yaml:8:10: spec.import.key: ca.key holds a plain private key (PEM EC PRIVATE KEY); it must be SOPS-encrypted (encrypt it with sops",
			}},
		{name: "plain manifest named like an encrypted one", crt: string(root.pem), key: "ca.key.sops.yaml",
			files: map[string]string{"ca.key.sops.yaml": "stringData:\n  tls.key: |\n    " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n    ") + "\n"},
			want:  []string{"ca.key.sops.yaml:3:1: plain private key (PEM EC PRIVATE KEY)", "spec.import.key: ca.key.sops.yaml holds a plain private key (PEM EC PRIVATE KEY); it must be SOPS-encrypted"}},
		{name: "neither plain nor encrypted", crt: string(root.pem), key: "ca.key.sops.yaml", files: map[string]string{"ca.key.sops.yaml": "tls.key: something\n"},
			want: []string{"ca.yaml:8:10: spec.import.key: ca.key.sops.yaml is not a SOPS-encrypted file (it has no top-level sops metadata) (encrypt it with sops"}},
		{name: "sops key that is not metadata", crt: string(root.pem), key: "k.sops.yaml", files: map[string]string{"k.sops.yaml": "sops: yes\n"},
			want: []string{"k.sops.yaml is not a SOPS-encrypted file"}},
		{name: "binary key file", crt: string(root.pem), key: "k.bin", files: map[string]string{"k.bin": "\x00\x01\x02"},
			want: []string{"k.bin is not a SOPS-encrypted file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"ca.crt": c.crt, "ca.yaml": strings.ReplaceAll(importedCA, "%s", c.key)}
			if c.key == "" {
				files["ca.yaml"] = strings.Replace(files["ca.yaml"], "    key: \n", "", 1)
			}
			for k, v := range c.files {
				files[k] = v
			}
			_, err := Load(writeTree(t, files))
			if len(c.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), keyBody(key), "an error never shows key material")
		})
	}
}

// The kubeadm preset's imported CA is held to the same checks, reported at the Preset.
func TestKubeadmImportedCAPlanTimeChecks(t *testing.T) {
	leaf := makeCert(t, "leaf", makeCert(t, "root", nil, true, true), false, true)
	dir := writeTree(t, map[string]string{
		"pki/ca.crt":           string(leaf.pem),
		"pki/ca.key.sops.yaml": sopsStandIn,
		"kubeadm.yaml":         kubeadmDoc("edge", "    ca: {certificate: pki/ca.crt, key: pki/ca.key.sops.yaml}\n"),
	})
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `kubeadm.yaml:5:1: spec.import.certificate: in CertificateAuthority "edge-ca" generated by Preset "edge": pki/ca.crt is not a CA certificate`)
}

// The command the error prints must make a file the loader (and the renderer) accepts.
func TestEncryptCommandIsAccepted(t *testing.T) {
	sops, err := exec.LookPath("sops")
	if err != nil {
		t.Skip("sops not installed")
	}
	root := makeCert(t, "root", nil, true, true)
	dir := writeTree(t, map[string]string{"ca.crt": string(root.pem), "ca.yaml": strings.ReplaceAll(importedCA, "%s", "key.sops.pem")})
	plain := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(plain, []byte(keyPEM(t, root.key)), 0o600))
	const recipient = "age1ya0s0sjqxh9n0wsx2umxmjn6dyju3mz438clkezgz6uaf6wxpfuqfca8xz"
	cmdline := strings.Fields(strings.TrimPrefix(encryptKeyHow[strings.Index(encryptKeyHow, "sops --encrypt"):strings.Index(encryptKeyHow, " > ")], "sops "))
	for i, a := range cmdline {
		cmdline[i] = strings.NewReplacer("<recipient>", recipient, "key.pem", plain).Replace(a)
	}
	cmd := exec.Command(sops, cmdline...)
	cmd.Env = append(os.Environ(), "SOPS_AGE_RECIPIENTS=")
	out, err := cmd.Output()
	require.NoError(t, err, "%v", cmdline)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.sops.pem"), out, 0o644))
	_, err = Load(dir)
	require.NoError(t, err)
}

func TestScanPlainKeys(t *testing.T) {
	k := makeCert(t, "k", nil, true, true)
	key := keyPEM(t, k.key)
	b64 := base64.StdEncoding.EncodeToString([]byte(key))
	const ageKey = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQ"
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string // whole error lines; none means nothing is found
	}{
		{name: "key next to the topology", files: map[string]string{"keys/ca.pem": key},
			want: []string{"keys/ca.pem:1:1: plain private key (PEM EC PRIVATE KEY)"}},
		{name: "key after other text", files: map[string]string{"README.md": "# PKI\n\nour key:\n\n" + key},
			want: []string{"README.md:5:1: plain private key (PEM EC PRIVATE KEY)"}},
		{name: "hidden directory", files: map[string]string{".ci/deploy.key": key}, want: []string{".ci/deploy.key:1:1: plain private key"}},
		{name: "base64 in a YAML value", files: map[string]string{"config.yaml": "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata:\n  annotations:\n    k: " + b64 + "\n"},
			want: []string{"config.yaml:5:1: plain private key (PEM EC PRIVATE KEY (base64))"}},
		{name: "age identity in notes", files: map[string]string{"notes.txt": "x\n" + ageKey + "\n"},
			want: []string{"notes.txt:2:1: plain age secret key: an age identity must never be committed (remove it and rotate it; gitca reads its identity from SOPS_AGE_KEY_FILE"}},
		{name: "inside .git", files: map[string]string{".git/key.pem": key}},
		{name: "sealed value", files: map[string]string{"k.sops.yaml": "tls.key: ENC[AES256_GCM,data:" + b64 + ",type:str]\nsops: {version: x}\n"}},
		{name: "marker only, no key", files: map[string]string{"README.md": "a key starts with -----BEGIN PRIVATE KEY----- and is never committed\n"}},
		{name: "certificate only", files: map[string]string{"ca.pem": string(k.pem)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.files["ca.yaml"] = doc(docCA, "ca")
			_, err := Load(writeTree(t, c.files))
			if len(c.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, strings.Split(err.Error(), "\n"), len(c.want), err.Error())
			for _, secret := range []string{keyBody(key), b64[20:60], ageKey[20:]} {
				assert.NotContains(t, err.Error(), secret, "an error never shows key material")
			}
		})
	}
}

func TestScanPlainKeysDoesNotFollowSymlinks(t *testing.T) {
	outside := t.TempDir()
	k := makeCert(t, "k", nil, true, true)
	require.NoError(t, os.WriteFile(filepath.Join(outside, "key.pem"), []byte(keyPEM(t, k.key)), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(outside, "dir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "dir", "key.pem"), []byte(keyPEM(t, k.key)), 0o600))
	dir := writeTree(t, map[string]string{"ca.yaml": doc(docCA, "ca")})
	require.NoError(t, os.Symlink(filepath.Join(outside, "key.pem"), filepath.Join(dir, "key.pem")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "dir"), filepath.Join(dir, "dir")))
	require.NoError(t, os.Remove(filepath.Join(dir, "dir")))
	_, err := Load(dir)
	require.NoError(t, err, "files outside the topology repo are not its business")

	// A link to a directory is an error of its own (its objects would be
	// missing); what is below it is still not read.
	require.NoError(t, os.Symlink(filepath.Join(outside, "dir"), filepath.Join(dir, "dir")))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("dir: symlink to a directory (%q) (a real directory: gitca does not follow links to directories)", filepath.Join(outside, "dir")), err.Error())
}

// Semantic errors and plain keys are reported together: neither hides the other.
func TestPlainKeysWithOtherErrors(t *testing.T) {
	k := makeCert(t, "k", nil, true, true)
	_, err := Load(writeTree(t, map[string]string{"key.pem": keyPEM(t, k.key), "c.yaml": doc(docCert, "c")}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "key.pem:1:1: plain private key")
	assert.Contains(t, err.Error(), `spec.issuer: issuer "ca" does not exist`)

	_, err = Load(writeTree(t, map[string]string{"key.pem": keyPEM(t, k.key)}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "key.pem:1:1: plain private key")
	assert.Contains(t, err.Error(), "declares no object")
}

func TestLoadRefusesFIFO(t *testing.T) {
	dir := writeTree(t, map[string]string{"ca.yaml": doc(docCA, "ca")})
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644))
	done := make(chan error, 1)
	go func() { _, err := Load(dir); done <- err }()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "pipe.yaml: not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
}

func TestTrustBundleFilePlanTimeChecks(t *testing.T) {
	a, b := makeCert(t, "a", nil, true, true), makeCert(t, "b", nil, true, true)
	const bundle = "apiVersion: gitca.dev/v1alpha1\nkind: TrustBundle\nmetadata: {name: tb}\nspec:\n  sources: [{file: cas.pem}]\n  configMap: {cluster: c}\n"
	for _, c := range []struct{ name, pem, want string }{
		{"two certificates", string(a.pem) + string(b.pem), ""},
		{"not PEM", "hello", "tb.yaml:5:20: spec.sources[0].file: cas.pem: no CERTIFICATE PEM block found (a PEM file of one or more CERTIFICATE blocks)"},
		{"only a key's public half", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cas.pem: no CERTIFICATE PEM block found"},
		{"second certificate broken", string(a.pem) + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cas.pem: PEM block 2 is not a valid certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeTree(t, map[string]string{"cas.pem": c.pem, "tb.yaml": bundle, "ca.yaml": doc(docCA, "ca")}))
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
