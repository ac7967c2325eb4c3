package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadDir(t *testing.T, files map[string]string) (*Topology, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return Load(dir)
}

const kubeadmPresetYAML = `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata:
  name: demo
spec:
  type: kubeadm
  # the preset's own comment
  kubeadm:
    controlPlaneEndpoint: 127.0.0.1:6443
    nodes:
      - name: cp-0
        advertiseAddress: 127.0.0.1
`

// TestRotationDeclarations: a hand-written CA declares spec.rotation, a
// preset's generated objects are declared by name on the Preset, and the
// defaults apply where nothing is said.
func TestRotationDeclarations(t *testing.T) {
	top, err := loadDir(t, map[string]string{
		"ca.yaml": baseYAML + `---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: rotated
spec:
  rotation:
    generation: 3
    soak: 2d
    retire: delete
`,
		"kubeadm.yaml": strings.Replace(kubeadmPresetYAML, "  type: kubeadm\n", "  type: kubeadm\n  rotations:\n    demo-sa: {generation: 2, tokenLifetime: 1h}\n    demo-front-proxy-ca: {generation: 2}\n", 1),
	})
	require.NoError(t, err)
	r := top.CA("rotated").Spec.Rotation
	require.NotNil(t, r)
	assert.Equal(t, 3, r.Generation)
	assert.Equal(t, 48*time.Hour, r.SoakDuration())
	assert.Equal(t, RetireDelete, r.RetirePolicyOrDefault())
	fp := top.CA("demo-front-proxy-ca").Spec.Rotation
	require.NotNil(t, fp)
	assert.Equal(t, 2, fp.Generation)
	assert.Equal(t, DefaultRotationSoak, fp.SoakDuration())
	assert.Equal(t, RetireKeep, fp.RetirePolicyOrDefault())
	sa := top.KeyPair("demo-sa").Spec.Rotation
	require.NotNil(t, sa)
	assert.Equal(t, time.Hour, sa.TokenLifetimeDuration())
	assert.Nil(t, top.CA("demo-ca").Spec.Rotation)
	var none *Rotation
	assert.Equal(t, DefaultTokenLifetime, none.TokenLifetimeDuration())
}

func TestRotationDeclarationsRejected(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"generation and policy", map[string]string{"ca.yaml": `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: ca
spec:
  rotation:
    generation: 0
    soak: -1h
    retire: archive
    tokenLifetime: 1h
`}, []string{
			"ca.yaml:7:17: spec.rotation.generation: generation must be 1 or more, got 0",
			"ca.yaml:8:11: spec.rotation.soak: soak must not be negative",
			`ca.yaml:9:13: spec.rotation.retire: unknown retire policy "archive" (keep (default) or delete)`,
			"ca.yaml:10:20: spec.rotation.tokenLifetime: tokenLifetime applies to key pairs only",
		}},
		{"typo", map[string]string{"ca.yaml": "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: ca\nspec:\n  rotation:\n    generaton: 2\n"},
			[]string{`ca.yaml:7:5: spec.rotation.generaton: unknown field "generaton"`}},
		{"preset entry names nothing it generates", map[string]string{"kubeadm.yaml": strings.Replace(kubeadmPresetYAML, "  type: kubeadm\n", "  type: kubeadm\n  rotations:\n    demo-apiserver:\n      generation: 2\n", 1)},
			[]string{`kubeadm.yaml:8:5: spec.rotations.demo-apiserver: Preset "demo" generates no CertificateAuthority or KeyPair "demo-apiserver" (one of demo-ca, demo-etcd-ca, demo-front-proxy-ca, demo-sa)`}},
		{"preset entry invalid", map[string]string{"kubeadm.yaml": strings.Replace(kubeadmPresetYAML, "  type: kubeadm\n", "  type: kubeadm\n  rotations:\n    demo-ca:\n      generation: -1\n", 1)},
			[]string{"kubeadm.yaml:9:19: spec.rotations.demo-ca.generation: generation must be 1 or more, got -1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadDir(t, c.files)
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestSetRotation: the editor changes only the lines it must, whatever is
// already declared, and what it writes loads back.
func TestSetRotation(t *testing.T) {
	caDoc := "# a comment\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: ca\nspec:\n    validity: 8760h # ten years is too long\n"
	for _, c := range []struct {
		name   string
		in     string
		target RotationTarget
		edit   RotationEdit
		want   string
		err    string
	}{
		{"new declaration", caDoc, RotationTarget{Kind: KindCertificateAuthority, Name: "ca"}, RotationEdit{Generation: 2},
			"# a comment\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: ca\nspec:\n    rotation:\n      generation: 2\n    validity: 8760h # ten years is too long\n", ""},
		{"raise the generation, keep its comment", strings.Replace(caDoc, "spec:\n", "spec:\n    rotation:\n      generation: 2 # started by alice\n      soak: 1h\n", 1),
			RotationTarget{Kind: KindCertificateAuthority, Name: "ca"}, RotationEdit{Generation: 3},
			strings.Replace(caDoc, "spec:\n", "spec:\n    rotation:\n      generation: 3 # started by alice\n      soak: 1h\n", 1), ""},
		{"add a missing field", strings.Replace(caDoc, "spec:\n", "spec:\n    rotation:\n      generation: 2\n", 1),
			RotationTarget{Kind: KindCertificateAuthority, Name: "ca"}, RotationEdit{Generation: 2, Retire: "delete"},
			strings.Replace(caDoc, "spec:\n", "spec:\n    rotation:\n      retire: delete\n      generation: 2\n", 1), ""},
		{"second document", "apiVersion: gitca.dev/v1alpha1\nkind: KeyPair\nmetadata:\n  name: other\nspec:\n  secret: {cluster: c}\n---\n" +
			"apiVersion: gitca.dev/v1alpha1\nkind: KeyPair\nmetadata:\n  name: sa\nspec:\n  secret: {cluster: c}\n",
			RotationTarget{Kind: KindKeyPair, Name: "sa"}, RotationEdit{Generation: 2, TokenLifetime: "1h"},
			"apiVersion: gitca.dev/v1alpha1\nkind: KeyPair\nmetadata:\n  name: other\nspec:\n  secret: {cluster: c}\n---\n" +
				"apiVersion: gitca.dev/v1alpha1\nkind: KeyPair\nmetadata:\n  name: sa\nspec:\n  rotation:\n    generation: 2\n    tokenLifetime: 1h\n  secret: {cluster: c}\n", ""},
		{"preset entry", kubeadmPresetYAML, RotationTarget{Kind: KindPreset, Name: "demo", Entry: "demo-ca"}, RotationEdit{Generation: 2},
			strings.Replace(kubeadmPresetYAML, "spec:\n", "spec:\n  rotations:\n    demo-ca:\n      generation: 2\n", 1), ""},
		{"flow style is left to a person", strings.Replace(caDoc, "spec:\n", "spec:\n    rotation: {generation: 2}\n", 1),
			RotationTarget{Kind: KindCertificateAuthority, Name: "ca"}, RotationEdit{Generation: 3}, "", "line 7: rotation is written in flow style"},
		{"no such object", caDoc, RotationTarget{Kind: KindCertificateAuthority, Name: "nope"}, RotationEdit{Generation: 2}, "", `no CertificateAuthority "nope" in this file`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := SetRotation([]byte(c.in), c.target, c.edit)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
		})
	}
	// What the preset edit writes is a valid topology again.
	out, err := SetRotation([]byte(kubeadmPresetYAML), RotationTarget{Kind: KindPreset, Name: "demo", Entry: "demo-ca"}, RotationEdit{Generation: 2, Soak: "1h"})
	require.NoError(t, err)
	top, err := loadDir(t, map[string]string{"kubeadm.yaml": string(out)})
	require.NoError(t, err)
	assert.Equal(t, time.Hour, top.CA("demo-ca").Spec.Rotation.SoakDuration())
}

// TestRemoveDocument takes one document out of a file, with one separator,
// wherever it stands, and leaves the other lines as they were.
func TestRemoveDocument(t *testing.T) {
	doc := func(name string) string {
		return "# " + name + "\napiVersion: gitca.dev/v1alpha1\nkind: Kubeconfig\nmetadata:\n  name: " + name + "\n"
	}
	three := doc("a") + "---\n" + doc("b") + "---\n" + doc("c")
	for _, c := range []struct{ name, in, remove, want string }{
		{"first", three, "a", doc("b") + "---\n" + doc("c")},
		{"middle", three, "b", doc("a") + "---\n" + doc("c")},
		{"last", three, "c", doc("a") + "---\n" + doc("b")},
		{"only", doc("a"), "a", ""},
		{"leading separator", "---\n" + doc("a") + "---\n" + doc("b"), "b", "---\n" + doc("a")},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := RemoveDocument([]byte(c.in), KindKubeconfig, c.remove)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
		})
	}
	_, err := RemoveDocument([]byte(three), KindKubeconfig, "nope")
	assert.EqualError(t, err, `no Kubeconfig "nope" in this file`)
	_, err = RemoveDocument([]byte(three), KindCertificate, "a")
	assert.Error(t, err, "the kind must match too")
}
