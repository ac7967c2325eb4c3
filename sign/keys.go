package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"

	"github.com/gitca-dev/gitca/topology"
)

// GenerateKey makes a new private key of the given algorithm. A nil r means crypto/rand.
//
// What r controls, as of Go 1.26: Ed25519 keys are derived from the first 32 bytes
// read from r, so a deterministic r gives a deterministic key. ECDSA and RSA key
// generation ignore r and always draw from the crypto packages' global source
// (unless GODEBUG=cryptocustomrand=1); tests that need reproducible ECDSA or RSA
// keys set that source with testing/cryptotest.SetGlobalRandom.
func GenerateKey(alg topology.KeyAlgorithm, r io.Reader) (crypto.Signer, error) {
	if r == nil {
		r = rand.Reader
	}
	switch alg {
	case topology.ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), r)
	case topology.ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), r)
	case topology.Ed25519:
		_, key, err := ed25519.GenerateKey(r)
		if err != nil {
			return nil, err
		}
		return key, nil
	case topology.RSA2048:
		return rsa.GenerateKey(r, 2048)
	case topology.RSA3072:
		return rsa.GenerateKey(r, 3072)
	case topology.RSA4096:
		return rsa.GenerateKey(r, 4096)
	}
	return nil, fmt.Errorf("unsupported key algorithm %q (supported: %v)", alg, topology.KeyAlgorithms)
}

// KeyAlgorithmOf names the algorithm of a public key, so the planner can tell when
// a stored key no longer matches the declared keyAlgorithm. Keys gitca cannot
// generate (P-521, RSA of other sizes, …) are an error rather than a near match,
// because re-keying is the only way to converge on them.
func KeyAlgorithmOf(pub crypto.PublicKey) (topology.KeyAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", fmt.Errorf("malformed ECDSA public key without a curve")
		}
		switch k.Curve {
		case elliptic.P256():
			return topology.ECDSAP256, nil
		case elliptic.P384():
			return topology.ECDSAP384, nil
		}
		return "", fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("malformed Ed25519 public key of %d bytes", len(k))
		}
		return topology.Ed25519, nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", fmt.Errorf("malformed RSA public key without a modulus")
		}
		// The modulus size is what "RSA-2048" means; the public exponent is not part of the name.
		switch bits := k.N.BitLen(); bits {
		case 2048:
			return topology.RSA2048, nil
		case 3072:
			return topology.RSA3072, nil
		case 4096:
			return topology.RSA4096, nil
		default:
			return "", fmt.Errorf("unsupported RSA key size %d bits", bits)
		}
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}

// KeyMatches reports whether pub is the public half of key, e.g. whether a stored
// certificate and private key belong together.
func KeyMatches(key crypto.Signer, pub crypto.PublicKey) bool {
	return key != nil && SamePublicKey(key.Public(), pub)
}

// SamePublicKey reports whether a and b are the same public key (every key
// type crypto/x509 parses has an Equal method).
func SamePublicKey(a, b crypto.PublicKey) bool {
	if a == nil || b == nil {
		return false
	}
	own, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && own.Equal(b)
}
