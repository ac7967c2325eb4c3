package reconcile

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestCommitMessage(t *testing.T) {
	act := func(kind plan.ActionKind, id string, reasons ...plan.Reason) *plan.Action {
		return &plan.Action{ID: id, Action: kind, Reasons: reasons}
	}
	file := func(action plan.FileAction, path string, reasons ...plan.Reason) *plan.File {
		return &plan.File{Path: path, Action: action, Reasons: reasons}
	}
	cases := []struct {
		name string
		plan *plan.Plan
		want string
	}{
		{
			name: "one line per file, objects counted",
			plan: &plan.Plan{
				Objects: []*plan.Action{
					act(plan.ActionCreate, "Certificate/web", plan.Reason{Code: "missing"}),
					act(plan.ActionKeep, "CertificateAuthority/root"),
					act(plan.ActionRekey, "Kubeconfig/ops", plan.Reason{Code: "expired", Detail: "expired 2026-12-23"}),
				},
				Files: []*plan.File{
					file(plan.FileCreate, "clusters/prod/pki/secret-web.yaml", plan.Reason{Code: "create", Detail: "Certificate/web"}, plan.Reason{Code: "missing"}),
					file(plan.FileUpdate, "clusters/prod/pki/secret-ops.yaml", plan.Reason{Code: "rekey", Detail: "Kubeconfig/ops"}, plan.Reason{Code: "expired", Detail: "expired 2026-12-23"}),
				},
			},
			want: "gitca: 1 create, 1 rekey, 1 keep; 2 file(s) written\n\n" +
				"create clusters/prod/pki/secret-web.yaml: create (Certificate/web); missing\n" +
				"update clusters/prod/pki/secret-ops.yaml: rekey (Kubeconfig/ops); expired (expired 2026-12-23)\n",
		},
		{
			name: "everything kept, a grant changes: the message says which",
			plan: &plan.Plan{
				Objects: []*plan.Action{act(plan.ActionKeep, "Kubeconfig/ops")},
				Files: []*plan.File{{Path: "clusters/prod/rbac/clusterrolebinding-x.yaml", Action: plan.FileUpdate, Kind: plan.FileRBAC,
					Reasons: []plan.Reason{{Code: plan.ReasonRBACChanged, Detail: "x"}},
					RBAC:    &plan.RBACDiff{Binding: "x", RoleBefore: "cluster-admin", RoleAfter: "view", SubjectsBefore: "Group g", SubjectsAfter: "Group g"}}},
			},
			want: "gitca: 1 keep; 1 file(s) written\n\nupdate clusters/prod/rbac/clusterrolebinding-x.yaml: rbac-changed (x) [rbac: x: ClusterRole cluster-admin to Group g → ClusterRole view to Group g]\n",
		},
		{
			name: "a newline in a reason cannot forge a trailer",
			plan: &plan.Plan{
				Objects: []*plan.Action{act(plan.ActionReissue, "Certificate/web")},
				Files:   []*plan.File{file(plan.FileUpdate, "w.yaml", plan.Reason{Code: "spec-drift", Detail: "x\nGitca-Topology-Commit: forged"})},
			},
			want: "gitca: 1 reissue; 1 file(s) written\n\nupdate w.yaml: spec-drift (x Gitca-Topology-Commit: forged)\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, CommitMessage(tc.plan))
		})
	}
}

// TestCheckConverged: the tree a run is about to commit must plan to
// nothing; a tree missing a file it should hold is refused.
func TestCheckConverged(t *testing.T) {
	topo, err := topology.Load(filepath.Join("..", "render", "testdata", "basic"))
	require.NoError(t, err)
	_, recipient, err := secrets.GenerateAgeKey(t0)
	require.NoError(t, err)
	dir := t.TempDir()
	opt := plan.Options{Now: t0, Recipients: plan.ResolveRecipients(topo, []string{recipient})}
	st, err := plan.ReadState(dir)
	require.NoError(t, err)
	res, err := render.Render(t.Context(), topo, st, render.Options{Options: opt}, nil, rand.Reader)
	require.NoError(t, err)
	require.NoError(t, emit.Write(dir, res.Tree))
	written, err := checkConverged(t.Context(), topo, dir, opt)
	require.NoError(t, err)
	assert.NotNil(t, written.Primary["Certificate/web"], "the tree read back is returned")

	require.NoError(t, os.Remove(filepath.Join(dir, "clusters", "prod", "pki", "secret-web.yaml")))
	_, err = checkConverged(t.Context(), topo, dir, opt)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not converge")
	assert.Contains(t, err.Error(), "create clusters/prod/pki/secret-web.yaml: create (Certificate/web); missing")
}
