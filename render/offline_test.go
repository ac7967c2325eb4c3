package render

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

const offlineDocs = `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
spec:
  clusters:
    - name: prod
      namespace: pki
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: offline-root
spec:
  import:
    certificate: root.crt
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: issuing
spec:
  issuer: offline-root
  secret:
    cluster: prod
---
apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: ops
spec:
  issuer: offline-root-child
  username: ops
  target:
    server: https://api.example.com:6443
    ca: issuing
  secret:
    cluster: prod
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: offline-root-child
spec:
  issuer: other
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: other
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: clients
spec:
  sources:
    - ca: issuing
    - ca: other
  secret:
    cluster: prod
`

// runCSR is gitca csr: a render that asks for the request of names.
func (e *env) runCSR(now time.Time, names ...string) *Result {
	e.t.Helper()
	top, err := topology.Load(e.topo)
	require.NoError(e.t, err)
	st, err := plan.ReadState(e.state)
	require.NoError(e.t, err)
	opt := Options{Options: plan.Options{Now: now, Recipients: plan.ResolveRecipients(top, []string{e.recipient}), CSRs: names}}
	res, err := Render(context.Background(), top, st, opt, &e.ids, rand.Reader)
	require.NoError(e.t, err)
	require.NoError(e.t, emit.Write(e.state, res.Tree))
	return res
}

// signRequest signs the request in the state as the offline signer does.
func signRequest(t *testing.T, e *env, root *x509.Certificate, rootKey crypto.Signer, notAfter time.Time, file string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.state, "ca", "issuing.csr"))
	require.NoError(t, err)
	csr, err := sign.ParseCertificateRequestPEM(raw)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: csr.Subject, NotBefore: t0.Add(-time.Hour), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, rootKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, file), sign.EncodeCertsPEM(c), 0o644))
}

// TestOfflineSignedCAWaits: what needs a CA that waits for its certificate
// waits with it (a kubeconfig whose server it verifies, its delivered copy),
// a bundle leaves it out until it is signed, a run in the meantime changes
// nothing, and a renewal signed offline for the same key moves the chains.
func TestOfflineSignedCAWaits(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pki.yaml"), []byte(offlineDocs), 0o644))
	root, rootKey := newCA(t, "Offline Root", nil, nil)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "root.crt"), sign.EncodeCertsPEM(root), 0o644))
	e := newEnv(t, dir)

	res := e.run(t0, &e.ids)
	assert.Equal(t, map[string]plan.ActionKind{
		"CertificateAuthority/offline-root": plan.ActionCreate, "CertificateAuthority/issuing": plan.ActionWait,
		"CertificateAuthority/offline-root-child": plan.ActionCreate, "CertificateAuthority/other": plan.ActionCreate,
		"Kubeconfig/ops": plan.ActionWait,
	}, actions(res.Plan))
	assert.Len(t, bundlePEM(t, e.state, "clusters/prod/pki/secret-clients.yaml"), 1, "the bundle holds the CAs that have a certificate")
	assert.NoFileExists(t, filepath.Join(e.state, "clusters/prod/pki/secret-issuing.yaml"))

	res = e.runCSR(t0.Add(time.Hour), "issuing")
	assert.Equal(t, plan.ActionRequest, res.Plan.CA("issuing").Action)
	assert.NoFileExists(t, filepath.Join(e.state, "clusters/prod/pki/secret-issuing.yaml"), "a request is no CA a cluster can use")
	assert.False(t, e.run(t0.Add(2*time.Hour), nil).Plan.Changes(), "nothing to do while the request waits, and nothing to open")

	signRequest(t, e, root, rootKey, t0.Add(365*24*time.Hour), "issuing.crt")
	e.edit("pki.yaml", "  issuer: offline-root\n  secret:", "  issuer: offline-root\n  signedCertificate: issuing.crt\n  secret:")
	res = e.run(t0.Add(3*time.Hour), &e.ids)
	assert.Equal(t, plan.ActionReissue, res.Plan.CA("issuing").Action)
	assert.Equal(t, plan.ActionCreate, res.Plan.Action("Kubeconfig/ops").Action)
	assert.Len(t, bundlePEM(t, e.state, "clusters/prod/pki/secret-clients.yaml"), 2)
	assert.FileExists(t, filepath.Join(e.state, "clusters/prod/pki/secret-issuing.yaml"), "the copy follows the certificate")
	assert.False(t, e.run(t0.Add(4*time.Hour), nil).Plan.Changes())

	// Within renewBefore of its end the plan warns; a renewal request for the
	// same key, signed again, replaces it and the kubeconfig's CA data follows.
	late := t0.Add(364 * 24 * time.Hour)
	res = e.run(late, &e.ids)
	assert.Equal(t, plan.ActionKeep, res.Plan.CA("issuing").Action, "gitca cannot renew it")
	assert.Contains(t, res.Plan.Warnings, "CertificateAuthority/issuing: its certificate expires "+t0.Add(365*24*time.Hour).Format(time.RFC3339)+
		" and its issuer offline-root is offline: gitca csr issuing writes a renewal request for the same key")
	res = e.runCSR(late, "issuing")
	assert.Equal(t, plan.ActionRequest, res.Plan.CA("issuing").Action)
	assert.False(t, res.Plan.CA("issuing").NewKey())
	signRequest(t, e, root, rootKey, t0.Add(3*365*24*time.Hour), "issuing-2.crt")
	e.edit("pki.yaml", "signedCertificate: issuing.crt", "signedCertificate: issuing-2.crt")
	res = e.run(late.Add(time.Hour), &e.ids)
	assert.Equal(t, plan.ActionReissue, res.Plan.CA("issuing").Action)
	assert.Equal(t, plan.ActionUpdateChain, res.Plan.Action("Kubeconfig/ops").Action)
	assert.NoFileExists(t, filepath.Join(e.state, "ca", "issuing.csr"))
}
