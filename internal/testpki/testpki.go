// Package testpki makes the throwaway keys, certificates and age identities
// tests need, so that each package's tests do not grow their own copies.
package testpki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// Key is a fresh ECDSA P-256 key.
func Key(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := sign.GenerateKey(topology.ECDSAP256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Root is a self-signed CA certificate for key, valid [nb, na].
func Root(t testing.TB, cn string, key crypto.Signer, nb, na time.Time) *x509.Certificate {
	t.Helper()
	c, err := sign.SignCertificate(sign.CertSpec{Subject: topology.Subject{CommonName: cn}, CA: true, NotBefore: nb, NotAfter: na}, key.Public(), nil, key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PEMPair is a fresh self-signed CA certificate valid through 2026 and its
// key, PEM-encoded.
func PEMPair(t testing.TB, cn string) (certPEM, keyPEM string) {
	t.Helper()
	k := Key(t)
	c := Root(t, cn, k, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(sign.EncodeCertsPEM(c)), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// AgeKey is a fresh age identity: its file, its recipient, and parsed.
type AgeKey struct {
	File      string
	Recipient string
	IDs       secrets.Identities
}

// NewAgeKey makes an age identity in a temporary file.
func NewAgeKey(t testing.TB) AgeKey {
	t.Helper()
	content, rcp, err := secrets.GenerateAgeKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "age.key")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := secrets.ParseIdentities(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return AgeKey{File: file, Recipient: rcp, IDs: ids}
}
