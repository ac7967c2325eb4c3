package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeTree writes files (slash paths relative to the root) into a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

func names[T any](items []*T, name func(*T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

func TestLoadFull(t *testing.T) {
	top, err := Load("testdata/full")
	require.NoError(t, err)

	abs, err := filepath.Abs("testdata/full")
	require.NoError(t, err)
	assert.Equal(t, abs, top.Root)

	assert.Equal(t, []string{"client-ca", "offline-root", "root", "server-ca"}, names(top.CAs, caName))
	assert.Equal(t, []string{"etcd-peer", "web"}, names(top.Certificates, func(c *Certificate) string { return c.Metadata.Name }))
	assert.Equal(t, []string{"sa-signer"}, names(top.KeyPairs, func(k *KeyPair) string { return k.Metadata.Name }))
	assert.Equal(t, []string{"ci-deployer"}, names(top.Kubeconfigs, func(k *Kubeconfig) string { return k.Metadata.Name }))
	assert.Equal(t, []string{"roots", "server-bundle"}, names(top.TrustBundles, func(b *TrustBundle) string { return b.Metadata.Name }))

	// Config defaults flow into objects; explicit values win.
	web := top.Certificate("web")
	require.NotNil(t, web)
	assert.Equal(t, ECDSAP384, web.Spec.KeyAlgorithm)
	v, rb := web.Spec.Get()
	assert.Equal(t, 90*24*time.Hour, v)
	assert.Equal(t, 30*24*time.Hour, rb)
	assert.Equal(t, SecretRef{Cluster: "prod", Namespace: "pki", Name: "web-tls"}, web.Spec.Secret)
	assert.Equal(t, "web", web.Spec.Subject.CommonName)
	assert.Equal(t, RotateAlways, web.Spec.RotationPolicy)

	peer := top.Certificate("etcd-peer")
	assert.Equal(t, Ed25519, peer.Spec.KeyAlgorithm)
	assert.Equal(t, RotateNever, peer.Spec.RotationPolicy)
	assert.Equal(t, SecretRef{Cluster: "argo", Namespace: "etcd", Name: "etcd-peer"}, peer.Spec.Secret)

	root := top.CA("root")
	assert.Equal(t, "Example Root CA", root.Spec.Subject.CommonName)
	v, rb = root.Spec.Get()
	assert.Equal(t, DefaultCAValidity, v)
	assert.Equal(t, DefaultCARenewBefore, rb)
	require.NotNil(t, root.Spec.PathLen)
	assert.Equal(t, 1, *root.Spec.PathLen)

	assert.Equal(t, deliveryDefaults(Cluster{Name: "argo", Flavour: FlavourKSOPS, Namespace: "default", Path: "overlays/argo",
		Recipients: []string{"age1wv7vunwur49fqzj7x3n03zxytr2flnx3seh4kduzn8ggpkdvpq4qxztrn4"},
		ArgoCD:     ArgoCDSettings{RepoURL: "https://git.example.com/pki/state.git"}}), top.Cluster("argo"))
	assert.Empty(t, top.Warnings)

	kc := top.Kubeconfig("ci-deployer")
	assert.Equal(t, "ci-deployer", kc.Spec.Target.Name)
	assert.Len(t, kc.Spec.Contexts, 2)

	// Origins point at what the user wrote, relative to the topology root.
	assert.Equal(t, Position{File: "pki/leafs.yml", Line: 2, Col: 1}, web.Origin.Position)
	assert.Equal(t, Position{File: "pki/leafs.yml", Line: 11, Col: 28}, web.Origin.At("spec.ipAddresses[1]"))
	assert.Equal(t, Position{File: "pki/leafs.yml", Line: 10, Col: 7}, web.Origin.At("spec.dnsNames[1]"))
	assert.Equal(t, Position{File: "pki/leafs.yml", Line: 14, Col: 14}, web.Origin.At("spec.secret.cluster"))
	assert.Equal(t, Position{File: "pki/leafs.yml", Line: 13, Col: 3}, web.Origin.At("spec.secret"))
	assert.Equal(t, Position{File: "pki/leafs.yml", Line: 14, Col: 14}, web.Origin.At("spec.secret.cluster.nothing"))
	assert.Equal(t, Position{File: "kcp/kubeconfigs.yaml", Line: 13, Col: 7}, kc.Origin.At("spec.contexts[0]"))
	assert.Equal(t, Position{File: "kcp/kubeconfigs.yaml", Line: 17, Col: 18}, kc.Origin.At("spec.contexts[1].namespace.x"))
}

func TestLoadMinimalMultiDocument(t *testing.T) {
	top, err := Load("testdata/minimal")
	require.NoError(t, err)
	require.Len(t, top.CAs, 1)
	require.Len(t, top.Certificates, 1)
	// No Config document means every default.
	assert.Equal(t, DefaultKeyAlgorithm, top.Config.Spec.Defaults.KeyAlgorithm)
	api := top.Certificate("api")
	assert.Equal(t, SecretRef{Cluster: "dev", Namespace: "default", Name: "api"}, api.Spec.Secret)
	assert.Equal(t, Position{File: "pki.yaml", Line: 8, Col: 1}, api.Origin.Position)
	v, rb := api.Spec.Get()
	assert.Equal(t, DefaultLeafValidity, v)
	assert.Equal(t, DefaultLeafValidity/3, rb)
	assert.Equal(t, deliveryDefaults(Cluster{Name: "dev", Flavour: FlavourFlux, Namespace: "default"}), top.Cluster("dev"))
}

const (
	docCA = `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: %s
`
	docCert = `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: %s
spec:
  issuer: ca
  profile: client
  secret:
    cluster: c
`
)

func doc(format, name string) string { return strings.ReplaceAll(format, "%s", name) }

// Files created in a different order, and documents spread differently over
// files, must load to the same topology.
func TestLoadDeterministic(t *testing.T) {
	files := map[string]string{
		"b/z.yaml": doc(docCert, "zeta") + "---\n" + doc(docCert, "alpha"),
		"a.yaml":   doc(docCA, "ca"),
		"b/a.yml":  doc(docCert, "mid"),
		"c.yaml":   doc(docCA, "other"),
	}
	dirA := t.TempDir()
	dirB := t.TempDir()
	write := func(dir string, keys []string) {
		for _, k := range keys {
			p := filepath.Join(dir, filepath.FromSlash(k))
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(files[k]), 0o644))
		}
	}
	write(dirA, []string{"a.yaml", "b/a.yml", "b/z.yaml", "c.yaml"})
	write(dirB, []string{"c.yaml", "b/z.yaml", "b/a.yml", "a.yaml"})

	a, err := Load(dirA)
	require.NoError(t, err)
	b, err := Load(dirB)
	require.NoError(t, err)
	a.Root, b.Root = "", ""
	assert.Equal(t, a, b)
	assert.Equal(t, []string{"alpha", "mid", "zeta"}, names(a.Certificates, func(c *Certificate) string { return c.Metadata.Name }))
}

func TestLoadSkipsHiddenAndEncryptedFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"ca.yaml":              doc(docCA, "ca"),
		".git/config.yaml":     "not: [yaml",
		".hidden.yaml":         "not: [yaml",
		"keys/root.sops.yaml":  "tls.key: ENC[AES256_GCM,data:x]\nsops: {}\n",
		"keys/other.sops.yml":  "tls.key: ENC[AES256_GCM,data:x]\n",
		"README.md":            "# not yaml",
		"notes.txt":            "kind: nothing",
		"nested/deeper/c.yaml": doc(docCert, "leaf"),
	})
	top, err := Load(dir)
	require.NoError(t, err)
	assert.Len(t, top.CAs, 1)
	assert.Len(t, top.Certificates, 1)
}

func TestLoadEmptyDocumentsAndComments(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"empty.yaml":    "",
		"comments.yaml": "# only a comment\n---\n# another\n---\n~\n",
		"ca.yaml":       "---\n" + doc(docCA, "ca") + "---\n",
	})
	top, err := Load(dir)
	require.NoError(t, err)
	assert.Len(t, top.CAs, 1)
}

func TestLoadMissingDir(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	require.Error(t, err)
	var list ErrorList
	assert.NotErrorAs(t, err, &list, "an unreadable repo is an I/O error, not a topology error")
}

func TestLoadAnchorsAndMergeKeys(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.yaml": doc(docCA, "ca") + `---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: one
spec: &base
  issuer: ca
  profile: server
  dnsNames: &names [one.example.com]
  secret:
    cluster: c
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: two
spec:
  <<: *base
  profile: client
  dnsNames: *names
  secret:
    cluster: c
    name: two
`})
	top, err := Load(dir)
	require.NoError(t, err)
	two := top.Certificate("two")
	assert.Equal(t, "ca", two.Spec.Issuer, "merged from the anchor")
	assert.Equal(t, ProfileClient, two.Spec.Profile, "explicit keys win over merged ones")
	assert.Equal(t, []string{"one.example.com"}, two.Spec.DNSNames)
	assert.Equal(t, "two", two.Spec.Secret.Name)
}

// Aliases let a small file name one long list many times; the walker gives up
// with one error instead of working (and reporting) for minutes.
func TestLoadBoundsAliasExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: gitca.dev/v1alpha1\nkind: Config\nspec:\n  reconciler:\n    age: &r [")
	for i := range 500 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("x")
	}
	b.WriteString("]\n  clusters:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "    - {name: c%d, recipients: *r}\n", i)
	}
	start := time.Now()
	_, err := Load(writeTree(t, map[string]string{"big.yaml": b.String()}))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 20*time.Second)
	assert.Contains(t, err.Error(), "big.yaml:206:32: aliases expand to more than 100000 values in this file")
	assert.Len(t, strings.Split(err.Error(), "\n"), 1, "structural errors stop Load, and the budget error is reported once")
}
