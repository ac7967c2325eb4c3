package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
)

// verifyJWT checks a compact JWS's signature against the public key in pubFile.
func verifyJWT(token, pubFile string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a compact JWS: %d parts", len(parts))
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return err
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	pub, err := readPublicKey(pubFile)
	if err != nil {
		return err
	}
	signed := []byte(parts[0] + "." + parts[1])
	digest := func(hf func() hash.Hash) []byte { d := hf(); d.Write(signed); return d.Sum(nil) }
	switch h.Alg {
	case "RS256", "RS384", "RS512":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s but sa.pub is %T", h.Alg, pub)
		}
		hs := map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}[h.Alg]
		return rsa.VerifyPKCS1v15(k, hs, digest(hs.New), sig)
	case "ES256", "ES384", "ES512":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s but sa.pub is %T", h.Alg, pub)
		}
		hf := map[string]func() hash.Hash{"ES256": sha256.New, "ES384": sha512.New384, "ES512": sha512.New}[h.Alg]
		n := len(sig) / 2
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, digest(hf), r, s) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case "EdDSA":
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s but sa.pub is %T", h.Alg, pub)
		}
		if !ed25519.Verify(k, signed, sig) {
			return errors.New("Ed25519 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported alg %q", h.Alg)
}
