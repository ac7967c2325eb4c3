package plan

import (
	"path"

	"github.com/gitca-dev/gitca/topology"
)

// Flux decrypts sealed files itself (decryption.provider: sops), so every file
// of the overlay is a plain resource. A Flux Kustomization applies it, from a
// GitRepository of the state repo that gitca writes too when the Config names
// the repository (spec.stateRepository). Both live in flux/<cluster>/, with a
// kustomization.yaml, so a user bootstraps a cluster with one
// `kubectl apply -k flux/<cluster>` (after the sops-age Secret).
type fluxFlavour struct{}

func init() { registerFlavour(topology.FlavourFlux, fluxFlavour{}) }

func (fluxFlavour) Overlay(t *topology.Topology, l Layout, o *Overlay) (map[string]*derived, error) {
	k := newKustomization()
	k.Resources = o.Files
	dir := l.FluxDir(o.Name)
	out := map[string]*derived{
		l.Kustomization(o.Dir):                     kustomizationFileOf(o, k),
		path.Join(dir, "gitca-kustomization.yaml"): gitopsFile(o, fluxKustomization(l, o)),
	}
	bootstrap := newKustomization()
	bootstrap.Resources = []string{"gitca-kustomization.yaml"}
	src := o.Cluster.Flux.Source
	if repo := t.Config.Spec.StateRepository; repo != nil && src.Kind == topology.DefaultFluxSourceKind {
		out[path.Join(dir, "gitca-gitrepository.yaml")] = gitopsFile(o, gitRepository(src, repo))
		bootstrap.Resources = append([]string{"gitca-gitrepository.yaml"}, bootstrap.Resources...)
	}
	out[l.Kustomization(dir)] = &derived{kind: FileGitOps, owner: "Cluster/" + o.Name, bytes: mustYAML(bootstrap)}
	return out, nil
}

type fluxKustomizationSpec struct {
	Interval      string    `json:"interval"`
	RetryInterval string    `json:"retryInterval"`
	Timeout       string    `json:"timeout"`
	Path          string    `json:"path"`
	Prune         bool      `json:"prune"`
	Wait          bool      `json:"wait"`
	SourceRef     objectRef `json:"sourceRef"`
	// KubeConfig points Flux at a remote API server: a kcp workspace is not
	// the cluster Flux runs in.
	KubeConfig *struct {
		SecretRef objectRef `json:"secretRef"`
	} `json:"kubeConfig,omitempty"`
	Decryption struct {
		Provider  string    `json:"provider"`
		SecretRef objectRef `json:"secretRef"`
	} `json:"decryption"`
}

type fluxKustomizationObject struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Metadata   Meta                  `json:"metadata"`
	Spec       fluxKustomizationSpec `json:"spec"`
}

// fluxKustomization makes Flux's kustomize-controller apply the overlay and
// decrypt its sealed Secrets with the cluster's age key. It lives next to its
// source, in the source's namespace, where the sops-age Secret is too.
func fluxKustomization(l Layout, o *Overlay) fluxKustomizationObject {
	f := o.Cluster.Flux
	k := fluxKustomizationObject{
		APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization",
		Metadata: Meta{Name: "gitca-" + fileSafe(o.Name), Namespace: f.Source.Namespace, Labels: ManagedLabels()},
		Spec: fluxKustomizationSpec{
			Interval:      durationOr(f.Interval, topology.DefaultFluxInterval),
			RetryInterval: durationOr(f.RetryInterval, topology.DefaultFluxRetryInterval),
			Timeout:       durationOr(f.Timeout, topology.DefaultFluxTimeout),
			Path:          cmpOr(f.Path, "./"+o.Dir),
			Prune:         true,
			// Wait: the Kustomization is Ready only once what it applied is,
			// so a dependent Kustomization never starts on a half-applied PKI.
			Wait:      true,
			SourceRef: objectRef{Kind: f.Source.Kind, Name: f.Source.Name, Namespace: f.Source.Namespace},
		},
	}
	k.Spec.Decryption.Provider = "sops"
	k.Spec.Decryption.SecretRef = objectRef{Name: f.DecryptionSecret}
	if o.Workspace != "" {
		// Applied to Flux's own cluster, a workspace's bindings would grant
		// roles there. Name a kubeconfig Secret for the workspace instead: until
		// someone provides it, Flux fails closed.
		k.Metadata.Annotations = map[string]string{AnnotationKCPWorkspace: o.Workspace}
		k.Spec.KubeConfig = &struct {
			SecretRef objectRef `json:"secretRef"`
		}{objectRef{Name: "gitca-" + fileSafe(o.Name) + "-kubeconfig"}}
	}
	return k
}

type gitRepositoryObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   Meta   `json:"metadata"`
	Spec       struct {
		URL      string `json:"url"`
		Interval string `json:"interval"`
		Ref      struct {
			Branch string `json:"branch"`
		} `json:"ref"`
		SecretRef *objectRef `json:"secretRef,omitempty"`
	} `json:"spec"`
}

// gitRepository is Flux's source of the state repo.
func gitRepository(src topology.FluxSourceRef, repo *topology.StateRepository) gitRepositoryObject {
	var g gitRepositoryObject
	g.APIVersion, g.Kind = "source.toolkit.fluxcd.io/v1", "GitRepository"
	g.Metadata = Meta{Name: src.Name, Namespace: src.Namespace, Labels: ManagedLabels()}
	g.Spec.URL = repo.URL
	g.Spec.Interval = durationOr(repo.Interval, topology.DefaultStateInterval)
	g.Spec.Ref.Branch = repo.Branch
	if repo.SecretRef != "" {
		g.Spec.SecretRef = &objectRef{Name: repo.SecretRef}
	}
	return g
}
