package render

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
)

// crlOf reads the revocation list a record holds, checks it is signed by
// the record's own certificate, and returns it with the annotation that says
// what it holds.
func crlOf(t *testing.T, e *env, path string) (*x509.RevocationList, plan.CRL) {
	t.Helper()
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	o := st.At(path)
	require.NotNil(t, o, path)
	raw := o.PlainValues()[plan.KeyCRL]
	require.NotEmpty(t, raw, "%s holds no %s", path, plan.KeyCRL)
	blk, _ := pem.Decode([]byte(raw))
	require.NotNil(t, blk)
	require.Equal(t, "X509 CRL", blk.Type)
	crl, err := x509.ParseRevocationList(blk.Bytes)
	require.NoError(t, err)
	require.NoError(t, crl.CheckSignatureFrom(o.Cert()), "the list is signed by the CA itself")
	var ann plan.CRL
	require.NoError(t, json.Unmarshal([]byte(o.Annotations[plan.AnnotationCRL]), &ann))
	return crl, ann
}

func revokedSerials(crl *x509.RevocationList) []string {
	var out []string
	for _, e := range crl.RevokedCertificateEntries {
		out = append(out, e.SerialNumber.Text(16))
	}
	return out
}

func codes(rs []plan.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

// TestCRLListsCertificatesThatLeaveTheTopology walks a CA's revocation list
// through its life: the first list, a certificate removed while valid (its
// serial enters; nothing else is signed), no change mid-way, a renewal
// before nextUpdate, the entry leaving once the certificate expired, and the
// list leaving with spec.crl.
func TestCRLListsCertificatesThatLeaveTheTopology(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.edit("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  crl:\n    validity: 240h\n")
	const record, copyPath = "ca/issuing.yaml", "clusters/prod/pki/secret-issuing-ca.yaml"

	e.run(t0, &e.ids)
	crl, ann := crlOf(t, e, record)
	assert.Empty(t, crl.RevokedCertificateEntries)
	assert.Equal(t, int64(1), crl.Number.Int64())
	assert.Equal(t, t0.Add(240*time.Hour), crl.NextUpdate.UTC())
	assert.Equal(t, int64(1), ann.Number)
	copied, _ := crlOf(t, e, copyPath)
	assert.Equal(t, crl.Raw, copied.Raw, "the CA's delivered Secret carries the same list")
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	assert.Empty(t, st.At("ca/root.yaml").PlainValues()[plan.KeyCRL], "a CA without spec.crl publishes none")
	client := st.Primary["Certificate/client"].Cert()

	// The client certificate leaves the topology a day later, valid for another 29 days.
	t1 := t0.Add(24 * time.Hour)
	removeDoc(t, e, "leafs.yaml", "name: client")
	before := e.snapshot()
	res := e.run(t1, &e.ids)
	a := res.Plan.CA("issuing")
	assert.Equal(t, plan.ActionUpdateChain, a.Action)
	assert.Equal(t, []string{plan.ReasonCRLRevoked}, codes(a.Reasons))
	assert.Contains(t, a.Reasons[0].Detail, "Certificate/client")
	assert.Equal(t, map[string]plan.ActionKind{"CertificateAuthority/issuing": plan.ActionUpdateChain, "Certificate/client": plan.ActionDelete},
		nonKeep(res.Plan), "nothing below the CA follows its list")
	assert.Equal(t, []string{record, "clusters/prod/kustomization.yaml", "clusters/prod/pki/secret-client.yaml", copyPath},
		changedFiles(before, e.snapshot()))
	crl, ann = crlOf(t, e, record)
	assert.Equal(t, []string{client.SerialNumber.Text(16)}, revokedSerials(crl))
	assert.Equal(t, int64(2), crl.Number.Int64())
	require.Len(t, ann.Revoked, 1)
	assert.Equal(t, "Certificate/client", ann.Revoked[0].Object)
	assert.Equal(t, client.NotAfter.UTC(), ann.Revoked[0].NotAfter)

	// Nothing to do until the renewal window of nextUpdate (renewBefore: a third, 80h).
	res = e.run(t1.Add(159*time.Hour), nil)
	assert.False(t, res.Plan.Changes(), "mid-way: %v", res.Plan.Lines())
	res = e.run(t1.Add(160*time.Hour), &e.ids)
	assert.Equal(t, []string{plan.ReasonCRLRenewal}, codes(res.Plan.CA("issuing").Reasons))
	crl, _ = crlOf(t, e, record)
	assert.Equal(t, int64(3), crl.Number.Int64())
	assert.Equal(t, t1.Add(400*time.Hour), crl.NextUpdate.UTC())
	assert.Equal(t, []string{client.SerialNumber.Text(16)}, revokedSerials(crl), "listed until it expires")

	// Once the certificate expired, nothing accepts it: it leaves the list.
	res = e.run(client.NotAfter.Add(time.Minute), &e.ids)
	assert.Contains(t, codes(res.Plan.CA("issuing").Reasons), plan.ReasonCRLPruned)
	crl, _ = crlOf(t, e, record)
	assert.Empty(t, crl.RevokedCertificateEntries)

	// Without spec.crl the list leaves the record and its copy.
	e.edit("cas.yaml", "  crl:\n    validity: 240h\n", "")
	res = e.run(client.NotAfter.Add(2*time.Minute), &e.ids)
	assert.Equal(t, []string{plan.ReasonCRLDisabled}, codes(res.Plan.CA("issuing").Reasons))
	st, err = plan.ReadState(e.state)
	require.NoError(t, err)
	for _, p := range []string{record, copyPath} {
		assert.Empty(t, st.At(p).PlainValues()[plan.KeyCRL], p)
		assert.Empty(t, st.At(p).Annotations[plan.AnnotationCRL], p)
	}
	assert.False(t, e.run(client.NotAfter.Add(3*time.Minute), nil).Plan.Changes())
}

// TestCRLSignedAgainWhenTheCARenews: a CA renewed (same key, new
// certificate) signs its list again, keeping the entries.
func TestCRLSignedAgainWhenTheCARenews(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.edit("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  crl: true\n")
	e.run(t0, &e.ids)
	removeDoc(t, e, "leafs.yaml", "name: client")
	e.run(t0.Add(time.Hour), &e.ids)
	before, _ := crlOf(t, e, "ca/issuing.yaml")
	require.Len(t, before.RevokedCertificateEntries, 1)

	e.edit("cas.yaml", "  validity: 43800h\n  secret:", "  validity: 43700h\n  secret:")
	res := e.run(t0.Add(2*time.Hour), &e.ids)
	require.True(t, res.Plan.CA("issuing").NewCert())
	after, _ := crlOf(t, e, "ca/issuing.yaml")
	assert.Equal(t, revokedSerials(before), revokedSerials(after))
	assert.Greater(t, after.Number.Int64(), before.Number.Int64())
}
