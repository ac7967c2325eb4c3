package topology

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dur(d time.Duration) *Duration { return NewDuration(d) }

// deliveryDefaults is c with the Flux, Argo CD and namespace settings Default
// gives a cluster that sets none of them, written out (its repoURL is kept).
func deliveryDefaults(c Cluster) Cluster {
	manage := true
	c.Flux = FluxSettings{Source: FluxSourceRef{Kind: "GitRepository", Name: "gitca-state", Namespace: "flux-system"},
		Interval: dur(10 * time.Minute), RetryInterval: dur(2 * time.Minute), Timeout: dur(5 * time.Minute),
		DecryptionSecret: "sops-age"}
	c.ArgoCD = ArgoCDSettings{RepoURL: c.ArgoCD.RepoURL, Revision: "HEAD", Project: "default", Namespace: "argocd"}
	c.Namespaces = NamespacePolicy{Manage: &manage}
	return c
}

func policy(v, rb time.Duration) ValidityPolicy {
	return ValidityPolicy{Validity: dur(v), RenewBefore: dur(rb)}
}

func TestFillValidity(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name         string
		own          ValidityPolicy
		def          ValidityPolicy
		proportional bool
		want         ValidityPolicy
	}{
		{"nothing set takes the default", ValidityPolicy{}, policy(100*h, 10*h), false, policy(100*h, 10*h)},
		{"explicit values win", policy(50*h, 5*h), policy(100*h, 10*h), false, policy(50*h, 5*h)},
		{"own renewBefore, default validity", ValidityPolicy{RenewBefore: dur(h)}, policy(100*h, 10*h), false, policy(100*h, h)},
		{"own validity keeps a fixed renewBefore that fits", ValidityPolicy{Validity: dur(50 * h)}, policy(100*h, 10*h), false, policy(50*h, 10*h)},
		{"own validity too short for the fixed renewBefore", ValidityPolicy{Validity: dur(9 * h)}, policy(100*h, 10*h), false, policy(9*h, 3*h)},
		{"own validity with a proportional default", ValidityPolicy{Validity: dur(90 * h)}, policy(300*h, 100*h), true, policy(90*h, 30*h)},
		{"default without renewBefore is a third", ValidityPolicy{}, ValidityPolicy{Validity: dur(300 * h)}, true, policy(300*h, 100*h)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.own
			fillValidity(&p, tc.def, tc.proportional)
			assert.Equal(t, tc.want, p)
		})
	}
}

func TestDefault(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name  string
		in    Topology
		check func(t *testing.T, top *Topology)
	}{
		{
			name: "empty config gets every built-in default",
			in:   Topology{},
			check: func(t *testing.T, top *Topology) {
				d := top.Config.Spec.Defaults
				assert.Equal(t, ECDSAP256, d.KeyAlgorithm)
				assert.Equal(t, policy(87600*h, 720*h), d.CA)
				assert.Equal(t, policy(8760*h, 2920*h), d.Leaf)
			},
		},
		{
			name: "config clusters are defaulted",
			in: Topology{Config: Config{Spec: ConfigSpec{Clusters: []Cluster{
				{Name: "prod"},
				{Name: "argo", Flavour: FlavourKSOPS, Namespace: "pki", Path: "x/y"},
			}}}},
			check: func(t *testing.T, top *Topology) {
				assert.Equal(t, []Cluster{
					deliveryDefaults(Cluster{Name: "prod", Flavour: FlavourFlux, Namespace: "default", Path: "clusters/prod"}),
					deliveryDefaults(Cluster{Name: "argo", Flavour: FlavourKSOPS, Namespace: "pki", Path: "x/y"}),
				}, top.Config.Spec.Clusters)
			},
		},
		{
			name: "CA takes the CA policy, Never rotation and its name as CN",
			in: Topology{
				Config: Config{Spec: ConfigSpec{Defaults: Defaults{KeyAlgorithm: Ed25519, CA: ValidityPolicy{Validity: dur(1000 * h)}}}},
				CAs:    []*CertificateAuthority{{Metadata: ObjectMeta{Name: "root"}}},
			},
			check: func(t *testing.T, top *Topology) {
				s := top.CA("root").Spec
				assert.Equal(t, "root", s.Subject.CommonName)
				assert.Equal(t, Ed25519, s.KeyAlgorithm)
				assert.Equal(t, policy(1000*h, 720*h), s.ValidityPolicy)
				assert.Equal(t, RotateNever, s.RotationPolicy)
				assert.Nil(t, s.Secret, "a CA is only delivered when asked")
			},
		},
		{
			name: "CA secret lands in the cluster's namespace",
			in: Topology{
				Config: Config{Spec: ConfigSpec{Clusters: []Cluster{{Name: "prod", Namespace: "kube-system"}}}},
				CAs:    []*CertificateAuthority{{Metadata: ObjectMeta{Name: "sa"}, Spec: CASpec{Secret: &SecretRef{Cluster: "prod"}}}},
			},
			check: func(t *testing.T, top *Topology) {
				assert.Equal(t, &SecretRef{Cluster: "prod", Namespace: "kube-system", Name: "sa"}, top.CA("sa").Spec.Secret)
			},
		},
		{
			name: "certificate takes the leaf policy and keeps what it sets",
			in: Topology{
				Config: Config{Spec: ConfigSpec{Defaults: Defaults{Leaf: ValidityPolicy{Validity: dur(900 * h)}}}},
				Certificates: []*Certificate{
					{Metadata: ObjectMeta{Name: "a"}, Spec: CertificateSpec{Secret: SecretRef{Cluster: "c"}}},
					{Metadata: ObjectMeta{Name: "b"}, Spec: CertificateSpec{
						Subject:        Subject{CommonName: "B"},
						KeyAlgorithm:   RSA4096,
						ValidityPolicy: ValidityPolicy{Validity: dur(30 * h)},
						RotationPolicy: RotateNever,
						Secret:         SecretRef{Cluster: "c", Namespace: "ns", Name: "b-tls"},
					}},
				},
			},
			check: func(t *testing.T, top *Topology) {
				a := top.Certificate("a").Spec
				assert.Equal(t, "a", a.Subject.CommonName)
				assert.Equal(t, ECDSAP256, a.KeyAlgorithm)
				assert.Equal(t, policy(900*h, 300*h), a.ValidityPolicy)
				assert.Equal(t, RotateAlways, a.RotationPolicy)
				assert.Equal(t, SecretRef{Cluster: "c", Namespace: "default", Name: "a"}, a.Secret)
				b := top.Certificate("b").Spec
				assert.Equal(t, "B", b.Subject.CommonName)
				assert.Equal(t, RSA4096, b.KeyAlgorithm)
				assert.Equal(t, policy(30*h, 10*h), b.ValidityPolicy, "a third of its own validity")
				assert.Equal(t, RotateNever, b.RotationPolicy)
				assert.Equal(t, SecretRef{Cluster: "c", Namespace: "ns", Name: "b-tls"}, b.Secret)
			},
		},
		{
			name: "an explicit leaf renewBefore is inherited where it fits",
			in: Topology{
				Config: Config{Spec: ConfigSpec{Defaults: Defaults{Leaf: policy(2000*h, 100*h)}}},
				Certificates: []*Certificate{
					{Metadata: ObjectMeta{Name: "long"}, Spec: CertificateSpec{ValidityPolicy: ValidityPolicy{Validity: dur(1000 * h)}}},
					{Metadata: ObjectMeta{Name: "short"}, Spec: CertificateSpec{ValidityPolicy: ValidityPolicy{Validity: dur(30 * h)}}},
				},
			},
			check: func(t *testing.T, top *Topology) {
				assert.Equal(t, policy(1000*h, 100*h), top.Certificate("long").Spec.ValidityPolicy)
				assert.Equal(t, policy(30*h, 10*h), top.Certificate("short").Spec.ValidityPolicy)
			},
		},
		{
			name: "kubeconfig gets a context, a target name and the leaf policy",
			in:   Topology{Kubeconfigs: []*Kubeconfig{{Metadata: ObjectMeta{Name: "admin"}, Spec: KubeconfigSpec{Secret: SecretRef{Cluster: "c"}}}}},
			check: func(t *testing.T, top *Topology) {
				s := top.Kubeconfig("admin").Spec
				assert.Equal(t, []ContextSpec{{Name: "admin"}}, s.Contexts)
				assert.Equal(t, "admin", s.Target.Name)
				assert.Equal(t, ECDSAP256, s.KeyAlgorithm)
				assert.Equal(t, policy(8760*h, 2920*h), s.ValidityPolicy)
				assert.Equal(t, RotateAlways, s.RotationPolicy)
				assert.Equal(t, SecretRef{Cluster: "c", Namespace: "default", Name: "admin"}, s.Secret)
			},
		},
		{
			name: "kubeconfig contexts are kept",
			in: Topology{Kubeconfigs: []*Kubeconfig{{Metadata: ObjectMeta{Name: "k"}, Spec: KubeconfigSpec{
				Contexts: []ContextSpec{{Name: "x", Path: "/clusters/root"}},
				Target:   KubeconfigTarget{Name: "kcp"},
			}}}},
			check: func(t *testing.T, top *Topology) {
				s := top.Kubeconfig("k").Spec
				assert.Equal(t, []ContextSpec{{Name: "x", Path: "/clusters/root"}}, s.Contexts)
				assert.Equal(t, "kcp", s.Target.Name)
			},
		},
		{
			name: "key pair and trust bundle refs",
			in: Topology{
				KeyPairs:     []*KeyPair{{Metadata: ObjectMeta{Name: "sa"}, Spec: KeyPairSpec{Secret: SecretRef{Cluster: "c"}}}},
				TrustBundles: []*TrustBundle{{Metadata: ObjectMeta{Name: "tb"}, Spec: TrustBundleSpec{ConfigMap: &SecretRef{Cluster: "c"}, Secret: &SecretRef{Cluster: "d", Name: "x"}}}},
			},
			check: func(t *testing.T, top *Topology) {
				kp := top.KeyPair("sa").Spec
				assert.Equal(t, ECDSAP256, kp.KeyAlgorithm)
				assert.Equal(t, SecretRef{Cluster: "c", Namespace: "default", Name: "sa"}, kp.Secret)
				tb := top.TrustBundle("tb").Spec
				assert.Equal(t, &SecretRef{Cluster: "c", Namespace: "default", Name: "tb"}, tb.ConfigMap)
				assert.Equal(t, &SecretRef{Cluster: "d", Namespace: "default", Name: "x"}, tb.Secret)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top := tc.in
			top.Default()
			tc.check(t, &top)
		})
	}
}

// Defaulting an already defaulted topology changes nothing.
func TestDefaultIsIdempotent(t *testing.T) {
	top, err := Load("testdata/full")
	require.NoError(t, err)
	again, err := Load("testdata/full")
	require.NoError(t, err)
	again.Default()
	assert.Equal(t, top, again)
}
