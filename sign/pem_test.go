package sign_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

func TestPrivateKeyPEMRoundTrip(t *testing.T) {
	for _, alg := range topology.KeyAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			key := cachedKey(t, alg, 0)
			pemKey, err := sign.EncodePrivateKeyPEM(key)
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(pemKey, []byte("-----BEGIN PRIVATE KEY-----\n")), "PKCS#8")

			back, err := sign.ParsePrivateKeyPEM(pemKey)
			require.NoError(t, err)
			assert.True(t, sign.KeyMatches(back, key.Public()))
			again, err := sign.EncodePrivateKeyPEM(back)
			require.NoError(t, err)
			assert.Equal(t, pemKey, again, "encoding is stable across a round trip")

			// openssl reads the key and derives the same public key we encode.
			dir := t.TempDir()
			keyPath := writeTemp(t, dir, "tls.key", pemKey)
			pubPEM, err := sign.EncodePublicKeyPEM(key.Public())
			require.NoError(t, err)
			assert.Equal(t, string(pubPEM), runOpenSSL(t, "pkey", "-in", keyPath, "-pubout"))
			runOpenSSL(t, "pkey", "-pubin", "-in", writeTemp(t, dir, "sa.pub", pubPEM), "-noout")
		})
	}
}

// TestParseOpenSSLKeys reads keys in the three formats imported CAs arrive in,
// as the openssl CLI writes them.
func TestParseOpenSSLKeys(t *testing.T) {
	tests := []struct {
		name      string
		args      []string // openssl arguments; the key is written to -out
		wantBlock string
		wantAlg   topology.KeyAlgorithm
	}{
		{"SEC1 P-256 with EC PARAMETERS block", []string{"ecparam", "-name", "prime256v1", "-genkey"}, "EC PRIVATE KEY", topology.ECDSAP256},
		{"SEC1 P-384", []string{"ecparam", "-name", "secp384r1", "-genkey", "-noout"}, "EC PRIVATE KEY", topology.ECDSAP384},
		{"PKCS#1 RSA-2048", []string{"genrsa", "-traditional", "2048"}, "RSA PRIVATE KEY", topology.RSA2048},
		{"PKCS#8 RSA-3072", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"}, "PRIVATE KEY", topology.RSA3072},
		{"PKCS#8 P-256", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "PRIVATE KEY", topology.ECDSAP256},
		{"PKCS#8 Ed25519", []string{"genpkey", "-algorithm", "ed25519"}, "PRIVATE KEY", topology.Ed25519},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPath := filepath.Join(dir, "key.pem")
			// -out right after the command: genrsa wants its bit count last.
			runOpenSSL(t, append([]string{tc.args[0], "-out", keyPath}, tc.args[1:]...)...)
			data, err := os.ReadFile(keyPath)
			require.NoError(t, err)
			require.Contains(t, string(data), "-----BEGIN "+tc.wantBlock+"-----", "openssl wrote the format under test")

			key, err := sign.ParsePrivateKeyPEM(data)
			require.NoError(t, err)
			alg, err := sign.KeyAlgorithmOf(key.Public())
			require.NoError(t, err)
			assert.Equal(t, tc.wantAlg, alg)

			block, _ := pem.Decode([]byte(runOpenSSL(t, "pkey", "-in", keyPath, "-pubout")))
			require.NotNil(t, block)
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err)
			assert.True(t, sign.KeyMatches(key, pub), "parsed key is the one openssl made")
			assert.False(t, sign.KeyMatches(cachedKey(t, tc.wantAlg, 0), pub))
		})
	}
}

func TestParsePrivateKeyPEMErrors(t *testing.T) {
	dir := t.TempDir()
	pkcs8Enc := filepath.Join(dir, "enc8.pem")
	runOpenSSL(t, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret", "-out", pkcs8Enc)
	legacyEnc := filepath.Join(dir, "legacy.pem")
	runOpenSSL(t, "genrsa", "-traditional", "-aes128", "-passout", "pass:secret", "-out", legacyEnc, "2048")
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	k1, err := sign.EncodePrivateKeyPEM(cachedKey(t, topology.ECDSAP256, 0))
	require.NoError(t, err)
	k2, err := sign.EncodePrivateKeyPEM(cachedKey(t, topology.Ed25519, 0))
	require.NoError(t, err)
	cert := sign.EncodeCertsPEM(selfSigned(t, cachedKey(t, topology.ECDSAP256, 0), caSpec("c", nil, years(1))))
	// A PRIVATE KEY block whose body is a SEC1 key: valid base64, wrong structure.
	sec1Path := filepath.Join(dir, "sec1.pem")
	runOpenSSL(t, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", sec1Path)
	sec1Block, _ := pem.Decode(read(sec1Path))
	require.NotNil(t, sec1Block)
	mislabelled := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sec1Block.Bytes})

	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "no private key PEM block"},
		{"certificate only", cert, "no private key PEM block"},
		{"two keys", append(bytes.Clone(k1), k2...), "more than one private key"},
		{"PKCS#8 encrypted", read(pkcs8Enc), "passphrase-encrypted"},
		{"legacy encrypted PKCS#1", read(legacyEnc), "passphrase-encrypted"},
		{"mislabelled block", mislabelled, "PEM block 1 (PRIVATE KEY)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := sign.ParsePrivateKeyPEM(tc.data)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, k)
			// No line of key material may leak into an error that reaches a log.
			for _, line := range strings.Split(string(tc.data), "\n") {
				// Checked by hand so a failure does not print the line itself.
				if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
					t.Errorf("the error repeats a line of the PEM input")
				}
			}
		})
	}

	t.Run("a key next to a certificate is found", func(t *testing.T) {
		k, err := sign.ParsePrivateKeyPEM(append(bytes.Clone(cert), k1...))
		require.NoError(t, err)
		assert.True(t, sign.KeyMatches(k, cachedKey(t, topology.ECDSAP256, 0).Public()))
	})
}

func TestEncodePrivateKeyPEMErrors(t *testing.T) {
	_, err := sign.EncodePrivateKeyPEM(nil)
	require.Error(t, err)
}

func TestCertsPEM(t *testing.T) {
	key := cachedKey(t, topology.ECDSAP256, 0)
	a := selfSigned(t, key, caSpec("a", nil, years(1)))
	b := selfSigned(t, key, caSpec("b", nil, years(1)))
	c := selfSigned(t, cachedKey(t, topology.Ed25519, 0), caSpec("c", nil, years(1)))
	keyPEM, err := sign.EncodePrivateKeyPEM(key)
	require.NoError(t, err)

	bundle := sign.EncodeCertsPEM(a, nil, b, c)
	assert.Equal(t, 3, bytes.Count(bundle, []byte("-----BEGIN CERTIFICATE-----")), "nil entries are skipped")
	assert.Empty(t, sign.EncodeCertsPEM())

	// openssl sees the same three certificates.
	store := runOpenSSL(t, "storeutl", "-noout", "-certs", writeTemp(t, t.TempDir(), "bundle.pem", bundle))
	assert.Contains(t, store, "Total found: 3")

	corrupt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	tests := []struct {
		name    string
		data    []byte
		want    []string // subjects in order
		wantErr string
	}{
		{"bundle keeps order", bundle, []string{"a", "b", "c"}, ""},
		{"other blocks are skipped", append(append(bytes.Clone(keyPEM), bundle...), "trailing text\n"...), []string{"a", "b", "c"}, ""},
		{"empty", nil, nil, "no CERTIFICATE"},
		{"only a key", keyPEM, nil, "no CERTIFICATE"},
		{"corrupt certificate", append(sign.EncodeCertsPEM(a), corrupt...), nil, "PEM block 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := sign.ParseCertsPEM(tc.data)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Nil(t, certs)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, c := range certs {
				got = append(got, c.Subject.CommonName)
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, a.Raw, certs[0].Raw)
		})
	}
}

func TestFingerprints(t *testing.T) {
	key := cachedKey(t, topology.RSA2048, 0)
	a := selfSigned(t, key, caSpec("a", nil, years(1)))
	renewed := selfSigned(t, key, caSpec("a", nil, years(2)))

	dir := t.TempDir()
	path := writeTemp(t, dir, "a.crt", sign.EncodeCertsPEM(a))
	out := runOpenSSL(t, "x509", "-noout", "-fingerprint", "-sha256", "-in", path)
	_, hexColons, ok := strings.Cut(strings.TrimSpace(out), "=")
	require.True(t, ok, out)
	assert.Equal(t, "sha256:"+strings.ToLower(strings.ReplaceAll(hexColons, ":", "")), sign.Fingerprint(a))

	assert.NotEqual(t, sign.Fingerprint(a), sign.Fingerprint(renewed), "a renewal is a new certificate")
}

func TestEncodePublicKeyPEM(t *testing.T) {
	for _, alg := range topology.KeyAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			key := cachedKey(t, alg, 0)
			out, err := sign.EncodePublicKeyPEM(key.Public())
			require.NoError(t, err)
			block, rest := pem.Decode(out)
			require.NotNil(t, block)
			assert.Empty(t, rest)
			assert.Equal(t, "PUBLIC KEY", block.Type)
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err)
			assert.True(t, sign.KeyMatches(key, pub))
		})
	}
	_, err := sign.EncodePublicKeyPEM(cachedKey(t, topology.ECDSAP256, 0)) // a private key is not a public key
	require.Error(t, err)
}
