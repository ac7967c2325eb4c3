package render

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
)

// openKubeconfig decrypts a rendered kubeconfig Secret in memory.
func openKubeconfig(t *testing.T, e *env, rel string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.state, rel))
	require.NoError(t, err)
	plain, err := secrets.Open(raw, e.ids)
	require.NoError(t, err)
	var doc struct {
		StringData map[string]string `yaml:"stringData"`
	}
	require.NoError(t, yaml.Unmarshal(plain, &doc))
	require.Contains(t, doc.StringData, "kubeconfig")
	return []byte(doc.StringData["kubeconfig"])
}

// TestKubeconfigFollowsItsTargetWithoutResigning: a new server URL or a
// renewed target CA rewrites the kubeconfig, and its client certificate and
// key stay exactly as they were.
func TestKubeconfigFollowsItsTargetWithoutResigning(t *testing.T) {
	const rel = "clusters/prod/pki/secret-ops.yaml"
	for _, c := range []struct {
		name       string
		file, old  string
		new        string
		wantServer string
	}{
		{"new server URL", "leafs.yaml", "server: https://api.prod.example.com:6443", "server: https://api2.prod.example.com:6443", "https://api2.prod.example.com:6443"},
		// root: 87600h; renewBefore longer than its age makes it renew with the same key now.
		{"target CA renewed", "cas.yaml", "  validity: 87600h\n", "  validity: 87600h\n  renewBefore: 87599h\n", "https://api.prod.example.com:6443"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "testdata/basic")
			e.run(t0, &e.ids)
			st, err := plan.ReadState(e.state)
			require.NoError(t, err)
			before := st.Primary["Kubeconfig/ops"].Cert()
			oldKey, err := apply.KeyFromKubeconfig(openKubeconfig(t, e, rel))
			require.NoError(t, err)

			e.edit(c.file, c.old, c.new)
			res := e.run(t0.Add(2*time.Hour), &e.ids)
			a := res.Plan.Action("Kubeconfig/ops")
			assert.Equal(t, plan.ActionUpdateChain, a.Action, "%v", a.Reasons)
			var codes []string
			for _, r := range a.Reasons {
				codes = append(codes, r.Code)
			}
			assert.Contains(t, codes, plan.ReasonTargetChanged)
			assert.Contains(t, res.Tree.Write, rel)

			st, err = plan.ReadState(e.state)
			require.NoError(t, err)
			assert.Equal(t, before.Raw, st.Primary["Kubeconfig/ops"].Cert().Raw, "not re-signed")
			kc := openKubeconfig(t, e, rel)
			cfg, err := clientcmd.Load(kc)
			require.NoError(t, err)
			root := st.Primary["CertificateAuthority/root"].Cert()
			for _, cl := range cfg.Clusters {
				assert.Equal(t, c.wantServer, cl.Server)
				assert.Equal(t, sign.EncodeCertsPEM(root), cl.CertificateAuthorityData, "trusts the target CA as it is now")
			}
			gotKey, err := apply.KeyFromKubeconfig(kc)
			require.NoError(t, err)
			assert.True(t, sign.KeyMatches(gotKey, oldKey.Public()), "same client key")
		})
	}
}
