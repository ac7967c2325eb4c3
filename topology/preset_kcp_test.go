package topology

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kcpObj is the part of a generated object the chart decides.
type kcpObj struct {
	kind, issuer, cn, profile string
	orgs                      []string
	secret                    string // namespace/name; empty for CAs (their keys stay in ca/)
}

// kcpChartAlpha is the "Certificate Management" chart written out by hand for
// root shard alpha with front-proxy edge (namespace kcp-alpha), plus the
// serving certificates of alpha's shard and virtual workspace. It is kept
// independent of the preset's table on purpose: the test compares the two.
var kcpChartAlpha = map[string]kcpObj{
	// The chart's kcp-pki-bootstrap is a self-signing issuer, not a CA: kcp-pki-ca signs itself.
	"kcp-pki-ca": {kind: "CA", cn: "kcp-pki-ca"},
	"alpha-ca":   {kind: "CA", issuer: "kcp-pki-ca", cn: "alpha-ca"},

	"alpha-kcp-etcd-client-ca":      {kind: "CA", issuer: "alpha-ca", cn: "kcp-etcd-client-ca"},
	"alpha-kcp-etcd-peer-ca":        {kind: "CA", issuer: "alpha-ca", cn: "kcp-etcd-peer-ca"},
	"alpha-server-ca":               {kind: "CA", issuer: "alpha-ca", cn: "alpha-server-ca"},
	"alpha-requestheader-client-ca": {kind: "CA", issuer: "alpha-ca", cn: "alpha-requestheader-client-ca"},
	"alpha-client-ca":               {kind: "CA", issuer: "alpha-ca", cn: "alpha-client-ca"},
	"alpha-kcp-service-account-ca":  {kind: "CA", issuer: "alpha-ca", cn: "kcp-service-account-ca"},

	"alpha-kcp-etcd":                  {kind: "Cert", issuer: "alpha-kcp-etcd-client-ca", cn: "kcp-etcd", profile: "peer", secret: "kcp-alpha/kcp-etcd"},
	"alpha-kcp-etcd-client":           {kind: "Cert", issuer: "alpha-kcp-etcd-client-ca", cn: "kcp-etcd-client", profile: "client", secret: "kcp-alpha/kcp-etcd-client"},
	"alpha-kcp-etcd-peer":             {kind: "Cert", issuer: "alpha-kcp-etcd-peer-ca", cn: "kcp-etcd-peer", profile: "peer", secret: "kcp-alpha/kcp-etcd-peer"},
	"alpha-kcp":                       {kind: "Cert", issuer: "alpha-server-ca", cn: "kcp", profile: "server", secret: "kcp-alpha/kcp"},
	"alpha-edge-server":               {kind: "Cert", issuer: "alpha-server-ca", cn: "alpha-edge-server", profile: "server", secret: "kcp-alpha/alpha-edge-server"},
	"alpha-kcp-virtual-workspaces":    {kind: "Cert", issuer: "alpha-server-ca", cn: "kcp-virtual-workspaces", profile: "server", secret: "kcp-alpha/kcp-virtual-workspaces"},
	"alpha-edge-requestheader":        {kind: "Cert", issuer: "alpha-requestheader-client-ca", cn: "alpha-edge-requestheader", profile: "client", secret: "kcp-alpha/alpha-edge-requestheader"},
	"alpha-kcp-front-proxy-vw-client": {kind: "Cert", issuer: "alpha-requestheader-client-ca", cn: "kcp-front-proxy-vw-client", profile: "client", secret: "kcp-alpha/kcp-front-proxy-vw-client"},
	"alpha-edge-kubeconfig": {kind: "Cert", issuer: "alpha-client-ca", cn: "alpha-edge-kubeconfig", profile: "client",
		orgs: []string{"system:masters"}, secret: "kcp-alpha/alpha-edge-kubeconfig"},
	"alpha-kcp-internal-admin-kubeconfig": {kind: "Cert", issuer: "alpha-client-ca", cn: "kcp-internal-admin-kubeconfig", profile: "client",
		orgs: []string{"system:masters"}, secret: "kcp-alpha/kcp-internal-admin-kubeconfig"},
	"alpha-kcp-service-account": {kind: "Cert", issuer: "alpha-kcp-service-account-ca", cn: "kcp-service-account", profile: "client", secret: "kcp-alpha/kcp-service-account"},

	// Beyond the chart: shards and virtual workspaces serve too.
	"alpha-alpha-1-server":  {kind: "Cert", issuer: "alpha-server-ca", cn: "alpha-alpha-1-server", profile: "server", secret: "kcp-alpha/alpha-alpha-1-server"},
	"alpha-alpha-vw-server": {kind: "Cert", issuer: "alpha-server-ca", cn: "alpha-alpha-vw-server", profile: "server", secret: "kcp-alpha/alpha-alpha-vw-server"},
}

func loadKCPExample(t *testing.T) *Topology {
	t.Helper()
	top, err := Load("../examples/kcp")
	require.NoError(t, err)
	return top
}

func TestKCPExampleMatchesTheChart(t *testing.T) {
	top := loadKCPExample(t)
	got := map[string]kcpObj{}
	for _, ca := range top.CAs {
		if r := ca.Metadata.Annotations[AnnotationKCPRootShard]; r == "alpha" || r == "" {
			got[ca.Metadata.Name] = kcpObj{kind: "CA", issuer: ca.Spec.Issuer, cn: ca.Spec.Subject.CommonName}
		}
	}
	for _, c := range top.Certificates {
		if c.Metadata.Annotations[AnnotationKCPRootShard] == "alpha" {
			got[c.Metadata.Name] = kcpObj{kind: "Cert", issuer: c.Spec.Issuer, cn: c.Spec.Subject.CommonName, profile: string(c.Spec.Profile),
				orgs: c.Spec.Subject.Organizations, secret: c.Spec.Secret.Namespace + "/" + c.Spec.Secret.Name}
			assert.Equal(t, "kcp-prod", c.Spec.Secret.Cluster, c.Metadata.Name)
		}
	}
	for name, o := range got {
		if len(o.orgs) == 0 {
			o.orgs = nil
			got[name] = o
		}
	}
	assert.Equal(t, kcpChartAlpha, got)

	// The second root shard hangs off the same kcp-pki-ca with its own tree,
	// under the same Secret names in its own namespace.
	beta := top.CA("beta-ca")
	require.NotNil(t, beta)
	assert.Equal(t, "kcp-pki-ca", beta.Spec.Issuer)
	etcd := top.Certificate("beta-kcp-etcd")
	require.NotNil(t, etcd)
	assert.Equal(t, "beta-kcp-etcd-client-ca", etcd.Spec.Issuer)
	assert.Equal(t, SecretRef{Cluster: "kcp-prod", Namespace: "kcp-beta", Name: "kcp-etcd"}, etcd.Spec.Secret)
	assert.Nil(t, top.Certificate("beta-edge-server"), "beta has no front-proxy")

	// kcp-pki-ca is the one root, with room for <rootshard>-ca and one CA below it.
	root := top.CA("kcp-pki-ca")
	require.NotNil(t, root)
	require.NotNil(t, root.Spec.PathLen)
	assert.Equal(t, 2, *root.Spec.PathLen)
	assert.Nil(t, root.Spec.Secret, "the root's key stays in ca/")
	assert.Nil(t, top.CA("kcp-pki-bootstrap"), "no CA stands for the bootstrap issuer")
	var roots []string
	for _, ca := range top.CAs {
		if ca.Spec.Issuer == "" {
			roots = append(roots, ca.Metadata.Name)
		}
	}
	assert.Equal(t, []string{"kcp-pki-ca"}, roots)

	// Every CA below <rootshard>-ca only signs leafs.
	for _, ca := range top.CAs {
		if ca.Spec.Issuer == "alpha-ca" || ca.Spec.Issuer == "beta-ca" {
			require.NotNil(t, ca.Spec.PathLen, ca.Metadata.Name)
			assert.Equal(t, 0, *ca.Spec.PathLen, ca.Metadata.Name)
		}
	}
}

func TestKCPObjectName(t *testing.T) {
	for _, tc := range []struct{ chart, fp, want string }{
		{"kcp-etcd-client-ca", "", "alpha-kcp-etcd-client-ca"},
		{"kcp", "", "alpha-kcp"},
		{"$rootshard-server-ca", "", "alpha-server-ca"},
		{"$rootshard-$frontproxy-server", "edge", "alpha-edge-server"},
		{"kcp-pki-ca", "", "kcp-pki-ca"},
	} {
		assert.Equal(t, tc.want, KCPObjectName(tc.chart, "alpha", tc.fp), tc.chart)
	}
}

func TestKCPExampleSANs(t *testing.T) {
	top := loadKCPExample(t)
	for _, tc := range []struct {
		name     string
		dns, ips []string
	}{
		{"alpha-kcp", []string{"api.alpha.kcp.example.com", "alpha-kcp", "alpha-kcp.kcp-alpha", "alpha-kcp.kcp-alpha.svc", "alpha-kcp.kcp-alpha.svc.cluster.local"}, nil},
		{"alpha-edge-server", []string{"kcp.example.com", "edge-front-proxy", "edge-front-proxy.kcp-alpha", "edge-front-proxy.kcp-alpha.svc",
			"edge-front-proxy.kcp-alpha.svc.cluster.local", "api.alpha.kcp.example.com"}, nil},
		{"alpha-kcp-etcd", []string{"localhost", "alpha-etcd", "alpha-etcd.kcp-alpha", "alpha-etcd.kcp-alpha.svc", "alpha-etcd.kcp-alpha.svc.cluster.local"},
			[]string{"127.0.0.1", "::1"}},
		{"alpha-alpha-1-server", []string{"alpha-1.kcp.example.com", "alpha-1-shard-kcp", "alpha-1-shard-kcp.kcp-alpha",
			"alpha-1-shard-kcp.kcp-alpha.svc", "alpha-1-shard-kcp.kcp-alpha.svc.cluster.local"}, nil},
		{"alpha-kcp-etcd-client", nil, nil},
	} {
		c := top.Certificate(tc.name)
		require.NotNil(t, c, tc.name)
		assert.Equal(t, tc.dns, c.Spec.DNSNames, tc.name)
		assert.Equal(t, tc.ips, c.Spec.IPAddresses, tc.name)
	}
}

func TestKCPValidityDefaultsAndOverrides(t *testing.T) {
	top := loadKCPExample(t)
	get := func(p ValidityPolicy) [2]time.Duration { v, rb := p.Get(); return [2]time.Duration{v, rb} }
	ten, thirty := 87600*time.Hour, 720*time.Hour
	year, week := 8760*time.Hour, 168*time.Hour
	assert.Equal(t, [2]time.Duration{ten, thirty}, get(top.CA("kcp-pki-ca").Spec.ValidityPolicy))
	assert.Equal(t, [2]time.Duration{ten, thirty}, get(top.CA("alpha-client-ca").Spec.ValidityPolicy))
	assert.Equal(t, [2]time.Duration{year, week}, get(top.Certificate("alpha-kcp").Spec.ValidityPolicy))
	assert.Equal(t, [2]time.Duration{year, week}, get(top.Kubeconfig("beta-ci").Spec.ValidityPolicy))
	// Overridden in the example: validity only, the renewal margin stays.
	assert.Equal(t, [2]time.Duration{2160 * time.Hour, week}, get(top.Certificate("alpha-edge-server").Spec.ValidityPolicy))
	assert.Equal(t, [2]time.Duration{2160 * time.Hour, week}, get(top.Kubeconfig("susan").Spec.ValidityPolicy))
	assert.Equal(t, ECDSAP256, top.Certificate("alpha-kcp-service-account").Spec.KeyAlgorithm)

	// Without any policy in the preset, the kcp defaults apply, not the Config's.
	dir := writeTree(t, map[string]string{
		"config.yaml": "apiVersion: gitca.dev/v1alpha1\nkind: Config\nspec:\n  defaults:\n    ca: {validity: 1000h}\n    leaf: {validity: 100h}\n",
		"kcp.yaml":    kcpDoc("    rootShards: [{name: root, hostname: root.example.com}]\n    certificates:\n      - {name: root-kcp, validity: 48h}\n      - {name: root-client-ca, keyAlgorithm: ECDSA-P384, renewBefore: 2000h}\n"),
	})
	top, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, [2]time.Duration{ten, thirty}, get(top.CA("root-ca").Spec.ValidityPolicy))
	assert.Equal(t, [2]time.Duration{year, week}, get(top.Certificate("root-kcp-etcd").Spec.ValidityPolicy))
	// 168h does not fit into 48h: a third of the validity instead.
	assert.Equal(t, [2]time.Duration{48 * time.Hour, 16 * time.Hour}, get(top.Certificate("root-kcp").Spec.ValidityPolicy))
	assert.Equal(t, [2]time.Duration{ten, 2000 * time.Hour}, get(top.CA("root-client-ca").Spec.ValidityPolicy))
	assert.Equal(t, ECDSAP384, top.CA("root-client-ca").Spec.KeyAlgorithm)
	assert.Equal(t, ECDSAP256, top.CA("root-server-ca").Spec.KeyAlgorithm)
}

func TestKCPClientCABundleInheritance(t *testing.T) {
	top := loadKCPExample(t)
	// The document's table: RootShard = root client CA + its ref; every other
	// component = the RootShard's bundle (inherited by reference) + its own ref.
	for _, tc := range []struct {
		bundle string
		want   []BundleSource
	}{
		{"alpha-client-ca-bundle", []BundleSource{{CA: "alpha-client-ca"}, {File: "client-cas/corp-idp-ca.pem"}}},
		{"alpha-alpha-1-client-ca-bundle", []BundleSource{{Bundle: "alpha-client-ca-bundle"}}},
		{"alpha-edge-client-ca-bundle", []BundleSource{{Bundle: "alpha-client-ca-bundle"}, {File: "client-cas/partner-ca.pem"}}},
		{"alpha-alpha-vw-client-ca-bundle", []BundleSource{{Bundle: "alpha-client-ca-bundle"}}},
		{"beta-client-ca-bundle", []BundleSource{{CA: "beta-client-ca"}}},
		// A CA's own Secret holds that CA alone, never its parents.
		{"alpha-requestheader-client-ca", []BundleSource{{CA: "alpha-requestheader-client-ca"}}},
		{"alpha-kcp-etcd-client-ca", []BundleSource{{CA: "alpha-kcp-etcd-client-ca"}}},
	} {
		b := top.TrustBundle(tc.bundle)
		require.NotNil(t, b, tc.bundle)
		assert.Equal(t, tc.want, b.Spec.Sources, tc.bundle)
		require.NotNil(t, b.Spec.Secret, tc.bundle)
		assert.Nil(t, b.Spec.ConfigMap, tc.bundle)
	}
	assert.Equal(t, "kcp-etcd-client-ca", top.TrustBundle("alpha-kcp-etcd-client-ca").Spec.Secret.Name)
	assert.Equal(t, "kcp-beta", top.TrustBundle("beta-kcp-etcd-client-ca").Spec.Secret.Namespace)
	assert.Nil(t, top.TrustBundle("alpha-ca"), "the root shard CA is never handed to a component")
}

func TestKCPKubeconfigs(t *testing.T) {
	top := loadKCPExample(t)
	type want struct {
		issuer, server, ca, secret string
		contexts                   []ContextSpec
		groups                     []string
	}
	base := []ContextSpec{{Name: "default", Path: "/clusters/root"}, {Name: "base"}}
	for name, w := range map[string]want{
		"susan":            {"alpha-client-ca", "https://kcp.example.com:443", "alpha-server-ca", "kcp-alpha/susan-kubeconfig", base, []string{"team-gibbons"}},
		"shard-maintainer": {"alpha-client-ca", "https://alpha-1.kcp.example.com:6443", "alpha-server-ca", "kcp-alpha/shard-maintainer-kubeconfig", append(slices.Clone(base), ContextSpec{Name: "shard-base"}), []string{"system:kcp:admin"}},
		"beta-ci":          {"beta-client-ca", "https://api.beta.kcp.example.com:6443", "beta-server-ca", "kcp-beta/ci-kubeconfig", append(slices.Clone(base), ContextSpec{Name: "shard-base"}), []string{"ci"}},
		"alpha-admin-shard-admin": {"alpha-client-ca", "https://api.alpha.kcp.example.com:6443", "alpha-server-ca", "kcp-alpha/alpha-admin-kubeconfig",
			[]ContextSpec{{Name: "system:admin", Path: "/clusters/system:admin"}, {Name: "shard-base", Path: "/clusters/base"}}, []string{"system:masters"}},
		"alpha-admin-kcp-admin": {"alpha-client-ca", "https://api.alpha.kcp.example.com:6443", "alpha-server-ca", "kcp-alpha/alpha-admin-kubeconfig",
			[]ContextSpec{{Name: "root", Path: "/clusters/root"}, {Name: "base", Path: "/clusters/base"}}, []string{"system:kcp:admin"}},
		"alpha-admin-user": {"alpha-client-ca", "https://api.alpha.kcp.example.com:6443", "alpha-server-ca", "kcp-alpha/alpha-admin-kubeconfig",
			nil, nil},
	} {
		k := top.Kubeconfig(name)
		require.NotNil(t, k, name)
		s := k.Spec
		assert.Equal(t, w.issuer, s.Issuer, name)
		assert.Equal(t, w.server, s.Target.Server, name)
		assert.Equal(t, w.ca, s.Target.CA, name)
		assert.Equal(t, w.secret, s.Secret.Namespace+"/"+s.Secret.Name, name)
		assert.Equal(t, w.contexts, s.Contexts, name)
		assert.Equal(t, w.groups, s.Groups, name)
	}
	assert.Len(t, top.Kubeconfigs, 6)
	// kcp's admin.kubeconfig is one file: the three admin users merge into one Secret.
	for _, u := range []string{"shard-admin", "kcp-admin", "user"} {
		assert.Equal(t, "alpha-admin-kubeconfig", top.Kubeconfig("alpha-admin-"+u).Spec.MergeInto, u)
	}

	susan := top.Kubeconfig("susan").Spec
	assert.False(t, susan.OmitKubeconfigGroup, "kubeconfig:susan is what the RBAC binds")
	require.NotNil(t, susan.Authorization)
	assert.Equal(t, &ClusterRoleBindings{Cluster: "root:initech:teamgibbons", ClusterRoles: []string{"cluster-admin"}}, susan.Authorization.ClusterRoleBindings)
	admin := top.Kubeconfig("alpha-admin-shard-admin").Spec
	assert.True(t, admin.AllowPrivilegedGroups)
	assert.True(t, admin.OmitKubeconfigGroup, "kcp's own admin users carry exactly their groups")
}

func TestKCPGroupDropped(t *testing.T) {
	for _, tc := range []struct {
		name         string
		drop, passOn []string
		group        string
		want         bool
	}{
		{"default drops system:masters", nil, nil, "system:masters", true},
		{"default drops logical-cluster-admin", nil, nil, "system:kcp:logical-cluster-admin", true},
		{"default passes others", nil, nil, "system:kcp:admin", false},
		{"explicit empty drop list drops nothing", []string{}, nil, "system:masters", false},
		{"explicit list replaces the default", []string{"team-x"}, nil, "system:masters", false},
		{"prefix drop", []string{"system:*"}, nil, "system:kcp:admin", true},
		{"pass-on list excludes the rest", []string{}, []string{"team-*"}, "kubeconfig:susan", true},
		{"pass-on prefix", []string{}, []string{"team-*"}, "team-a", false},
		{"drop wins over pass-on", []string{"team-a"}, []string{"team-*"}, "team-a", true},
	} {
		assert.Equal(t, tc.want, KCPGroupDropped(tc.drop, tc.passOn, tc.group), tc.name)
	}
}

// kcpDoc is a kcp Preset document whose spec.kcp section is body (indented by four).
func kcpDoc(body string) string {
	return "apiVersion: gitca.dev/v1alpha1\nkind: Preset\nmetadata:\n  name: kcp\nspec:\n  type: kcp\n  kcp:\n" + body
}

const kcpTwoComponents = `    rootShards:
      - name: root
        hostname: root.example.com
        shards: [{name: s1, hostname: s1.example.com}]
        frontProxies:
          - name: fp
            hostname: fp.example.com
`

func TestKCPPresetErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		files map[string]string
		want  []string // every one must appear in the error
	}{
		{name: "no kcp section", body: "", want: []string{"spec.kcp: spec.kcp is required"}},
		{name: "no root shard", body: "    cluster: c\n", want: []string{"spec.kcp.rootShards: at least one root shard is required"}},
		{name: "missing hostname", body: "    rootShards: [{name: root}]\n", want: []string{"spec.kcp.rootShards[0].hostname: hostname is required"}},
		{name: "bad names and port", body: "    rootShards: [{name: Root_1, hostname: 'a b', port: 70000}]\n",
			want: []string{`rootShards[0].name: invalid name "Root_1"`, `rootShards[0].hostname: invalid hostname "a b"`, "rootShards[0].port: invalid port 70000"}},
		{name: "duplicate component names", body: "    rootShards:\n      - {name: root, hostname: r.example.com, shards: [{name: root, hostname: s.example.com}]}\n",
			want: []string{`rootShards[0].shards[0].name: duplicate component name "root", first at spec.kcp.rootShards[0]`}},
		{name: "two root shards in one namespace",
			body: "    rootShards:\n      - {name: a, hostname: a.example.com}\n      - {name: b, hostname: b.example.com}\n",
			want: []string{`rootShards[1].namespace: root shard "b" shares namespace "kcp" of cluster "kcp"`}},
		{name: "bundle ref with two sources", body: "    rootShards: [{name: root, hostname: r.example.com, clientCABundleRef: {file: a.pem, ca: x}}]\n",
			want: []string{"rootShards[0].clientCABundleRef: clientCABundleRef must set exactly one of file, bundle, ca; this one sets 2"}},
		{name: "bundle file missing", body: "    rootShards: [{name: root, hostname: r.example.com, clientCABundleRef: {file: nope.pem}}]\n",
			want: []string{`TrustBundle "root-client-ca-bundle" generated by Preset "kcp"`, `file "nope.pem" does not exist`}},
		{name: "bad SAN", body: "    rootShards: [{name: root, hostname: r.example.com, extraSANs: ['not a name'], etcdSANs: ['10.0.0.1', 'etcd.example.com', '!']}]\n",
			want: []string{`rootShards[0].extraSANs[0]: invalid SAN "not a name"`, `rootShards[0].etcdSANs[2]: invalid SAN "!"`}},
		{name: "empty drop group", body: kcpTwoComponents + "            dropGroups: ['']\n",
			want: []string{`frontProxies[0].dropGroups[0]: invalid group ""`}},
		{name: "kubeconfig without target", body: kcpTwoComponents + "    kubeconfigs: [{name: k, username: u}]\n",
			want: []string{"kubeconfigs[0].target: a kubeconfig must target exactly one of frontProxyRef, shardRef, rootShardRef; this one sets 0"}},
		{name: "kubeconfig with two targets", body: kcpTwoComponents + "    kubeconfigs: [{name: k, username: u, target: {shardRef: {name: s1}, rootShardRef: {name: root}}}]\n",
			want: []string{"this one sets 2"}},
		{name: "kubeconfig target of the wrong kind", body: kcpTwoComponents + "    kubeconfigs: [{name: k, username: u, target: {frontProxyRef: {name: s1}}}]\n",
			want: []string{`kubeconfigs[0].target.frontProxyRef.name: FrontProxy "s1" does not exist in this preset (existing FrontProxys: fp)`}},
		{name: "dropped group through the front-proxy", body: kcpTwoComponents +
			"    kubeconfigs: [{name: k, username: u, groups: [dev, 'system:kcp:logical-cluster-admin'], target: {frontProxyRef: {name: fp}}}]\n",
			want: []string{`kubeconfigs[0].groups[1]: front-proxy "fp" drops group "system:kcp:logical-cluster-admin"`, "allowDroppedGroups: true"}},
		{name: "system:masters through the front-proxy", body: kcpTwoComponents +
			"    kubeconfigs: [{name: k, username: u, groups: ['system:masters'], allowPrivilegedGroups: true, target: {frontProxyRef: {name: fp}}}]\n",
			want: []string{`kubeconfigs[0].groups[0]: front-proxy "fp" drops group "system:masters"`}},
		{name: "system:masters needs its own opt-in too", body: kcpTwoComponents +
			"    kubeconfigs: [{name: k, username: u, groups: ['system:masters'], allowDroppedGroups: true, target: {frontProxyRef: {name: fp}}}]\n",
			want: []string{`in Kubeconfig "k" generated by Preset "kcp": group "system:masters" grants unchecked cluster-admin`}},
		{name: "pass-on list strips the kubeconfig group", body: kcpTwoComponents + "            passOnGroups: ['team-*']\n" +
			"    kubeconfigs: [{name: k, username: u, groups: [team-a], target: {frontProxyRef: {name: fp}}}]\n",
			want: []string{`kubeconfigs[0].groups: front-proxy "fp" drops group "kubeconfig:k"`}},
		{name: "Ed25519 preset-wide reaches the service-account key", body: "    keyAlgorithm: Ed25519\n    rootShards: [{name: root, hostname: r.example.com}]\n",
			want: []string{"spec.kcp.keyAlgorithm: Ed25519 cannot be used for root-kcp-service-account"}},
		{name: "Ed25519 override of the service-account key", body: "    rootShards: [{name: root, hostname: r.example.com}]\n    certificates: [{name: root-kcp-service-account, keyAlgorithm: Ed25519}]\n",
			want: []string{"spec.kcp.certificates[0].keyAlgorithm: Ed25519 cannot be used"}},
		{name: "unknown override", body: "    rootShards: [{name: root, hostname: r.example.com}]\n    certificates: [{name: kcp, validity: 1h}]\n",
			want: []string{`spec.kcp.certificates[0].name: no CA, certificate or kubeconfig "kcp" is generated by this preset (existing generated objects: kcp-pki-ca, root-ca,`}},
		{name: "bad policies", body: "    leaf: {validity: 100000h}\n    ca: {renewBefore: -1h}\n    rootShards: [{name: root, hostname: r.example.com}]\n",
			want: []string{"spec.kcp.ca.renewBefore: renewBefore must be positive", "spec.kcp.leaf.validity: leaf validity 100000h is longer than the CA validity 87600h"}},
		{name: "bad override policy", body: "    rootShards: [{name: root, hostname: r.example.com}]\n    certificates: [{name: root-kcp, validity: 10h, renewBefore: 20h}]\n",
			want: []string{"spec.kcp.certificates[0].renewBefore: renewBefore 20h must be shorter than validity 10h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"kcp.yaml": kcpDoc(tc.body)}
			if tc.body == "" {
				files["kcp.yaml"] = strings.TrimSuffix(kcpDoc(""), "  kcp:\n")
			}
			_, err := Load(writeTree(t, files))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Contains(t, err.Error(), "kcp.yaml:", "errors point at the preset's file")
		})
	}
}

func TestKCPOptIns(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"allowDroppedGroups", kcpTwoComponents +
			"    kubeconfigs: [{name: k, username: u, groups: ['system:kcp:logical-cluster-admin'], allowDroppedGroups: true, target: {frontProxyRef: {name: fp}}}]\n"},
		{"front-proxy passing system:masters", kcpTwoComponents + "            dropGroups: []\n" +
			"    kubeconfigs: [{name: k, username: u, groups: ['system:masters'], allowPrivilegedGroups: true, target: {frontProxyRef: {name: fp}}}]\n"},
		{"system:masters straight at a shard", kcpTwoComponents +
			"    kubeconfigs: [{name: k, username: u, groups: ['system:masters'], allowPrivilegedGroups: true, target: {shardRef: {name: s1}}}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Load(writeTree(t, map[string]string{"kcp.yaml": kcpDoc(tc.body)}))
			require.NoError(t, err)
			assert.NotNil(t, top.Kubeconfig("k"))
		})
	}
}

// A root shard's bundle is inherited by reference: changing its file changes
// every component's bundle without touching their sources.
func TestKCPBundleRefAndPlacement(t *testing.T) {
	pem, err := os.ReadFile("../examples/kcp/client-cas/partner-ca.pem")
	require.NoError(t, err)
	dir := writeTree(t, map[string]string{
		"extra.pem": string(pem),
		"kcp.yaml": kcpDoc(`    namespace: tenant
    rootShards:
      - name: root
        hostname: root.example.com
        clientCABundleRef: {file: extra.pem}
        shards: [{name: s1, hostname: s1.example.com, cluster: east, namespace: kcp-east}]
`),
	})
	top, err := Load(dir)
	require.NoError(t, err)
	b := top.TrustBundle("root-s1-client-ca-bundle")
	require.NotNil(t, b)
	assert.Equal(t, []BundleSource{{Bundle: "root-client-ca-bundle"}}, b.Spec.Sources)
	assert.Equal(t, &SecretRef{Cluster: "east", Namespace: "kcp-east", Name: "root-s1-client-ca-bundle"}, b.Spec.Secret)
	assert.Equal(t, SecretRef{Cluster: "east", Namespace: "kcp-east", Name: "root-s1-server"}, top.Certificate("root-s1-server").Spec.Secret)
	assert.Equal(t, SecretRef{Cluster: "kcp", Namespace: "tenant", Name: "kcp"}, top.Certificate("root-kcp").Spec.Secret)
	assert.FileExists(t, filepath.Join(dir, "extra.pem"))
}
