package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// TestPlanGoldenTrustAndRBAC is the review the plan exists for, on the kcp
// example: a CA enters a client-CA file (every bundle inheriting it gains the
// CA), and a kubeconfig's grant drops from cluster-admin to view. Every
// object keeps its certificate, yet the plan has changes, and shows them
// first: which certificate enters which bundle, by subject and fingerprint,
// and which binding is revoked and which granted.
func TestPlanGoldenTrustAndRBAC(t *testing.T) {
	e := newEnv(t, filepath.Join("..", "examples", "kcp"))
	e.run(t0, &e.ids)
	extra, err := os.ReadFile(filepath.Join("testdata", "trust", "contractors-idp-ca.pem"))
	require.NoError(t, err)
	idp := filepath.Join(e.topo, "client-cas", "corp-idp-ca.pem")
	old, err := os.ReadFile(idp)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(idp, append(old, extra...), 0o644))
	e.edit("kcp.yaml", `clusterRoles: ["cluster-admin"]`, `clusterRoles: ["view"]`)

	top, err := topology.Load(e.topo)
	require.NoError(t, err)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	p, err := plan.Make(top, st, plan.Options{Now: t0.Add(time.Hour), Recipients: plan.ResolveRecipients(top, []string{e.recipient})})
	require.NoError(t, err)

	for _, a := range p.Objects {
		assert.Equal(t, plan.ActionKeep, a.Action, "%s: no certificate changes", a.ID)
	}
	require.True(t, p.Changes(), "--detailed-exitcode must say 2")
	certs, err := sign.ParseCertsPEM(extra)
	require.NoError(t, err)
	fp := sign.Fingerprint(certs[0])
	var trust []string
	for _, f := range p.TrustFiles() {
		trust = append(trust, f.Path)
		if f.Trust != nil {
			require.Len(t, f.Trust.Enter, 1, f.Path)
			assert.Equal(t, fp, f.Trust.Enter[0].SHA256)
			assert.Empty(t, f.Trust.Leave)
		}
	}
	assert.Contains(t, trust, "clusters/kcp-prod/kcp-alpha/secret-alpha-client-ca-bundle.yaml")
	assert.Contains(t, trust, "clusters/root-initech-teamgibbons/rbac/clusterrolebinding-gitca-kubeconfig-susan-cluster-admin.yaml")
	assert.Contains(t, trust, "clusters/root-initech-teamgibbons/rbac/clusterrolebinding-gitca-kubeconfig-susan-view.yaml")

	var text, md, js bytes.Buffer
	require.NoError(t, p.WriteText(&text, false))
	require.NoError(t, p.WriteMarkdown(&md))
	require.NoError(t, p.WriteJSON(&js))
	golden(t, "trust.txt", text.Bytes())
	golden(t, "trust.md", md.Bytes())
	golden(t, "trust.json", js.Bytes())
	// Trust changes come first, in the text and in the pull-request comment.
	assert.True(t, strings.HasPrefix(text.String(), "Trust changes (review these first):\n"))
	assert.Less(t, strings.Index(md.String(), "#### Trust changes"), strings.Index(md.String(), "#### What changes"), "then the picture of what changes")
	assert.Less(t, strings.Index(md.String(), "#### What changes"), strings.Index(md.String(), "#### Files"))

	// What the plan promised is what a render writes.
	res := e.run(t0.Add(time.Hour), &e.ids)
	var written []string
	for _, f := range p.Files {
		written = append(written, f.Path)
	}
	assert.Equal(t, written, res.Tree.Paths())
}
