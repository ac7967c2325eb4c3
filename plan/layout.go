package plan

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// The state layout, in one place (kubeadm's certlist.go is the model): state
// reading, planning, applying, emitting, export and the overlay check ask a
// Layout where a thing lives, and nothing else spells these paths.
const (
	// IndexPath is the state index, a cache of every record's public summary.
	IndexPath = ".gitca/index.json"
	// SopsConfigPath holds creation rules, so the sops CLI seals as gitca does.
	SopsConfigPath = ".sops.yaml"
	// StageDirPrefix names the directories at the state root in which a write
	// stages files before renaming them into place. One left behind by a killed
	// run holds sealed content only; reading skips it, the next write removes it.
	StageDirPrefix = ".gitca-stage-"

	caDir       = "ca"
	clustersDir = "clusters"
	// The GitOps objects that apply each overlay live outside clusters/, so an
	// overlay never contains (and applies) the object that points at it, and
	// one directory per cluster, so a cluster's bootstrap points at its own.
	fluxDir = "flux"
	argoDir = "argocd"

	kustomizationFile  = "kustomization.yaml"
	ksopsGeneratorFile = "ksops-generator.yaml"
	rbacDir            = "rbac"
	mergedMembersDir   = "kubeconfigs"
)

// StateOptions tells the state reader where the index is and what to skip.
var StateOptions = state.Options{
	IndexPath: IndexPath,
	SkipDir:   func(name string) bool { return name == ".git" || strings.HasPrefix(name, StageDirPrefix) },
}

// ReadState reads a state tree's public material with this layout.
func ReadState(dir string) (*state.State, error) { return state.Read(dir, StateOptions) }

// ReadStateContext is ReadState, stopped by ctx (a shutdown signal).
func ReadStateContext(ctx context.Context, dir string) (*state.State, error) {
	return state.ReadContext(ctx, dir, StateOptions)
}

// Layout says where each thing of a topology lives in the state tree. Paths
// are slash-separated and relative to the state root.
type Layout struct {
	t *topology.Topology
	// dirs holds the overlay of each cluster the Config declares; a plan asks
	// for one per object, so it is worked out once.
	dirs map[string]string
}

// LayoutOf is the layout of t's state tree.
func LayoutOf(t *topology.Topology) Layout {
	l := Layout{t: t, dirs: map[string]string{}}
	for _, c := range t.Config.Spec.Clusters {
		l.dirs[c.Name] = clustersDir + "/" + fileSafe(c.Name)
		if c.Path != "" {
			l.dirs[c.Name] = path.Clean(c.Path)
		}
	}
	return l
}

// CARecord is where a CA's certificate and key are kept, for the reconciler only.
func (l Layout) CARecord(name string) string { return caDir + "/" + name + ".yaml" }

// MergedMember is where a Kubeconfig merged into another (spec.mergeInto)
// keeps its own key and certificate: with the reconciler, like CA keys.
func (l Layout) MergedMember(name string) string {
	return caDir + "/" + mergedMembersDir + "/" + name + ".yaml"
}

// ClusterDir is the overlay directory of a cluster (or of a kcp workspace's
// bindings): clusters/<name>, or the cluster's spec.clusters[].path.
func (l Layout) ClusterDir(cluster string) string {
	if d, ok := l.dirs[cluster]; ok {
		return d
	}
	return clustersDir + "/" + fileSafe(cluster)
}

// Delivery is a resolved place in a cluster overlay.
type Delivery struct {
	Cluster   string
	Namespace string
	Name      string
	Path      string
}

// Secret is where an object delivered as a Secret lives.
func (l Layout) Secret(ref topology.SecretRef) Delivery { return l.delivery(ref, "secret") }

// ConfigMap is where a bundle delivered as a ConfigMap lives.
func (l Layout) ConfigMap(ref topology.SecretRef) Delivery { return l.delivery(ref, "configmap") }

func (l Layout) delivery(ref topology.SecretRef, kind string) Delivery {
	return Delivery{
		Cluster:   ref.Cluster,
		Namespace: ref.Namespace,
		Name:      ref.Name,
		Path:      path.Join(l.ClusterDir(ref.Cluster), ref.Namespace, kind+"-"+ref.Name+".yaml"),
	}
}

// ClusterRoleBinding is where a binding for target (a cluster, or a kcp
// workspace path such as root:org:team) lives.
func (l Layout) ClusterRoleBinding(target, name string) string {
	return path.Join(l.ClusterDir(target), rbacDir, "clusterrolebinding-"+fileSafe(name)+".yaml")
}

// Namespace is where an overlay's Namespace object lives.
func (l Layout) Namespace(dir, ns string) string { return path.Join(dir, "namespace-"+ns+".yaml") }

// Kustomization is an overlay's kustomization.yaml.
func (l Layout) Kustomization(dir string) string { return path.Join(dir, kustomizationFile) }

// KSOPSGenerator is a ksops-flavour overlay's generator file.
func (l Layout) KSOPSGenerator(dir string) string { return path.Join(dir, ksopsGeneratorFile) }

// FluxDir is the directory of the Flux objects that apply a cluster's overlay.
func (l Layout) FluxDir(cluster string) string { return path.Join(fluxDir, fileSafe(cluster)) }

// ArgoDir is the directory of the Argo CD objects that apply a cluster's overlay.
func (l Layout) ArgoDir(cluster string) string { return path.Join(argoDir, fileSafe(cluster)) }

// Managed reports whether gitca owns a path: ca/, clusters/ (and overlays
// moved elsewhere by spec.clusters[].path), flux/, argocd/, .sops.yaml and
// the index. Anything else in a state repo (a README, CI files) is left alone.
func (l Layout) Managed(p string) bool {
	if p == SopsConfigPath || p == IndexPath {
		return true
	}
	for _, d := range []string{caDir, clustersDir, fluxDir, argoDir} {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	for _, d := range l.dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// OverlayDir is the overlay directory a path lives in, "" for none.
func (l Layout) OverlayDir(p string) string {
	for _, d := range l.dirs {
		if strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	if strings.HasPrefix(p, clustersDir+"/") {
		if parts := strings.SplitN(p, "/", 3); len(parts) == 3 {
			return parts[0] + "/" + parts[1]
		}
	}
	return ""
}

// ClusterOf is the cluster whose overlay holds p, "" for none: a declared
// cluster by its overlay (which may have moved, spec.clusters[].path), else
// the default layout's clusters/<cluster>/. Overlays never nest
// (CheckLayout), so at most one declared overlay holds p.
func (l Layout) ClusterOf(p string) string {
	for c, d := range l.dirs {
		if strings.HasPrefix(p, d+"/") {
			return c
		}
	}
	if strings.HasPrefix(p, clustersDir+"/") {
		if parts := strings.SplitN(p, "/", 3); len(parts) == 3 {
			return parts[1]
		}
	}
	return ""
}

// IsKustomization reports whether p is an overlay's kustomization or generator,
// files that describe an overlay rather than objects in it.
func IsKustomization(p string) bool {
	b := path.Base(p)
	return b == kustomizationFile || b == ksopsGeneratorFile
}

// fileSafe keeps names portable: ':' (kcp workspace paths) is not allowed on
// every filesystem.
func fileSafe(s string) string { return strings.ReplaceAll(s, ":", "-") }

// CheckLayout refuses overlay paths (spec.clusters[].path) that would put an
// overlay where the layout keeps something else, or inside another overlay:
// each overlay is applied to one cluster, and ca/ holds the CA keys.
func (l Layout) CheckLayout() error {
	var errs topology.ErrorList
	cfg := l.t.Config
	dirs := map[string]int{}
	for i, c := range cfg.Spec.Clusters {
		field := fmt.Sprintf("spec.clusters[%d].path", i)
		dir := l.ClusterDir(c.Name)
		fail := func(msg, allowed string) {
			errs = append(errs, &topology.FieldError{Pos: cfg.Origin.At(field), Field: field, Msg: msg, Allowed: allowed})
		}
		for _, reserved := range []string{caDir, fluxDir, argoDir, path.Dir(IndexPath)} {
			if dir == reserved || strings.HasPrefix(dir, reserved+"/") {
				fail(fmt.Sprintf("overlay path %q is inside %s/, which the state layout keeps for other files", dir, reserved), "any other relative path")
			}
		}
		for other, j := range dirs {
			if dir == other || strings.HasPrefix(dir, other+"/") || strings.HasPrefix(other, dir+"/") {
				fail(fmt.Sprintf("overlay path %q overlaps %q of spec.clusters[%d]", dir, other, j), "one directory per cluster, neither inside the other")
			}
		}
		dirs[dir] = i
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}
