package export

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"

	"github.com/gitca-dev/gitca/state"
)

// keyVerifyList and keyJWKS are a rotating key pair's verify list and its
// JWK Set (plan.KeyVerifyList, plan.KeyJWKS).
const (
	keyVerifyList = "verify.pub"
	keyJWKS       = "jwks.json"
	// keyCRL is a CA's revocation list (plan.KeyCRL).
	keyCRL = "ca.crl"
)

// verifyKeys is a key pair's .pub: every public key tokens are verified
// with (kube-apiserver's --service-account-key-file reads several from one
// file), or the key's own when it has never rotated.
func verifyKeys(sd map[string]string) string {
	if v := sd[keyVerifyList]; v != "" {
		return v
	}
	return sd["tls.pub"]
}

// caTrust reports whether a record is a root CA's (by the spec it was made
// from) and returns what its verifiers trust: its certificate, then every
// other certificate of its ca.crt (the other live generation during a rotation).
func caTrust(o *state.Object, sd map[string]string) (bool, string) {
	own := firstCertPEM(sd["tls.crt"])
	var spec struct {
		CA     bool   `json:"ca"`
		Issuer string `json:"issuer"`
	}
	if json.Unmarshal([]byte(o.Annotations[state.AnnotationSpec]), &spec) != nil || !spec.CA || spec.Issuer != "" {
		return false, own
	}
	b, _ := pem.Decode([]byte(own))
	if b == nil {
		return false, own
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return false, own
	}
	out := []byte(own)
	rest := []byte(sd["ca.crt"])
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" && !bytes.Equal(blk.Bytes, c.Raw) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})...)
		}
	}
	return true, string(out)
}

// signsInCluster reports whether a CA is also delivered into a cluster
// (spec.secret): a component there signs with it.
func signsInCluster(st *state.State, o *state.Object) bool {
	for _, c := range st.Copies {
		if c.ID == o.ID {
			return true
		}
	}
	return false
}
