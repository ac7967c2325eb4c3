package plan

import (
	"path"

	"github.com/gitca-dev/gitca/topology"
)

// Flux decrypts sealed files itself (decryption.provider: sops), so every file
// of the overlay is a plain resource, and a Flux Kustomization applies it.
type fluxFlavour struct{}

func init() { registerFlavour(topology.FlavourFlux, fluxFlavour{}) }

func (fluxFlavour) Overlay(t *topology.Topology, l Layout, o *Overlay) (map[string]*derived, error) {
	k := newKustomization()
	k.Resources = o.Files
	return map[string]*derived{
		l.Kustomization(o.Dir): kustomizationFileOf(o, k),
		path.Join(l.FluxDir(o.Name), "gitca-kustomization.yaml"): gitopsFile(o, fluxKustomization(o, deliveryOptionsOf(t))),
	}, nil
}

type fluxKustomizationSpec struct {
	Interval  string    `json:"interval"`
	Path      string    `json:"path"`
	Prune     bool      `json:"prune"`
	SourceRef objectRef `json:"sourceRef"`
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
// decrypt its sealed Secrets with the cluster's age key.
func fluxKustomization(o *Overlay, opts deliveryOptions) fluxKustomizationObject {
	k := fluxKustomizationObject{
		APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization",
		Metadata: Meta{Name: "gitca-" + fileSafe(o.Name), Namespace: opts.FluxNamespace, Labels: ManagedLabels()},
		Spec: fluxKustomizationSpec{
			Interval:  opts.FluxInterval,
			Path:      "./" + o.Dir,
			Prune:     true,
			SourceRef: objectRef{Kind: "GitRepository", Name: opts.FluxSource},
		},
	}
	k.Spec.Decryption.Provider = "sops"
	k.Spec.Decryption.SecretRef = objectRef{Name: opts.FluxDecryptionSecret}
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
