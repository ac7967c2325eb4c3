package apply

import (
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

func TestBuildKubeconfig(t *testing.T) {
	caKey := testpki.Key(t)
	ca := testpki.Root(t, "server-ca", caKey, t0, t0.AddDate(5, 0, 0))
	other := testpki.Root(t, "next-server-ca", testpki.Key(t), t0, t0.AddDate(6, 0, 0))
	key := testpki.Key(t)
	cert, err := sign.SignCertificate(sign.CertSpec{Subject: topology.Subject{CommonName: "alice", Organizations: []string{"kubeconfig:ops", "ops"}},
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
				assert.Equal(t, sign.EncodeCertsPEM(ca, other), cl.CertificateAuthorityData, "%s trusts the whole target bundle", n)
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
			assert.Equal(t, sign.EncodeCertsPEM(cert), cfg.AuthInfos["alice"].ClientCertificateData)

			got, err := KeyFromKubeconfig(raw)
			require.NoError(t, err)
			assert.True(t, sign.KeyMatches(got, cert.PublicKey), "the embedded key is the certificate's")
		})
	}

	_, err = KeyFromKubeconfig([]byte("apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: t\n"))
	assert.ErrorContains(t, err, "no embedded client key")
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
