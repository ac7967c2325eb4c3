package topology

import (
	"maps"
	"slices"
)

// Expansion is what one Preset turns into. Every object's Origin points at the
// Preset document (Origin.Preset set), so a problem in a generated object is
// reported where the user can fix it.
type Expansion struct {
	CAs          []*CertificateAuthority
	Certificates []*Certificate
	KeyPairs     []*KeyPair
	Kubeconfigs  []*Kubeconfig
	TrustBundles []*TrustBundle
}

// presetExpander turns a defaulted Preset into objects. It returns an ErrorList
// for problems in the Preset's own fields.
type presetExpander func(p *Preset) (*Expansion, error)

var presetExpanders = map[string]presetExpander{}

// registerPreset is called from each preset's init; a preset is data plus one expander.
func registerPreset(typ string, f presetExpander) {
	if _, dup := presetExpanders[typ]; dup {
		panic("topology: preset registered twice: " + typ)
	}
	presetExpanders[typ] = f
}

// PresetTypes lists the registered preset types, sorted, for error messages and help.
func PresetTypes() []string { return slices.Sorted(maps.Keys(presetExpanders)) }
