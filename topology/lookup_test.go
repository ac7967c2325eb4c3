package topology

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ca(name, issuer string) *CertificateAuthority {
	return &CertificateAuthority{Metadata: ObjectMeta{Name: name}, Spec: CASpec{Issuer: issuer}}
}

func TestCAOrder(t *testing.T) {
	tests := []struct {
		name string
		cas  []*CertificateAuthority
		want []string
	}{
		{"empty", nil, []string{}},
		{"roots by name", []*CertificateAuthority{ca("b", ""), ca("a", "")}, []string{"a", "b"}},
		{
			"issuers first, ties by name",
			[]*CertificateAuthority{ca("a-leafca", "z-mid"), ca("z-mid", "root"), ca("root", ""), ca("b-other", "root"), ca("aa-root", "")},
			[]string{"aa-root", "root", "b-other", "z-mid", "a-leafca"},
		},
		{
			"unknown issuer counts as a root",
			[]*CertificateAuthority{ca("b", "missing"), ca("a", "b")},
			[]string{"b", "a"},
		},
		{
			"a cycle comes last instead of disappearing",
			[]*CertificateAuthority{ca("x", "y"), ca("y", "x"), ca("r", "")},
			[]string{"r", "x", "y"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top := &Topology{CAs: tc.cas}
			assert.Equal(t, tc.want, names(top.CAOrder(), caName))
		})
	}
}

func TestCAOrderFromRepo(t *testing.T) {
	top, err := Load("testdata/full")
	require.NoError(t, err)
	assert.Equal(t, []string{"offline-root", "root", "client-ca", "server-ca"}, names(top.CAOrder(), caName))
}

func TestLookups(t *testing.T) {
	top, err := Load("testdata/full")
	require.NoError(t, err)

	assert.Equal(t, "server-ca", top.CA("server-ca").Metadata.Name)
	assert.Nil(t, top.CA("web"), "a Certificate is not a CA")
	assert.Equal(t, "web", top.Certificate("web").Metadata.Name)
	assert.Nil(t, top.Certificate("root"))
	assert.Equal(t, "sa-signer", top.KeyPair("sa-signer").Metadata.Name)
	assert.Nil(t, top.KeyPair("nope"))
	assert.Equal(t, "ci-deployer", top.Kubeconfig("ci-deployer").Metadata.Name)
	assert.Nil(t, top.Kubeconfig("nope"))
	assert.Equal(t, "roots", top.TrustBundle("roots").Metadata.Name)
	assert.Nil(t, top.TrustBundle("nope"))
	assert.Nil(t, top.Preset("nope"))

	assert.Equal(t, deliveryDefaults(Cluster{Name: "prod", Flavour: FlavourFlux, Namespace: "pki",
		Recipients: []string{"age17sdlquayzcdtz6q8dtq6gz5yzvt5epewgm7sdp23390jdaawm4xqd8wd9v"}}), top.Cluster("prod"))
	assert.Equal(t, deliveryDefaults(Cluster{Name: "unlisted", Flavour: FlavourFlux, Namespace: "default"}), top.Cluster("unlisted"))
}

func TestValidityPolicyGet(t *testing.T) {
	v, rb := ValidityPolicy{}.Get()
	assert.Zero(t, v)
	assert.Zero(t, rb)
	v, rb = policy(3*time.Hour, time.Hour).Get()
	assert.Equal(t, 3*time.Hour, v)
	assert.Equal(t, time.Hour, rb)
}

// withPreset registers an expander for one test only.
func withPreset(t *testing.T, typ string, f presetExpander) {
	t.Helper()
	require.NotContains(t, presetExpanders, typ)
	presetExpanders[typ] = f
	t.Cleanup(func() { delete(presetExpanders, typ) })
}

func TestPresetExpansion(t *testing.T) {
	withPreset(t, "test-pair", func(p *Preset) (*Expansion, error) {
		o := p.Origin
		o.Preset = p.Metadata.Name
		x := &Expansion{
			CAs: []*CertificateAuthority{{APIVersion: APIVersion, Kind: KindCertificateAuthority,
				Metadata: ObjectMeta{Name: p.Metadata.Name + "-ca"}, Origin: o}},
			// Left without Origin, apiVersion and kind: Load fills them from the Preset.
			Certificates: []*Certificate{{Metadata: ObjectMeta{Name: p.Metadata.Name + "-leaf"},
				Spec: CertificateSpec{Issuer: p.Metadata.Name + "-ca", Profile: ProfileServer, Secret: SecretRef{Cluster: "c"}}}},
		}
		return x, nil
	})
	dir := writeTree(t, map[string]string{
		"presets.yaml": `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata:
  name: one
spec:
  type: test-pair
`,
		"leaf.yaml": `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: mine
spec:
  issuer: one-ca
  profile: client
  secret:
    cluster: c
`,
	})
	top, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"one-ca"}, names(top.CAs, caName))
	leaf := top.Certificate("one-leaf")
	require.NotNil(t, leaf)
	assert.Equal(t, KindCertificate, leaf.Kind)
	assert.Equal(t, APIVersion, leaf.APIVersion)
	assert.Equal(t, "one", leaf.Origin.Preset)
	assert.Equal(t, Position{File: "presets.yaml", Line: 2, Col: 1}, leaf.Origin.Position)
	v, _ := leaf.Spec.Get()
	assert.Equal(t, DefaultLeafValidity, v, "generated objects are defaulted like written ones")
	assert.Equal(t, "one-ca", top.Certificate("mine").Spec.Issuer, "written objects can use generated CAs")
}

func TestPresetErrorsPointAtThePreset(t *testing.T) {
	withPreset(t, "test-broken", func(p *Preset) (*Expansion, error) {
		o := p.Origin
		o.Preset = p.Metadata.Name
		return &Expansion{Certificates: []*Certificate{{APIVersion: APIVersion, Kind: KindCertificate,
			Metadata: ObjectMeta{Name: "gen"}, Origin: o,
			Spec: CertificateSpec{Issuer: "nope", Profile: ProfileServer, Secret: SecretRef{Cluster: "c"}}}},
		}, ErrorList{errAt(p.Origin, "spec.kubeadm", "kubeadm settings are required", "")}
	})
	dir := writeTree(t, map[string]string{
		"p.yaml": `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata:
  name: broken
spec:
  type: test-broken
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: gen
spec:
  issuer: nope
  profile: server
  secret:
    cluster: d
`,
	})
	_, err := Load(dir)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `p.yaml:5:1: spec.kubeadm: kubeadm settings are required`)
	assert.Contains(t, msg, `p.yaml:5:1: spec.issuer: in Certificate "gen" generated by Preset "broken": issuer "nope" does not exist`)
	assert.Contains(t, msg, `p.yaml:11:9: metadata.name: duplicate Certificate "gen", first declared at p.yaml:2:1 (generated by Preset "broken")`)
}
