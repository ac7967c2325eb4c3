package render

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/topology"
)

const (
	kustomizationOf = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
	cmWeb           = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: pki\ndata:\n  ca.crt: x\n"
	// A sealed Secret as kustomize sees it: the sops block is just another field.
	sealedWeb = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web\n  namespace: pki\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: x\n  tls.key: ENC[AES256_GCM,data:abc,type:str]\nsops:\n  mac: ENC[AES256_GCM,data:def,type:str]\n  version: 3.13.3\n"
	ksopsGen  = "apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: gitca-edge-secrets\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ksops\nfiles:\n  - ./pki/secret-web.yaml\n"
)

func TestCheckOverlays(t *testing.T) {
	top := &topology.Topology{Config: topology.Config{Spec: topology.ConfigSpec{Clusters: []topology.Cluster{
		{Name: "prod"}, {Name: "edge", Flavour: topology.FlavourKSOPS},
	}}}}
	for _, c := range []struct {
		name    string
		state   map[string]string // on disk before the run
		write   map[string]string // the run's writes
		delete  []string
		wantDir string // "" means it builds
		wantErr string
	}{
		{
			name:  "flux overlay with a sealed Secret and a ConfigMap",
			write: map[string]string{"clusters/prod/kustomization.yaml": kustomizationOf + "resources:\n- pki/secret-web.yaml\n- pki/configmap-web.yaml\n", "clusters/prod/pki/secret-web.yaml": sealedWeb, "clusters/prod/pki/configmap-web.yaml": cmWeb},
		},
		{
			name:  "unchanged files come from the state",
			state: map[string]string{"clusters/prod/pki/secret-web.yaml": sealedWeb, "ca/root.yaml": "not: [kustomize"},
			write: map[string]string{"clusters/prod/kustomization.yaml": kustomizationOf + "resources:\n- pki/secret-web.yaml\n"},
		},
		{
			name:    "a listed file that does not exist",
			write:   map[string]string{"clusters/prod/kustomization.yaml": kustomizationOf + "resources:\n- pki/secret-web.yaml\n"},
			wantDir: "clusters/prod", wantErr: "secret-web.yaml",
		},
		{
			name:    "a listed file the run deletes",
			state:   map[string]string{"clusters/prod/pki/secret-web.yaml": sealedWeb, "clusters/prod/kustomization.yaml": kustomizationOf + "resources:\n- pki/secret-web.yaml\n"},
			delete:  []string{"clusters/prod/pki/secret-web.yaml"},
			wantDir: "clusters/prod", wantErr: "secret-web.yaml",
		},
		{
			name:    "two files declaring one object",
			state:   map[string]string{"clusters/prod/pki/secret-web.yaml": sealedWeb, "clusters/prod/pki/secret-web2.yaml": sealedWeb},
			write:   map[string]string{"clusters/prod/kustomization.yaml": kustomizationOf + "resources:\n- pki/secret-web.yaml\n- pki/secret-web2.yaml\n"},
			wantDir: "clusters/prod", wantErr: "Secret",
		},
		{
			name:    "a file that is not YAML",
			write:   map[string]string{"clusters/prod/kustomization.yaml": kustomizationOf + "resources:\n- pki/secret-web.yaml\n", "clusters/prod/pki/secret-web.yaml": "kind: [\n"},
			wantDir: "clusters/prod",
		},
		{
			name:  "ksops overlay: the generator's files are built",
			write: map[string]string{"clusters/edge/kustomization.yaml": kustomizationOf + "generators:\n- ksops-generator.yaml\nresources:\n- pki/configmap-web.yaml\n", "clusters/edge/ksops-generator.yaml": ksopsGen, "clusters/edge/pki/secret-web.yaml": sealedWeb, "clusters/edge/pki/configmap-web.yaml": cmWeb},
		},
		{
			name:    "ksops overlay whose generator names a missing file",
			write:   map[string]string{"clusters/edge/kustomization.yaml": kustomizationOf + "generators:\n- ksops-generator.yaml\n", "clusters/edge/ksops-generator.yaml": ksopsGen},
			wantDir: "clusters/edge", wantErr: "secret-web.yaml",
		},
		{
			name:    "ksops overlay without its generator file",
			write:   map[string]string{"clusters/edge/kustomization.yaml": kustomizationOf + "generators:\n- ksops-generator.yaml\n"},
			wantDir: "clusters/edge", wantErr: "generator ksops-generator.yaml",
		},
		{
			name:    "an unknown kustomization field",
			write:   map[string]string{"clusters/prod/kustomization.yaml": kustomizationOf + "resourcez:\n- x.yaml\n"},
			wantDir: "clusters/prod", wantErr: "resourcez",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for p, b := range c.state {
				f := filepath.Join(root, filepath.FromSlash(p))
				require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
				require.NoError(t, os.WriteFile(f, []byte(b), 0o644))
			}
			st, err := plan.ReadState(root)
			require.NoError(t, err)
			tr := &emit.Tree{Write: map[string][]byte{}, Delete: c.delete}
			for p, b := range c.write {
				tr.Write[p] = []byte(b)
			}
			err = emit.CheckOverlays(plan.LayoutOf(top), st, tr)
			if c.wantDir == "" {
				require.NoError(t, err)
				return
			}
			var oe *emit.OverlayError
			require.True(t, errors.As(err, &oe), "%v", err)
			assert.Equal(t, c.wantDir, oe.Dir)
			assert.Contains(t, err.Error(), "overlay "+c.wantDir+" does not build with kustomize")
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

// appendSecondSecret is a hand edit whose public parts still look right: a
// second object appended to a kept Secret file.
func appendSecondSecret(t *testing.T, e *env) {
	f := filepath.Join(e.state, "clusters/prod/pki/secret-client.yaml")
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, append(b, []byte("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: client\n  namespace: pki\n")...), 0o644))
}

// TestRenderSeesASecondDocumentWithoutAnIdentity: a second object appended
// to a record (kustomize would apply it too) is damage the plan names from
// the public parts alone; a render that would need a key to repair it stops
// before any file is written.
func TestRenderSeesASecondDocumentWithoutAnIdentity(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	appendSecondSecret(t, e)
	// Something to write that needs no key, so the refusal has something to hold back.
	e.edit("config.yaml", "namespace: pki", "namespace: pki\n---\napiVersion: gitca.dev/v1alpha1\nkind: TrustBundle\nmetadata: {name: extra}\nspec:\n  sources: [{ca: root}]\n  configMap: {cluster: prod}")
	before := e.snapshot()
	_, err := e.tryRun(t0.Add(time.Hour), nil)
	require.ErrorIs(t, err, apply.ErrNeedIdentity)
	assert.Empty(t, changedFiles(before, e.snapshot()), "a refused run writes nothing")
	topo, err := topology.Load(e.topo)
	require.NoError(t, err)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	p, err := plan.Make(topo, st, plan.Options{Now: t0.Add(time.Hour), Recipients: plan.ResolveRecipients(topo, []string{e.recipient})})
	require.NoError(t, err)
	assert.Equal(t, []plan.Reason{{Code: plan.ReasonDamaged, Detail: "2 YAML documents, where a record is one Secret"}}, p.Action("Certificate/client").Reasons)
}

// TestRenderRepairsARecordEditedByHand: with an identity, the same hand edit
// is opened, found damaged by name, and the record is made anew.
func TestRenderRepairsARecordEditedByHand(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	appendSecondSecret(t, e)
	res := e.run(t0.Add(time.Hour), &e.ids)
	a := res.Plan.Action("Certificate/client")
	assert.Equal(t, plan.ActionRekey, a.Action)
	assert.Equal(t, []plan.Reason{{Code: plan.ReasonDamaged, Detail: "2 YAML documents, where a record is one Secret"}}, a.Reasons)
	assert.Equal(t, map[string]plan.ActionKind{"Certificate/client": plan.ActionRekey}, nonKeep(res.Plan))
	again := e.run(t0.Add(time.Hour), &e.ids)
	assert.False(t, again.Plan.Changes(), "repaired")
}
