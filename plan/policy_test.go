package plan

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testCert makes a certificate with the given lifetime and key ids; policies
// only read public fields, so a self-signed stand-in is enough.
func testCert(t *testing.T, nb, na time.Time, ski, aki []byte) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: nb, NotAfter: na,
		SubjectKeyId: ski, AuthorityKeyId: aki}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	// CreateCertificate fills AKI from the parent for self-signed certs; tests set it explicitly.
	c.AuthorityKeyId = aki
	return c
}

func leafDesired(sh Shape) *Desired {
	return &Desired{ID: "Certificate/web", Kind: KindCert, Name: "web", Shape: sh, RenewBefore: 30 * 24 * time.Hour,
		Rotation: "Never", Path: "clusters/c/default/secret-web.yaml", Recipients: []string{"age1a"},
		Secret: Delivery{Cluster: "c", Namespace: "default", Name: "web", Path: "clusters/c/default/secret-web.yaml"}}
}

// stored is the record gitca would have written for leafDesired.
func stored(sh Shape, c *x509.Certificate) *state.Object {
	o := &state.Object{ID: "Certificate/web", Path: "clusters/c/default/secret-web.yaml", Recipients: []string{"age1a"},
		Name: "web", Namespace: "default", Type: "kubernetes.io/tls", Keys: []string{"ca.crt", "tls.crt", "tls.key"},
		Annotations: map[string]string{state.AnnotationSpec: sh.JSON()}}
	if c != nil {
		o.Certs = []*x509.Certificate{c}
		o.NotBefore, o.NotAfter, o.AKI, o.SKI = c.NotBefore, c.NotAfter, c.AuthorityKeyId, c.SubjectKeyId
	}
	return o
}

func edited(o *state.Object, f func(*state.Object)) *state.Object { f(o); return o }

var baseShape = Shape{Issuer: "ca", CommonName: "web", Profile: "server", DNSNames: []string{"a.example"}, KeyAlgorithm: "ECDSA-P256", Validity: "8760h"}

func withDNS(s Shape, dns ...string) Shape { s.DNSNames = dns; return s }
func withKey(s Shape, k string) Shape      { s.KeyAlgorithm = k; return s }

func codes(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code+":"+r.Detail)
	}
	return out
}

func TestPolicies(t *testing.T) {
	year := t0.Add(365 * 24 * time.Hour)
	cert := testCert(t, t0, year, []byte{1}, []byte{9})
	issuerKeep := &Action{Action: ActionKeep, Cert: testCert(t, t0, year.Add(time.Hour), []byte{9}, nil)}
	issuerOtherKey := &Action{Action: ActionKeep, Cert: testCert(t, t0, year, []byte{8}, nil)}
	issuerRekey := &Action{Action: ActionRekey, Rekeys: true}
	issuerRenew := &Action{Action: ActionRenew}
	issuerReissueSubject := &Action{Action: ActionReissue, subjectChanged: true}

	tests := []struct {
		name string
		fn   func(policyInput) []Reason
		in   policyInput
		want []string
	}{
		{"missing/absent", missing, policyInput{d: leafDesired(baseShape)}, []string{"missing:"}},
		{"missing/present", missing, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert)}, nil},

		{"damaged/problem", damaged, policyInput{d: leafDesired(baseShape), o: func() *state.Object {
			o := stored(baseShape, cert)
			o.Problems = []string{"not sealed: no sops metadata"}
			return o
		}()}, []string{"damaged:not sealed: no sops metadata"}},
		{"damaged/no spec annotation", damaged, policyInput{d: leafDesired(baseShape), o: edited(stored(baseShape, cert), func(o *state.Object) { o.Annotations = map[string]string{} })},
			[]string{"damaged:no readable gitca.dev/spec annotation"}},
		{"damaged/healthy", damaged, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert)}, nil},

		{"specDrift/same", specDrift, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert)}, nil},
		{"specDrift/dns", specDrift, policyInput{d: leafDesired(withDNS(baseShape, "a.example", "b.example")), o: stored(baseShape, cert)},
			[]string{"spec-drift:dnsNames a.example → a.example,b.example"}},
		{"specDrift/key", specDrift, policyInput{d: leafDesired(withKey(baseShape, "RSA-2048")), o: stored(baseShape, cert)},
			[]string{"spec-drift:keyAlgorithm ECDSA-P256 → RSA-2048"}},
		{"specDrift/absent", specDrift, policyInput{d: leafDesired(baseShape)}, nil},

		{"issuerRekeyed/new key this run", issuerRekeyed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerRekey},
			[]string{"issuer-rekeyed:ca gets a new key"}},
		{"issuerRekeyed/signed by older key", issuerRekeyed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerOtherKey},
			[]string{"issuer-rekeyed:signed by an older key of ca"}},
		{"issuerRekeyed/same key", issuerRekeyed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerKeep}, nil},

		{"issuerReissued/subject", issuerReissued, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerReissueSubject},
			[]string{"issuer-reissued:ca subject changes"}},
		{"issuerReissued/renew only", issuerReissued, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerRenew}, nil},

		{"expired/yes", expired, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: year}, []string{"expired:expired 2027-01-01T00:00:00Z"}},
		{"expired/no", expired, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: year.Add(-time.Second)}, nil},

		{"window/before", inRenewalWindow, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: year.Add(-30*24*time.Hour - time.Second)}, nil},
		{"window/at start", inRenewalWindow, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: year.Add(-30 * 24 * time.Hour)},
			[]string{"renewal-window:renew from 2026-12-02T00:00:00Z"}},
		{"window/expired is not window", inRenewalWindow, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: year}, nil},

		{"issuerRenewed/yes", issuerRenewed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerRenew},
			[]string{"issuer-renewed:ca renewed, chain update only"}},
		{"issuerRenewed/rekey is not renew", issuerRenewed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerRekey}, nil},
		{"issuerRenewed/keep", issuerRenewed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), issuer: issuerKeep}, nil},
		{"issuerRenewed/issuer's own chain changes", issuerRenewed, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert),
			issuer: &Action{ID: "CertificateAuthority/ca", Action: ActionUpdateChain}},
			[]string{"issuer-renewed:ca's chain changes, chain update only"}},

		{"moved/yes", moved, policyInput{d: func() *Desired { d := leafDesired(baseShape); d.Path = "clusters/d/x.yaml"; return d }(), o: stored(baseShape, cert)},
			[]string{"moved:clusters/c/default/secret-web.yaml → clusters/d/x.yaml"}},
		{"moved/no", moved, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert)}, nil},

		{"recipients/changed", recipientsChanged, policyInput{d: func() *Desired { d := leafDesired(baseShape); d.Recipients = []string{"age1a", "age1b"}; return d }(), o: stored(baseShape, cert)},
			[]string{"recipients-changed:1 → 2 age recipients"}},
		{"recipients/unknown at plan time", recipientsChanged, policyInput{d: func() *Desired { d := leafDesired(baseShape); d.Recipients = nil; return d }(), o: stored(baseShape, cert)}, nil},
		{"recipients/same", recipientsChanged, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert)}, nil},

		{"damaged/another Secret's record", damaged, policyInput{d: leafDesired(baseShape), o: edited(stored(baseShape, cert), func(o *state.Object) { o.Name = "db" })},
			[]string{"damaged:it is Secret default/db, not default/web: another object's record, or two records for one Secret"}},
		{"damaged/no key", damaged, policyInput{d: leafDesired(baseShape), o: edited(stored(baseShape, cert), func(o *state.Object) { o.Keys = []string{"ca.crt", "tls.crt"} })},
			[]string{"damaged:no stringData.tls.key: the private key is gone"}},
		{"unexpected/none", unexpectedContent, policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert)}, nil},
		{"unexpected/extra value", unexpectedContent, policyInput{d: leafDesired(baseShape), o: edited(stored(baseShape, cert), func(o *state.Object) {
			o.Keys = append(o.Keys, "foo")
		})}, []string{"unexpected-content:stringData.foo"}},
		{"unexpected/type, data, foreign recipient", unexpectedContent, policyInput{d: leafDesired(baseShape), o: edited(stored(baseShape, cert), func(o *state.Object) {
			o.Type, o.Unexpected = "Opaque", []string{"data", "sops.pgp"}
		})}, []string{"unexpected-content:data, sops.pgp, type Opaque (not kubernetes.io/tls)"}},
		{"unexpected/annotations", unexpectedContent, policyInput{d: func() *Desired {
			d := leafDesired(baseShape)
			d.Annotations = map[string]string{"team": "a", "gone": "x"}
			return d
		}(), o: edited(stored(baseShape, cert), func(o *state.Object) {
			o.Annotations["team"] = "b"
			o.Annotations["kustomize.toolkit.fluxcd.io/reconcile"] = "disabled"
		})}, []string{"unexpected-content:annotation kustomize.toolkit.fluxcd.io/reconcile, annotation team, no annotation gone"}},
		{"unexpected/missing ca.crt is restored", unexpectedContent, policyInput{d: leafDesired(baseShape), o: edited(stored(baseShape, cert), func(o *state.Object) {
			o.Keys = []string{"tls.crt", "tls.key"}
		})}, []string{"unexpected-content:no stringData.ca.crt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.now.IsZero() {
				tc.in.now = t0.Add(24 * time.Hour)
			}
			assert.Equal(t, tc.want, codes(tc.fn(tc.in)))
		})
	}
}

func TestEvaluate(t *testing.T) {
	year := t0.Add(365 * 24 * time.Hour)
	cert := testCert(t, t0, year, []byte{1}, []byte{9})
	inWindow := year.Add(-10 * 24 * time.Hour)
	always := func(d *Desired) *Desired { d.Rotation = "Always"; return d }
	tests := []struct {
		name    string
		in      policyInput
		want    ActionKind
		newKey  bool
		reasons int
	}{
		{"create stops the chain", policyInput{d: leafDesired(baseShape), now: t0}, ActionCreate, true, 1},
		{"keep", policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: t0}, ActionKeep, false, 0},
		{"renew keeps the key under Never", policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: inWindow}, ActionRenew, false, 1},
		{"renew becomes rekey under Always", policyInput{d: always(leafDesired(baseShape)), o: stored(baseShape, cert), now: inWindow}, ActionRekey, true, 2},
		{"reissue keeps the key under Never", policyInput{d: leafDesired(withDNS(baseShape, "b.example")), o: stored(baseShape, cert), now: t0}, ActionReissue, false, 1},
		{"reissue makes a key under Always", policyInput{d: always(leafDesired(withDNS(baseShape, "b.example"))), o: stored(baseShape, cert), now: t0}, ActionReissue, true, 2},
		{"key algorithm change rekeys", policyInput{d: leafDesired(withKey(baseShape, "Ed25519")), o: stored(baseShape, cert), now: t0}, ActionRekey, true, 1},
		{"drift and window: strongest wins, all reasons kept", policyInput{d: leafDesired(withDNS(baseShape, "b.example")), o: stored(baseShape, cert), now: inWindow}, ActionReissue, false, 2},
		{"issuer renewed: chain only", policyInput{d: leafDesired(baseShape), o: stored(baseShape, cert), now: t0, issuer: &Action{Action: ActionRenew}}, ActionUpdateChain, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, newKey, reasons := evaluate(certPolicies, tc.in)
			assert.Equal(t, tc.want, kind)
			assert.Equal(t, tc.newKey, newKey)
			assert.Len(t, reasons, tc.reasons, "%v", reasons)
		})
	}
}

func TestShapeHashStable(t *testing.T) {
	a := baseShape
	b := baseShape
	b.DNSNames = append([]string(nil), a.DNSNames...)
	require.Equal(t, a.Hash(), b.Hash())
	require.NotEqual(t, a.Hash(), withDNS(a, "z.example").Hash())
	require.Equal(t, `{"issuer":"ca","cn":"web","profile":"server","dns":["a.example"],"key":"ECDSA-P256","validity":"8760h"}`, a.JSON())
}
