package plan

import (
	"maps"
	"slices"
	"strings"

	kusttypes "sigs.k8s.io/kustomize/api/types"

	"github.com/gitca-dev/gitca/topology"
)

// A Flavour hands an overlay to one kind of GitOps agent: it writes the
// overlay's kustomization (and whatever the agent needs to decrypt it) and the
// object that makes the agent apply it. Each flavour is one file that
// registers itself here, so adding one touches nothing else in the plan.
type Flavour interface {
	Overlay(t *topology.Topology, l Layout, o *Overlay) (map[string]*derived, error)
}

var flavours = map[topology.Flavour]Flavour{}

func registerFlavour(name topology.Flavour, f Flavour) { flavours[name] = f }

func flavourNames() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(flavours)) {
		out = append(out, string(k))
	}
	return out
}

func newKustomization() kusttypes.Kustomization {
	return kusttypes.Kustomization{TypeMeta: kusttypes.TypeMeta{APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind}}
}

func kustomizationFileOf(o *Overlay, k kusttypes.Kustomization) *derived {
	return &derived{kind: FileKustomization, owner: "Cluster/" + o.Name, bytes: mustYAML(k)}
}

func gitopsFile(o *Overlay, obj any) *derived {
	return &derived{kind: FileGitOps, owner: "Cluster/" + o.Name, bytes: mustYAML(obj)}
}

// Config annotations that set how overlays are handed to Flux and Argo CD,
// with the defaults a stock `flux bootstrap` or Argo CD install expects.
const (
	AnnotationFluxSource     = "gitca.dev/flux-source"            // [namespace/]name of the GitRepository holding the state repo; default flux-system/flux-system
	AnnotationFluxDecryption = "gitca.dev/flux-decryption-secret" // Secret in the Flux namespace holding the cluster's age key; default sops-age
	AnnotationFluxInterval   = "gitca.dev/flux-interval"          // default 10m
	AnnotationArgoRepoURL    = "gitca.dev/argocd-repo-url"        // the state repo as Argo CD fetches it; required for ksops clusters
	AnnotationArgoRevision   = "gitca.dev/argocd-revision"        // default HEAD
	AnnotationArgoProject    = "gitca.dev/argocd-project"         // default default
	AnnotationArgoNamespace  = "gitca.dev/argocd-namespace"       // default argocd
	// AnnotationKCPWorkspace marks a workspace overlay's Flux Kustomization
	// with the workspace path it must be pointed at.
	AnnotationKCPWorkspace      = "gitca.dev/kcp-workspace"
	DefaultFluxNamespace        = "flux-system"
	DefaultFluxSource           = "flux-system"
	DefaultFluxDecryptionSecret = "sops-age"
)

type deliveryOptions struct {
	FluxNamespace, FluxSource, FluxDecryptionSecret, FluxInterval string
	ArgoRepoURL, ArgoRevision, ArgoProject, ArgoNamespace         string
}

func deliveryOptionsOf(t *topology.Topology) deliveryOptions {
	a := t.Config.Metadata.Annotations
	get := func(k, def string) string {
		if v := strings.TrimSpace(a[k]); v != "" {
			return v
		}
		return def
	}
	o := deliveryOptions{
		FluxNamespace:        DefaultFluxNamespace,
		FluxSource:           get(AnnotationFluxSource, DefaultFluxSource),
		FluxDecryptionSecret: get(AnnotationFluxDecryption, DefaultFluxDecryptionSecret),
		FluxInterval:         get(AnnotationFluxInterval, "10m"),
		ArgoRepoURL:          get(AnnotationArgoRepoURL, ""),
		ArgoRevision:         get(AnnotationArgoRevision, "HEAD"),
		ArgoProject:          get(AnnotationArgoProject, "default"),
		ArgoNamespace:        get(AnnotationArgoNamespace, "argocd"),
	}
	if ns, name, ok := strings.Cut(o.FluxSource, "/"); ok {
		o.FluxNamespace, o.FluxSource = ns, name
	}
	return o
}

type objectRef struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}
