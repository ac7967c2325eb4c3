package plan

import (
	"fmt"
	"path"

	"github.com/gitca-dev/gitca/topology"
)

// Argo CD does not decrypt: sealed Secrets go through the KSOPS generator
// (ksops v4, an exec KRM function), which decrypts them during the build, and
// every other file stays a resource. An Argo CD Application applies the overlay.
type ksopsFlavour struct{}

func init() { registerFlavour(topology.FlavourKSOPS, ksopsFlavour{}) }

func (ksopsFlavour) Overlay(t *topology.Topology, l Layout, o *Overlay) (map[string]*derived, error) {
	if o.Cluster.ArgoCD.RepoURL == "" {
		return nil, fmt.Errorf("cluster %s uses flavour ksops: set spec.clusters[].argocd.repoURL (or spec.stateRepository.url) to the state repo's URL, for its Argo CD Application", o.Name)
	}
	out := map[string]*derived{}
	k := newKustomization()
	var files []string
	for _, f := range o.Files {
		if o.Sealed[f] {
			files = append(files, "./"+f)
		} else {
			k.Resources = append(k.Resources, f)
		}
	}
	if len(files) > 0 {
		k.Generators = []string{ksopsGeneratorFile}
		out[l.KSOPSGenerator(o.Dir)] = &derived{kind: FileKustomization, owner: "Cluster/" + o.Name, bytes: mustYAML(ksopsGenerator(o.Name, files))}
	}
	out[l.Kustomization(o.Dir)] = kustomizationFileOf(o, k)
	out[path.Join(l.ArgoDir(o.Name), "gitca-application.yaml")] = gitopsFile(o, argoApplication(o))
	return out, nil
}

type argoApplicationObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   Meta   `json:"metadata"`
	Spec       struct {
		Project string `json:"project"`
		Source  struct {
			RepoURL        string `json:"repoURL"`
			TargetRevision string `json:"targetRevision"`
			Path           string `json:"path"`
		} `json:"source"`
		Destination struct {
			Name string `json:"name"`
		} `json:"destination"`
		SyncPolicy struct {
			Automated struct {
				Prune    bool `json:"prune"`
				SelfHeal bool `json:"selfHeal"`
			} `json:"automated"`
		} `json:"syncPolicy"`
	} `json:"spec"`
}

// argoApplication makes Argo CD sync the overlay into the cluster registered
// under the overlay's name. Its repo-server needs the ksops binary and
// kustomize.buildOptions "--enable-alpha-plugins --enable-exec".
func argoApplication(o *Overlay) argoApplicationObject {
	opts := o.Cluster.ArgoCD
	var a argoApplicationObject
	a.APIVersion, a.Kind = "argoproj.io/v1alpha1", "Application"
	a.Metadata = Meta{Name: "gitca-" + fileSafe(o.Name), Namespace: opts.Namespace, Labels: ManagedLabels()}
	a.Spec.Project = opts.Project
	a.Spec.Source.RepoURL = opts.RepoURL
	a.Spec.Source.TargetRevision = opts.Revision
	a.Spec.Source.Path = o.Dir
	a.Spec.Destination.Name = o.Name
	a.Spec.SyncPolicy.Automated.Prune = true
	a.Spec.SyncPolicy.Automated.SelfHeal = true
	return a
}

// KSOPSGeneratorObject is KSOPS's exec KRM function form (ksops v4), which
// `kustomize build --enable-alpha-plugins --enable-exec` runs.
type KSOPSGeneratorObject struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Meta     `json:"metadata"`
	Files      []string `json:"files"`
}

// IsKSOPS reports whether a generator is a KSOPS generator.
func (g KSOPSGeneratorObject) IsKSOPS() bool {
	return g.APIVersion == "viaduct.ai/v1" && g.Kind == "ksops"
}

func ksopsGenerator(name string, files []string) KSOPSGeneratorObject {
	return KSOPSGeneratorObject{
		APIVersion: "viaduct.ai/v1", Kind: "ksops",
		Metadata: Meta{Name: "gitca-" + fileSafe(name) + "-secrets",
			Annotations: map[string]string{"config.kubernetes.io/function": "exec:\n  path: ksops\n"}},
		Files: files,
	}
}
