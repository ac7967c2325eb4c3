package render

import (
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

func TestBuildKubeconfig(t *testing.T) {
	caKey := newKey(t)
	ca := rootCert(t, "server-ca", caKey, t0, t0.AddDate(5, 0, 0))
	other := rootCert(t, "next-server-ca", newKey(t), t0, t0.AddDate(6, 0, 0))
	key := newKey(t)
	cert, err := SignCertificate(CertSpec{Subject: topology.Subject{CommonName: "alice", Organizations: []string{"kubeconfig:ops", "ops"}},
		Profile: topology.ProfileClient, NotBefore: t0, NotAfter: t0.AddDate(0, 1, 0)}, key.Public(), ca, caKey, rand.Reader)
	require.NoError(t, err)
	m := &Material{Key: key, Cert: cert, Chain: []*x509.Certificate{ca}}

	for _, c := range []struct {
		name         string
		spec         topology.KubeconfigSpec
		wantCurrent  string
		wantClusters map[string]string // cluster entry -> server
		wantContexts map[string]string // context -> cluster entry
	}{
		{
			name:         "one context named after the object",
			spec:         topology.KubeconfigSpec{Username: "alice", Target: topology.KubeconfigTarget{Server: "https://api.example.com:6443", CA: "server-ca"}},
			wantCurrent:  "ops",
			wantClusters: map[string]string{"ops": "https://api.example.com:6443"},
			wantContexts: map[string]string{"ops": "ops"},
		},
		{
			name: "kcp workspaces: one cluster entry per path, the first context current",
			spec: topology.KubeconfigSpec{Username: "alice",
				Target: topology.KubeconfigTarget{Name: "kcp", Server: "https://kcp.example.com:6443/", CA: "server-ca", TLSServerName: "front-proxy.kcp"},
				Contexts: []topology.ContextSpec{
					{Name: "team", Path: "/clusters/root:org:team", Namespace: "apps"},
					{Name: "root", Path: "/clusters/root"},
				}},
			wantCurrent:  "team",
			wantClusters: map[string]string{"kcp:clusters/root:org:team": "https://kcp.example.com:6443/clusters/root:org:team", "kcp:clusters/root": "https://kcp.example.com:6443/clusters/root"},
			wantContexts: map[string]string{"team": "kcp:clusters/root:org:team", "root": "kcp:clusters/root"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := &topology.Kubeconfig{Metadata: topology.ObjectMeta{Name: "ops"}, Spec: c.spec}
			raw, err := buildKubeconfig(k, m, []*x509.Certificate{ca, other})
			require.NoError(t, err)
			again, err := buildKubeconfig(k, m, []*x509.Certificate{ca, other})
			require.NoError(t, err)
			assert.Equal(t, raw, again, "same inputs, same bytes")

			cfg, err := clientcmd.Load(raw)
			require.NoError(t, err)
			require.NoError(t, clientcmd.Validate(*cfg))
			assert.Equal(t, c.wantCurrent, cfg.CurrentContext)
			servers := map[string]string{}
			for n, cl := range cfg.Clusters {
				servers[n] = cl.Server
				assert.Equal(t, EncodeCertsPEM(ca, other), cl.CertificateAuthorityData, "%s trusts the whole target bundle", n)
				assert.Equal(t, c.spec.Target.TLSServerName, cl.TLSServerName)
			}
			assert.Equal(t, c.wantClusters, servers)
			contexts := map[string]string{}
			for n, ctx := range cfg.Contexts {
				contexts[n] = ctx.Cluster
				assert.Equal(t, "alice", ctx.AuthInfo)
			}
			assert.Equal(t, c.wantContexts, contexts)
			if c.name != "one context named after the object" {
				assert.Equal(t, "apps", cfg.Contexts["team"].Namespace)
			}
			require.Contains(t, cfg.AuthInfos, "alice")
			assert.Equal(t, EncodeCertsPEM(cert), cfg.AuthInfos["alice"].ClientCertificateData)

			got, err := keyFromKubeconfig(raw)
			require.NoError(t, err)
			assert.True(t, KeyMatches(got, cert.PublicKey), "the embedded key is the certificate's")
		})
	}

	_, err = keyFromKubeconfig([]byte("apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: t\n"))
	assert.ErrorContains(t, err, "no embedded client key")
}

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
			st, err := secrets.ReadState(e.state)
			require.NoError(t, err)
			before := st.Primary["Kubeconfig/ops"].Cert()
			oldKey, err := keyFromKubeconfig(openKubeconfig(t, e, rel))
			require.NoError(t, err)

			e.edit(c.file, c.old, c.new)
			res := e.run(t0.Add(2*time.Hour), &e.ids)
			a := res.Plan.Action("Kubeconfig/ops")
			assert.Equal(t, ActionUpdateChain, a.Action, "%v", a.Reasons)
			require.NotEmpty(t, a.Reasons)
			assert.Equal(t, ReasonTargetChanged, a.Reasons[0].Code)
			assert.Contains(t, res.Tree.Write, rel)

			st, err = secrets.ReadState(e.state)
			require.NoError(t, err)
			assert.Equal(t, before.Raw, st.Primary["Kubeconfig/ops"].Cert().Raw, "not re-signed")
			kc := openKubeconfig(t, e, rel)
			cfg, err := clientcmd.Load(kc)
			require.NoError(t, err)
			root := st.Primary["CertificateAuthority/root"].Cert()
			for _, cl := range cfg.Clusters {
				assert.Equal(t, c.wantServer, cl.Server)
				assert.Equal(t, EncodeCertsPEM(root), cl.CertificateAuthorityData, "trusts the target CA as it is now")
			}
			gotKey, err := keyFromKubeconfig(kc)
			require.NoError(t, err)
			assert.True(t, KeyMatches(gotKey, oldKey.Public()), "same client key")
		})
	}
}
