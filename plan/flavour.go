package plan

import (
	"maps"
	"slices"
	"time"

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

// AnnotationKCPWorkspace marks a workspace overlay's Flux Kustomization with
// the workspace path it must be pointed at.
const AnnotationKCPWorkspace = "gitca.dev/kcp-workspace"

// durationOr is a topology duration as Flux takes it ("10m", "1h30m").
func durationOr(d *topology.Duration, def time.Duration) string {
	if d == nil {
		d = topology.NewDuration(def)
	}
	return d.String()
}

type objectRef struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}
