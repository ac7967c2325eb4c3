package apply

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// trust is what a CA's trust holds after the run: its certificate and,
// during a rotation, its other live generation's, in generation order. Every
// record it names is done before anything that trusts it is applied.
func (ap *Applier) trust(name string) ([]*x509.Certificate, []string) {
	return trustOf(ap.Plan, ap.material, name)
}

func trustOf(p *plan.Plan, material func(id string) *Material, name string) ([]*x509.Certificate, []string) {
	var out []*x509.Certificate
	for _, id := range p.TrustIDs(name) {
		if m := material(id); m != nil && m.Cert != nil {
			out = append(out, m.Cert)
		} else if a := p.Action(id); a != nil && a.Cert != nil {
			// Not applied yet, but kept: its certificate is the stored one.
			out = append(out, a.Cert)
		}
	}
	return out, nil
}

// caCerts is a record's ca.crt: the trust of the root of its chain, which
// holds both generations while the root rotates. A retired generation keeps
// its own root, since nothing verifies with it any more.
func (ap *Applier) caCerts(d *plan.Desired, m *Material) []*x509.Certificate {
	if ap.Plan.GenerationRole(d.ID) == plan.GenerationRetired {
		return []*x509.Certificate{m.Root()}
	}
	if certs, _ := ap.trust(ap.Plan.RootOf(d)); len(certs) > 0 {
		return certs
	}
	return []*x509.Certificate{m.Root()}
}

// keyGenerations are a rotating key pair's keys after the run.
type keyGenerations struct {
	rot     *plan.KeyRotation
	other   crypto.Signer // next.key or previous.key
	retired crypto.Signer // retired.key: the last generation dropped (retire: keep)
	// verify are the public keys tokens are verified with, in generation order.
	verify []crypto.PublicKey
}

// rotateKeys carries out a key pair's rotation step: it makes the next key
// at Add, swaps the signing and the other key at Switch (or back), and at
// Drop keeps the old key as retired.key or lets it go. m.Key is the signing
// key after the run. Every key a run keeps comes from the stored record.
func (ap *Applier) rotateKeys(a *plan.Action, m *Material, kr *plan.KeyRotation) error {
	keys := map[int]crypto.Signer{}
	var stored map[string]string
	if a.Stored != nil && !a.NewKey() {
		if op := ap.openedRecord(a); op != nil {
			stored = op.StringData()
		}
	}
	if m.Key != nil && kr.SigningBefore > 0 {
		keys[kr.SigningBefore] = m.Key
	}
	if m.Key != nil && a.NewKey() {
		// A new record (or a damaged one re-keyed): its one key is the signing generation.
		keys = map[int]crypto.Signer{kr.Signing: m.Key}
	}
	g := &keyGenerations{rot: kr}
	if kr.OtherBefore > 0 && stored != nil {
		for _, v := range []string{plan.KeyNext, plan.KeyPrevious} {
			if pemKey := stored[v]; pemKey != "" {
				k, err := sign.ParsePrivateKeyPEM([]byte(pemKey))
				if err != nil {
					return fmt.Errorf("%s: %s: %w", a.Stored.Path, v, err)
				}
				keys[kr.OtherBefore] = k
			}
		}
	}
	if pemKey := stored[plan.KeyRetired]; pemKey != "" {
		k, err := sign.ParsePrivateKeyPEM([]byte(pemKey))
		if err != nil {
			return fmt.Errorf("%s: %s: %w", a.Stored.Path, plan.KeyRetired, err)
		}
		g.retired = k
	}
	if kr.Other > 0 && keys[kr.Other] == nil {
		k, err := sign.GenerateKey(topology.KeyAlgorithm(a.Desired.Shape.KeyAlgorithm), ap.Rand)
		if err != nil {
			return err
		}
		keys[kr.Other] = k
	}
	if keys[kr.Signing] == nil {
		return fmt.Errorf("generation %d, which signs after this run, has no key in %s", kr.Signing, a.Path)
	}
	m.Key = keys[kr.Signing]
	if kr.Other > 0 {
		g.other = keys[kr.Other]
	}
	if kr.Transition == plan.TransitionDrop && kr.Retire == topology.RetireKeep && keys[kr.Dropped] != nil {
		g.retired = keys[kr.Dropped]
	}
	gens := []int{kr.Signing}
	if kr.Other > 0 {
		gens = append(gens, kr.Other)
	}
	slices.Sort(gens)
	for _, gen := range gens {
		g.verify = append(g.verify, keys[gen].Public())
	}
	m.keys = g
	return nil
}

// keyPairValues are a rotating key pair's values besides tls.key and tls.pub.
func keyPairValues(g *keyGenerations) (map[string]string, error) {
	out := map[string]string{}
	var pems []byte
	for _, pub := range g.verify {
		b, err := sign.EncodePublicKeyPEM(pub)
		if err != nil {
			return nil, err
		}
		pems = append(pems, b...)
	}
	out[plan.KeyVerifyList] = string(pems)
	jwks, err := JWKS(g.verify)
	if err != nil {
		return nil, err
	}
	out[plan.KeyJWKS] = string(jwks)
	put := func(name string, k crypto.Signer) error {
		if k == nil {
			return nil
		}
		b, err := sign.EncodePrivateKeyPEM(k)
		out[name] = string(b)
		return err
	}
	role := plan.KeyNext
	if g.rot.OtherRole == plan.GenerationPrevious {
		role = plan.KeyPrevious
	}
	if err := put(role, g.other); err != nil {
		return nil, err
	}
	if err := put(plan.KeyRetired, g.retired); err != nil {
		return nil, err
	}
	return out, nil
}

// jwk is one JSON Web Key (RFC 7517, 7518) as kube-apiserver publishes
// its service-account verify keys at /openid/v1/jwks.
type jwk struct {
	Use string `json:"use"`
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	Alg string `json:"alg"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// JWKS is the JWK Set of public keys, each with kube-apiserver's key id
// (the unpadded base64url SHA-256 of the PKIX DER), so a workload-identity
// consumer matches a token's kid to the key exactly as kube-apiserver does.
func JWKS(pubs []crypto.PublicKey) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, pub := range pubs {
		k, err := toJWK(pub)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, k)
	}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// KeyID is kube-apiserver's key id of a service-account public key.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func toJWK(pub crypto.PublicKey) (jwk, error) {
	kid, err := KeyID(pub)
	if err != nil {
		return jwk{}, err
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return jwk{Use: "sig", Kty: "RSA", Kid: kid, Alg: "RS256", N: b64(k.N.Bytes()), E: b64(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		var crv, alg string
		switch k.Curve {
		case elliptic.P256():
			crv, alg = "P-256", "ES256"
		case elliptic.P384():
			crv, alg = "P-384", "ES384"
		case elliptic.P521():
			crv, alg = "P-521", "ES512"
		default:
			return jwk{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		raw, err := k.Bytes() // uncompressed point: 0x04 || X || Y
		if err != nil {
			return jwk{}, err
		}
		size := (len(raw) - 1) / 2
		return jwk{Use: "sig", Kty: "EC", Kid: kid, Crv: crv, Alg: alg, X: b64(raw[1 : 1+size]), Y: b64(raw[1+size:])}, nil
	}
	return jwk{}, fmt.Errorf("a %T cannot verify service-account tokens (RSA or ECDSA only)", pub)
}
