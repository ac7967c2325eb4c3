package sign_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
	"testing/cryptotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg   topology.KeyAlgorithm
		check func(t *testing.T, k crypto.Signer)
	}{
		{topology.ECDSAP256, ecCurve(elliptic.P256())},
		{topology.ECDSAP384, ecCurve(elliptic.P384())},
		{topology.Ed25519, func(t *testing.T, k crypto.Signer) { assert.IsType(t, ed25519.PrivateKey{}, k) }},
		{topology.RSA2048, rsaBits(2048)},
		{topology.RSA3072, rsaBits(3072)},
		{topology.RSA4096, rsaBits(4096)},
	}
	require.Len(t, tests, len(topology.KeyAlgorithms), "every declared algorithm is covered")
	for _, tc := range tests {
		t.Run(string(tc.alg), func(t *testing.T) {
			k, err := sign.GenerateKey(tc.alg, nil)
			require.NoError(t, err)
			tc.check(t, k)
			got, err := sign.KeyAlgorithmOf(k.Public())
			require.NoError(t, err)
			assert.Equal(t, tc.alg, got)
			assert.True(t, sign.KeyMatches(k, k.Public()))
			assert.False(t, sign.KeyMatches(k, cachedKey(t, tc.alg, 0).Public()), "a second key of the same algorithm differs")
		})
	}
}

func ecCurve(c elliptic.Curve) func(*testing.T, crypto.Signer) {
	return func(t *testing.T, k crypto.Signer) {
		ek, ok := k.(*ecdsa.PrivateKey)
		require.True(t, ok, "got %T", k)
		assert.Equal(t, c, ek.Curve)
	}
}

func rsaBits(n int) func(*testing.T, crypto.Signer) {
	return func(t *testing.T, k crypto.Signer) {
		rk, ok := k.(*rsa.PrivateKey)
		require.True(t, ok, "got %T", k)
		assert.Equal(t, n, rk.N.BitLen())
		assert.Equal(t, 65537, rk.E)
	}
}

func TestGenerateKeyUnsupported(t *testing.T) {
	for _, alg := range []topology.KeyAlgorithm{"", "ECDSA-P521", "RSA-1024", "ecdsa-p256"} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := sign.GenerateKey(alg, nil)
			require.ErrorContains(t, err, "unsupported key algorithm")
			assert.Nil(t, k)
		})
	}
}

// TestGenerateKeyRandomness pins down which algorithms follow r (see GenerateKey).
func TestGenerateKeyRandomness(t *testing.T) {
	t.Run("Ed25519 follows r", func(t *testing.T) {
		a, err := sign.GenerateKey(topology.Ed25519, seeded(1))
		require.NoError(t, err)
		b, err := sign.GenerateKey(topology.Ed25519, seeded(1))
		require.NoError(t, err)
		c, err := sign.GenerateKey(topology.Ed25519, seeded(2))
		require.NoError(t, err)
		assert.Equal(t, a, b)
		assert.NotEqual(t, a, c)
	})
	for _, alg := range []topology.KeyAlgorithm{topology.ECDSAP256, topology.RSA2048} {
		t.Run(string(alg)+" ignores r and follows the global source", func(t *testing.T) {
			a, err := sign.GenerateKey(alg, seeded(1))
			require.NoError(t, err)
			b, err := sign.GenerateKey(alg, seeded(1))
			require.NoError(t, err)
			assert.False(t, sign.KeyMatches(a, b.Public()))

			cryptotest.SetGlobalRandom(t, 9)
			a, err = sign.GenerateKey(alg, nil)
			require.NoError(t, err)
			cryptotest.SetGlobalRandom(t, 9)
			b, err = sign.GenerateKey(alg, nil)
			require.NoError(t, err)
			assert.True(t, sign.KeyMatches(a, b.Public()))
		})
	}
}

func TestKeyAlgorithmOfUnsupported(t *testing.T) {
	p521, err := ecdsa.GenerateKey(elliptic.P521(), crand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(crand.Reader, 1024)
	require.NoError(t, err)
	tests := []struct {
		name    string
		pub     crypto.PublicKey
		wantErr string
	}{
		{"P-521", &p521.PublicKey, "unsupported ECDSA curve P-521"},
		{"RSA-1024", &rsa1024.PublicKey, "unsupported RSA key size 1024"},
		{"RSA-2047", &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 2046), E: 65537}, "unsupported RSA key size 2047"},
		{"private key instead of public", cachedKey(t, topology.ECDSAP256, 0), "unsupported public key type"},
		{"nil", nil, "unsupported public key type"},
		{"nil RSA", (*rsa.PublicKey)(nil), "malformed RSA"},
		{"nil ECDSA", (*ecdsa.PublicKey)(nil), "malformed ECDSA"},
		{"short Ed25519", ed25519.PublicKey{1, 2, 3}, "malformed Ed25519"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alg, err := sign.KeyAlgorithmOf(tc.pub)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Empty(t, alg)
		})
	}
}

func TestKeyMatches(t *testing.T) {
	p256a := cachedKey(t, topology.ECDSAP256, 0)
	p256b := cachedKey(t, topology.ECDSAP256, 1)
	ed := cachedKey(t, topology.Ed25519, 0)
	rsaKey := cachedKey(t, topology.RSA2048, 0)
	cert := selfSigned(t, rsaKey, caSpec("match", nil, years(1)))

	tests := []struct {
		name string
		key  crypto.Signer
		pub  crypto.PublicKey
		want bool
	}{
		{"own public key", p256a, p256a.Public(), true},
		{"public key parsed from a certificate", rsaKey, cert.PublicKey, true},
		{"Ed25519 own", ed, ed.Public(), true},
		{"other key, same curve", p256a, p256b.Public(), false},
		{"other algorithm", p256a, ed.Public(), false},
		{"RSA key against certificate of another", p256a, cert.PublicKey, false},
		{"nil key", nil, p256a.Public(), false},
		{"nil public key", p256a, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, sign.KeyMatches(tc.key, tc.pub))
		})
	}
}
