package render

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(topology.ECDSAP256, rand.Reader)
	require.NoError(t, err)
	return k
}

// rootCert is a self-signed CA certificate for key, valid [nb, na].
func rootCert(t *testing.T, cn string, key crypto.Signer, nb, na time.Time) *x509.Certificate {
	t.Helper()
	c, err := SignCertificate(CertSpec{Subject: topology.Subject{CommonName: cn}, CA: true, NotBefore: nb, NotAfter: na}, key.Public(), nil, key, rand.Reader)
	require.NoError(t, err)
	return c
}

func subjects(certs []*x509.Certificate) []string {
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, c.Subject.CommonName+"@"+c.NotAfter.UTC().Format("2006"))
	}
	return out
}

func TestMergeBundle(t *testing.T) {
	now := t0
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	y := func(n int) time.Time { return t0.AddDate(n, 0, 0) }
	a2030 := rootCert(t, "a", k1, y(-1), y(4))
	a2035 := rootCert(t, "a", k1, y(-1), y(9)) // renewed with the same key
	aRekeyed := rootCert(t, "a", k2, y(-1), y(6))
	b := rootCert(t, "b", k3, y(-1), y(4))
	expired := rootCert(t, "c", newKey(t), y(-2), now.Add(-time.Second))
	lastSecond := rootCert(t, "d", newKey(t), y(-2), now)

	for _, c := range []struct {
		name string
		in   []*x509.Certificate
		want []string
	}{
		{"sorted by subject", []*x509.Certificate{b, a2030}, []string{"a@2030", "b@2030"}},
		{"one key is one trust anchor: the newest certificate stands for it", []*x509.Certificate{a2030, a2035}, []string{"a@2035"}},
		{"same certificate twice", []*x509.Certificate{b, b}, []string{"b@2030"}},
		{"a re-keyed CA overlaps its predecessor, oldest first", []*x509.Certificate{aRekeyed, a2030}, []string{"a@2030", "a@2032"}},
		{"expired certificates are dropped", []*x509.Certificate{expired, b}, []string{"b@2030"}},
		{"valid through its last second", []*x509.Certificate{lastSecond}, []string{"d@2026"}},
		{"nothing left", []*x509.Certificate{expired}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, subjects(mergeBundle(c.in, now)))
			// The result does not depend on the order of the sources.
			rev := make([]*x509.Certificate, len(c.in))
			for i, x := range c.in {
				rev[len(c.in)-1-i] = x
			}
			assert.Equal(t, EncodeCertsPEM(mergeBundle(c.in, now)...), EncodeCertsPEM(mergeBundle(rev, now)...))
		})
	}
}

func TestBundleCerts(t *testing.T) {
	y := func(n int) time.Time { return t0.AddDate(n, 0, 0) }
	cas := map[string]*x509.Certificate{
		"root":  rootCert(t, "root", newKey(t), y(-1), y(9)),
		"shard": rootCert(t, "shard", newKey(t), y(-1), y(5)),
		"proxy": rootCert(t, "proxy", newKey(t), y(-1), y(5)),
	}
	caCert := func(n string) *x509.Certificate { return cas[n] }
	dir := t.TempDir()
	partner := rootCert(t, "partner", newKey(t), y(-1), y(3))
	gone := rootCert(t, "gone", newKey(t), y(-3), y(-1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "imported.pem"), EncodeCertsPEM(gone, partner, cas["root"]), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.pem"), []byte("not a certificate\n"), 0o644))

	bundle := func(name string, src ...topology.BundleSource) *topology.TrustBundle {
		return &topology.TrustBundle{Metadata: topology.ObjectMeta{Name: name}, Spec: topology.TrustBundleSpec{Sources: src}}
	}
	top := &topology.Topology{Root: dir, TrustBundles: []*topology.TrustBundle{
		bundle("base", topology.BundleSource{CA: "root"}),
		// A diamond: base reached through two parents.
		bundle("shard", topology.BundleSource{Bundle: "base"}, topology.BundleSource{CA: "shard"}),
		bundle("proxy", topology.BundleSource{Bundle: "base"}, topology.BundleSource{CA: "proxy"}),
		bundle("all", topology.BundleSource{Bundle: "shard"}, topology.BundleSource{Bundle: "proxy"}, topology.BundleSource{File: "imported.pem"}),
		bundle("missing-ca", topology.BundleSource{CA: "nope"}),
		bundle("missing-bundle", topology.BundleSource{Bundle: "nope"}),
		bundle("missing-file", topology.BundleSource{File: "nope.pem"}),
		bundle("bad-file", topology.BundleSource{File: "empty.pem"}),
	}}
	for _, c := range []struct {
		name    string
		want    []string
		wantErr string
	}{
		{"base", []string{"root@2035"}, ""},
		{"shard", []string{"root@2035", "shard@2031"}, ""},
		// Inherited twice and imported once, root appears once; the expired import is gone.
		{"all", []string{"partner@2029", "proxy@2031", "root@2035", "shard@2031"}, ""},
		{"missing-ca", nil, "trust bundle missing-ca: spec.sources[0].ca: nope has no certificate"},
		{"missing-bundle", nil, "trust bundle nope does not exist"},
		{"missing-file", nil, "trust bundle missing-file: spec.sources[0].file"},
		{"bad-file", nil, "trust bundle bad-file: spec.sources[0].file empty.pem"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := BundleCerts(top, c.name, t0, caCert)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, subjects(got))
		})
	}
	assert.Equal(t, []string{"proxy", "root", "shard"}, bundleCAs(top, "all"))
}

// bundlePEM reads the certificates of a rendered bundle ConfigMap or Secret
// (tls.crt), or of a kubeconfig Secret (its plain ca.crt).
func bundlePEM(t *testing.T, state, rel string) []*x509.Certificate {
	t.Helper()
	m := readYAML(t, filepath.Join(state, rel))
	var pem string
	if d, ok := m["data"].(map[string]any); ok {
		pem, _ = d["ca.crt"].(string)
	} else if d, ok := m["stringData"].(map[string]any); ok {
		pem, _ = d["tls.crt"].(string)
		if _, kc := d["kubeconfig"]; kc {
			pem, _ = d["ca.crt"].(string)
		}
	}
	certs, err := secrets.ParseCertsPEM([]byte(pem))
	require.NoError(t, err, rel)
	return certs
}

func TestBundlesFollowTheirCAsInTheSameRun(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.withRecipient()
	e.run(t0, &e.ids)
	st, err := secrets.ReadState(e.state)
	require.NoError(t, err)
	oldIssuing := st.Primary["CertificateAuthority/issuing"].Cert()
	const cm, sec = "clusters/prod/pki/configmap-api-trust.yaml", "clusters/edge/certs/secret-api-trust.yaml"
	assert.Contains(t, fingerprints(bundlePEM(t, e.state, cm)), Fingerprint(oldIssuing))

	// Re-key issuing: both deliveries of api-trust (a ConfigMap in prod, a Secret
	// in the KSOPS cluster) carry the new certificate in this very run, and not the old.
	e.edit("pki.yaml", "  issuer: root\n  pathLen: 0\n  validity: 43800h\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: edge-ca",
		"  issuer: root\n  pathLen: 0\n  keyAlgorithm: ECDSA-P384\n  validity: 43800h\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: edge-ca")
	res := e.run(t0.Add(time.Hour), &e.ids)
	assert.Equal(t, ActionRekey, res.Plan.CA("issuing").Action)
	assert.Contains(t, res.Tree.Write, cm)
	assert.Contains(t, res.Tree.Write, sec)
	assert.NotContains(t, res.Tree.Write, "clusters/prod/pki/configmap-roots.yaml", "a bundle without issuing is untouched")
	st, err = secrets.ReadState(e.state)
	require.NoError(t, err)
	newIssuing := st.Primary["CertificateAuthority/issuing"].Cert()
	for _, rel := range []string{cm, sec} {
		fps := fingerprints(bundlePEM(t, e.state, rel))
		assert.Contains(t, fps, Fingerprint(newIssuing), rel)
		assert.NotContains(t, fps, Fingerprint(oldIssuing), rel)
		// root (inherited from roots and listed directly) and the partner file: once each.
		assert.Len(t, fps, 3, rel)
	}
	// The kubeconfig aimed at api-trust embeds the new bundle too.
	assert.Equal(t, fingerprints(bundlePEM(t, e.state, cm)), fingerprints(bundlePEM(t, e.state, "clusters/prod/pki/secret-ops.yaml")))
}

func fingerprints(certs []*x509.Certificate) []string {
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, Fingerprint(c))
	}
	return out
}

// TestBundleTargetChanged covers the rule that a kubeconfig aimed at a
// TrustBundle is rewritten when the bundle changes, without a new certificate.
func TestBundleTargetChanged(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.withRecipient()
	e.run(t0, &e.ids)
	plan := func() (*Plan, *topology.Topology, *secrets.State) {
		top, err := topology.Load(e.topo)
		require.NoError(t, err)
		st, err := secrets.ReadState(e.state)
		require.NoError(t, err)
		p, err := NewPlan(top, st, Options{Now: t0.Add(time.Hour), Recipients: ResolveRecipients(top, nil)})
		require.NoError(t, err)
		return p, top, st
	}
	reasons := func(id string) []Reason {
		p, top, st := plan()
		a := p.Action(id)
		return bundleTargetChanged(p, top, policyInput{d: a.Desired, o: st.Primary[id], now: p.Now})
	}
	assert.Empty(t, reasons("Kubeconfig/ops"), "nothing changed")
	assert.Empty(t, reasons("Kubeconfig/edge-deployer"), "a CA target is the plan's own rule")

	// A new certificate in the imported file changes the bundle, not any CA.
	partner := rootCert(t, "partner 2", newKey(t), t0, t0.AddDate(5, 0, 0))
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, "partner-root.pem"), EncodeCertsPEM(partner), 0o644))
	assert.Equal(t, []Reason{{Code: ReasonTargetChanged, Detail: "trust bundle api-trust changed"}}, reasons("Kubeconfig/ops"))

	// A member CA that signs anew this run, and issuing below it.
	e.edit("pki.yaml", "  name: root\nspec:\n", "  name: root\nspec:\n  keyAlgorithm: ECDSA-P384\n")
	assert.Equal(t, []Reason{{Code: ReasonTargetChanged, Detail: "trust bundle api-trust: issuing, root renewed"}}, reasons("Kubeconfig/ops"))
}
