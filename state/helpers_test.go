package state

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/secrets"
)

type testKey struct {
	file      string
	recipient string
	ids       secrets.Identities
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	content, rcp, err := secrets.GenerateAgeKey(time.Now())
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "keys.txt")
	require.NoError(t, os.WriteFile(file, content, 0o600))
	ids, err := secrets.ParseIdentities(bytes.NewReader(content))
	require.NoError(t, err)
	return testKey{file: file, recipient: rcp, ids: ids}
}

// pemPair makes a fresh self-signed certificate and its key, PEM-encoded.
func pemPair(t testing.TB, cn string) (certPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// sealedTLSSecret is a kubernetes.io/tls Secret record as the renderer seals it.
func sealedTLSSecret(t testing.TB, k testKey) []byte {
	t.Helper()
	crt, key := pemPair(t, "demo-apiserver")
	doc := secrets.Doc{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": secrets.Doc{"name": "demo-apiserver", "namespace": "kube-system",
			"annotations": map[string]string{AnnotationObject: "Certificate/demo-apiserver", AnnotationRole: RolePrimary}},
		"stringData": map[string]string{"ca.crt": crt, "tls.crt": crt, "tls.key": key},
	}
	sealed, err := secrets.SealDoc(doc, []string{k.recipient}, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	return sealed
}
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pemBody is the base64 lines of a PEM block, without its markers.
func pemBody(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}
