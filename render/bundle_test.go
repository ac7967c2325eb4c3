package render

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

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
	certs, err := sign.ParseCertsPEM([]byte(pem))
	require.NoError(t, err, rel)
	return certs
}

func TestBundlesFollowTheirCAsInTheSameRun(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.withRecipient()
	e.run(t0, &e.ids)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	oldIssuing := st.Primary["CertificateAuthority/issuing"].Cert()
	const cm, sec = "clusters/prod/pki/configmap-api-trust.yaml", "clusters/edge/certs/secret-api-trust.yaml"
	assert.Contains(t, fingerprints(bundlePEM(t, e.state, cm)), sign.Fingerprint(oldIssuing))

	// Re-key issuing: both deliveries of api-trust (a ConfigMap in prod, a Secret
	// in the KSOPS cluster) carry the new certificate in this very run, and not the old.
	e.edit("pki.yaml", "  issuer: root\n  pathLen: 0\n  validity: 43800h\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: edge-ca",
		"  issuer: root\n  pathLen: 0\n  keyAlgorithm: ECDSA-P384\n  validity: 43800h\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: edge-ca")
	res := e.run(t0.Add(time.Hour), &e.ids)
	assert.Equal(t, plan.ActionRekey, res.Plan.CA("issuing").Action)
	assert.Contains(t, res.Tree.Write, cm)
	assert.Contains(t, res.Tree.Write, sec)
	assert.NotContains(t, res.Tree.Write, "clusters/prod/pki/configmap-roots.yaml", "a bundle without issuing is untouched")
	st, err = plan.ReadState(e.state)
	require.NoError(t, err)
	newIssuing := st.Primary["CertificateAuthority/issuing"].Cert()
	for _, rel := range []string{cm, sec} {
		fps := fingerprints(bundlePEM(t, e.state, rel))
		assert.Contains(t, fps, sign.Fingerprint(newIssuing), rel)
		assert.NotContains(t, fps, sign.Fingerprint(oldIssuing), rel)
		// root (inherited from roots and listed directly) and the partner file: once each.
		assert.Len(t, fps, 3, rel)
	}
	// The kubeconfig aimed at api-trust embeds the new bundle too.
	assert.Equal(t, fingerprints(bundlePEM(t, e.state, cm)), fingerprints(bundlePEM(t, e.state, "clusters/prod/pki/secret-ops.yaml")))
}

func fingerprints(certs []*x509.Certificate) []string {
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, sign.Fingerprint(c))
	}
	return out
}

// TestBundleTargetChanged covers the rule that a kubeconfig aimed at a
// TrustBundle is rewritten when the bundle changes, without a new certificate.
func TestBundleTargetChanged(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.withRecipient()
	e.run(t0, &e.ids)
	reasons := func(id string) []plan.Reason {
		top, err := topology.Load(e.topo)
		require.NoError(t, err)
		st, err := plan.ReadState(e.state)
		require.NoError(t, err)
		p, err := plan.Make(top, st, plan.Options{Now: t0.Add(time.Hour), Recipients: plan.ResolveRecipients(top, nil)})
		require.NoError(t, err)
		var out []plan.Reason
		for _, r := range p.Action(id).Reasons {
			if r.Code == plan.ReasonTargetChanged {
				out = append(out, r)
			}
		}
		return out
	}
	assert.Empty(t, reasons("Kubeconfig/ops"), "nothing changed")
	assert.Empty(t, reasons("Kubeconfig/edge-deployer"), "a CA target is the plan's own rule")

	// A new certificate in the imported file changes the bundle, not any CA.
	partner := testpki.Root(t, "partner 2", testpki.Key(t), t0, t0.AddDate(5, 0, 0))
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, "partner-root.pem"), sign.EncodeCertsPEM(partner), 0o644))
	got := reasons("Kubeconfig/ops")
	require.Len(t, got, 1)
	// The reason names what enters and leaves the kubeconfig's CA data.
	assert.Contains(t, got[0].Detail, "CA data: trust bundle api-trust: + CN=partner 2 "+sign.Fingerprint(partner))
	assert.Contains(t, got[0].Detail, "- CN=Partner Root CA,O=Partner Corp")

	// A member CA that signs anew this run, and issuing below it.
	e.edit("pki.yaml", "  name: root\nspec:\n", "  name: root\nspec:\n  keyAlgorithm: ECDSA-P384\n")
	assert.Equal(t, []plan.Reason{{Code: plan.ReasonTargetChanged, Detail: "CA data: trust bundle api-trust: issuing, root get(s) a new certificate"}}, reasons("Kubeconfig/ops"))
}
