package sign

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// The PEM parsers read what a repository holds (tls.crt, ca.crt, imported
// CA files, sealed keys once opened). They must never panic, and an error
// must never quote key material.

func pemSeeds(tb testing.TB) [][]byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return [][]byte{
		key,
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: sec1}),
		append(append([]byte{}, key...), key...),
		bytes.Replace(key, []byte("-----END"), []byte("\n-----BEGIN PRIVATE KEY-----\n-----END"), 1),
		[]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		[]byte("-----BEGIN CERTIFICATE-----\n" + strings.Repeat("A", 70000) + "\n-----END CERTIFICATE-----\n"),
		[]byte(strings.Repeat("-----BEGIN CERTIFICATE-----\n", 1000)),
		[]byte{},
		[]byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
		[]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMIIB\n-----END RSA PRIVATE KEY-----\n"),
		[]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"),
	}
}

func FuzzParseCertsPEM(f *testing.F) {
	for _, s := range pemSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		certs, err := ParseCertsPEM(in)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, s := range pemSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParsePrivateKeyPEM(in)
		if err != nil {
			for _, l := range strings.Split(string(in), "\n") {
				if len(l) >= 16 && strings.Contains(err.Error(), l) {
					t.Fatalf("the error quotes the input: %v", err)
				}
			}
			return
		}
		if k == nil || k.Public() == nil {
			t.Fatal("no error and no key")
		}
	})
}
