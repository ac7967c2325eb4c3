package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gitca-dev/gitca/topology"
)

func TestLayoutClusterOf(t *testing.T) {
	var tp topology.Topology
	tp.Config.Spec.Clusters = []topology.Cluster{
		{Name: "prod", Path: "overlays/prod"},
		{Name: "root:org"},
	}
	l := LayoutOf(&tp)
	for p, want := range map[string]string{
		"overlays/prod/pki/secret-web.yaml":         "prod",     // moved by spec.clusters[].path
		"clusters/root-org/pki/secret-web.yaml":     "root:org", // its file-safe directory, its real name
		"clusters/staging/pki/secret-web.yaml":      "staging",  // not declared: the default layout
		"clusters/prod/pki/secret-web.yaml":         "prod",     // a leftover of prod's default place
		"ca/root.yaml":                              "",
		"overlays/prodx/pki/secret-web.yaml":        "",
		"clusters/kustomization-without-a-dir.yaml": "",
	} {
		assert.Equal(t, want, l.ClusterOf(p), p)
	}
	assert.Equal(t, "staging", LayoutOf(&topology.Topology{}).ClusterOf("clusters/staging/x.yaml"))
}
