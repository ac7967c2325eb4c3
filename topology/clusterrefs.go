package topology

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// declaredCluster rejects a reference to a cluster the Config does not
// declare, once it declares any: a typo (cluster: prdo) would otherwise
// create an overlay that nothing applies, and the Secrets would silently
// never arrive. A Config without clusters keeps the old meaning, every named
// cluster with defaults, so small topologies need no Config. Every SecretRef
// comes through here from secretRef.
//
// Presets are held to the same rule rather than declaring their cluster
// themselves: a Preset's cluster is as easy to misspell, or to leave at its
// default (the Preset's name) by mistake, as anyone's. Each undeclared cluster
// is reported once per Preset, at the field that set it.
func (v *validator) declaredCluster(o object, field, cluster string) {
	if len(v.t.Config.Spec.Clusters) == 0 || cluster == "" || !isDNS1123Subdomain(cluster) {
		return // missing and invalid names are reported by secretRef
	}
	if slices.ContainsFunc(v.t.Config.Spec.Clusters, func(c Cluster) bool { return c.Name == cluster }) {
		return
	}
	if o.origin.Preset == "" {
		v.add(o, field, v.undeclaredCluster(cluster), v.declaredClusters())
		return
	}
	key := presetCluster{o.origin.Preset, cluster}
	if v.presetClustersReported[key] {
		return
	}
	if v.presetClustersReported == nil {
		v.presetClustersReported = map[presetCluster]bool{}
	}
	v.presetClustersReported[key] = true
	p := v.t.Preset(o.origin.Preset)
	if p == nil {
		return
	}
	po := object{kind: KindPreset, name: p.Metadata.Name, origin: p.Origin}
	if f := presetClusterField(p, cluster); f != "" {
		v.add(po, f, v.undeclaredCluster(cluster), v.declaredClusters())
	} else {
		v.add(po, "metadata.name", fmt.Sprintf("the Preset's cluster defaults to its name, and %s", v.undeclaredCluster(cluster)),
			v.declaredClusters()+"; or set the Preset's cluster")
	}
}

type presetCluster struct{ preset, cluster string }

func (v *validator) undeclaredCluster(name string) string {
	return fmt.Sprintf("cluster %q is not declared in the Config, did you mean %q?", name, closest(name, v.clusterNames()))
}

func (v *validator) declaredClusters() string {
	return fmt.Sprintf("a cluster of spec.clusters at %s: %s", posString(v.t.Config.Origin.At("spec.clusters")), strings.Join(v.clusterNames(), ", "))
}

func (v *validator) clusterNames() []string {
	var out []string
	for _, c := range v.t.Config.Spec.Clusters {
		if c.Name != "" {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// closest is the name with the smallest edit distance to s; ties go to the
// first in sorted order, so the suggestion never depends on map order.
func closest(s string, names []string) string {
	best, bestDist := "", -1
	for _, n := range names {
		if d := editDistance(s, n); bestDist < 0 || d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// presetClusterField finds the field of a Preset that names cluster: the
// Preset's own cluster (spec.kubeadm.clusterName, spec.kcp.cluster) or a
// component's or kubeconfig's override. It returns "" when the cluster was
// not written anywhere, that is when it defaulted to the Preset's name.
func presetClusterField(p *Preset, cluster string) string {
	var found string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if found != "" {
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				switch {
				case !f.IsExported():
				case f.Anonymous && name == "":
					walk(v.Field(i), path) // inlined, as the decoder reads it
				case (name == "cluster" || name == "clusterName") && f.Type.Kind() == reflect.String:
					if v.Field(i).String() == cluster {
						found = joinPath(path, name)
						return
					}
				default:
					walk(v.Field(i), joinPath(path, name))
				}
			}
		}
	}
	walk(reflect.ValueOf(p.Spec), "spec")
	return found
}
