package plan

import (
	"maps"
	"slices"

	"github.com/gitca-dev/gitca/topology"
)

// builtinNamespaces exist in every cluster; declaring them would make the
// overlay own (and a prune delete) what Kubernetes made.
var builtinNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// namespaces declares, per overlay, the Namespace of every namespace it
// writes into: Flux applies nothing of an overlay that names a namespace
// that does not exist. Kustomize and both agents apply Namespaces before
// what goes in them, so nothing is ordered on luck. A cluster whose
// namespaces are made elsewhere opts out (spec.clusters[].namespaces.manage).
func namespaces(t *topology.Topology, l Layout) map[string]*derived {
	byCluster := map[string]map[string]bool{}
	for _, ref := range secretRefs(t) {
		if byCluster[ref.Cluster] == nil {
			byCluster[ref.Cluster] = map[string]bool{}
		}
		byCluster[ref.Cluster][ref.Namespace] = true
	}
	out := map[string]*derived{}
	for _, c := range slices.Sorted(maps.Keys(byCluster)) {
		if !t.Cluster(c).ManagesNamespaces() {
			continue
		}
		dir := l.ClusterDir(c)
		for ns := range byCluster[c] {
			if ns == "" || slices.Contains(builtinNamespaces, ns) {
				continue
			}
			out[l.Namespace(dir, ns)] = &derived{kind: FileNamespace, owner: "Cluster/" + c, bytes: mustYAML(namespaceObject(ns))}
		}
	}
	return out
}

func namespaceObject(ns string) plainObject {
	return plainObject{APIVersion: "v1", Kind: "Namespace", Metadata: Meta{
		Name:   ns,
		Labels: ManagedLabels(),
		// A namespace gitca stops writing into is left standing: pruning it
		// would delete whatever else lives there.
		Annotations: map[string]string{
			"kustomize.toolkit.fluxcd.io/prune": "disabled",
			"argocd.argoproj.io/sync-options":   "Prune=false",
		},
	}}
}
