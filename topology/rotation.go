package topology

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rotation declares which generation of a CA's or key pair's key is wanted.
// Raising Generation starts a staged rotation (Add, Switch, Drop: one run
// and one commit each, the plan package drives it); setting it back to the
// generation that signed before is a rollback, possible until the old
// generation is dropped. Where a rotation stands is kept in the state, never
// here: the topology says only what is wanted.
type Rotation struct {
	// Generation 1 is the key the object was first made with.
	Generation int `json:"generation"`
	// Soak is how long each phase waits before the next one, the time every
	// consumer needs to reload its trust files; default 24h.
	Soak *Duration `json:"soak,omitempty"`
	// Retire says what happens to the old generation's key at Drop: keep it
	// as a retired, encrypted record (default) or delete it.
	Retire RetirePolicy `json:"retire,omitempty"`
	// TokenLifetime (key pairs only) is the longest lifetime of a token
	// signed with the key: the old public key stays in the verify list this
	// long after Switch, default 24h.
	TokenLifetime *Duration `json:"tokenLifetime,omitempty"`
}

// RetirePolicy is what a rotation does with the key it drops.
type RetirePolicy string

const (
	RetireKeep   RetirePolicy = "keep"
	RetireDelete RetirePolicy = "delete"
)

// Defaults of a rotation.
const (
	DefaultRotationSoak  = 24 * time.Hour
	DefaultTokenLifetime = 24 * time.Hour
)

// SoakDuration is Soak or its default; a nil rotation has the default too.
func (r *Rotation) SoakDuration() time.Duration {
	if r == nil || r.Soak == nil {
		return DefaultRotationSoak
	}
	return r.Soak.Duration
}

// TokenLifetimeDuration is TokenLifetime or its default.
func (r *Rotation) TokenLifetimeDuration() time.Duration {
	if r == nil || r.TokenLifetime == nil {
		return DefaultTokenLifetime
	}
	return r.TokenLifetime.Duration
}

// RetirePolicyOrDefault is Retire or keep.
func (r *Rotation) RetirePolicyOrDefault() RetirePolicy {
	if r == nil || r.Retire == "" {
		return RetireKeep
	}
	return r.Retire
}

// applyPresetRotations copies each Preset's spec.rotations onto the objects
// it generated: a preset's CAs and key pairs are not written by hand, so
// their rotation is declared on the Preset, by the generated object's name.
func (t *Topology) applyPresetRotations() ErrorList {
	var errs ErrorList
	for _, p := range t.Presets {
		for _, name := range sortedKeys(p.Spec.Rotations) {
			r := p.Spec.Rotations[name]
			field := "spec.rotations." + name
			var generated []string
			found := false
			for _, ca := range t.CAs {
				if ca.Origin.Preset != p.Metadata.Name {
					continue
				}
				generated = append(generated, ca.Metadata.Name)
				if ca.Metadata.Name == name && r != nil {
					cp := *r
					ca.Spec.Rotation, found = &cp, true
				}
			}
			for _, kp := range t.KeyPairs {
				if kp.Origin.Preset != p.Metadata.Name {
					continue
				}
				generated = append(generated, kp.Metadata.Name)
				if kp.Metadata.Name == name && r != nil {
					cp := *r
					kp.Spec.Rotation, found = &cp, true
				}
			}
			if !found && r != nil {
				slices.Sort(generated)
				errs = append(errs, errAt(p.Origin, field, fmt.Sprintf("Preset %q generates no CertificateAuthority or KeyPair %q", p.Metadata.Name, name),
					"one of "+strings.Join(generated, ", ")))
			}
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rotations checks every declared rotation. Errors about a generated object
// point at the Preset's spec.rotations entry.
func (v *validator) rotations() {
	check := func(o object, field string, r *Rotation, keyPair bool) {
		if r == nil {
			return
		}
		if o.origin.Preset != "" {
			field = "spec.rotations." + o.name
			o.origin = v.presetOrigin(o.origin)
		}
		if r.Generation < 1 {
			v.add(o, field+".generation", fmt.Sprintf("generation must be 1 or more, got %d", r.Generation),
				"1 for the key the object was first made with; raise it by one to rotate (gitca rotate)")
		}
		if r.Soak != nil && r.Soak.Duration < 0 {
			v.add(o, field+".soak", fmt.Sprintf("soak must not be negative, got %s", r.Soak), "a Go duration such as 24h, or whole days such as 2d")
		}
		if r.Retire != "" && r.Retire != RetireKeep && r.Retire != RetireDelete {
			v.add(o, field+".retire", fmt.Sprintf("unknown retire policy %q", r.Retire), "keep (default) or delete")
		}
		if r.TokenLifetime != nil {
			switch {
			case !keyPair:
				v.add(o, field+".tokenLifetime", "tokenLifetime applies to key pairs only: a CA's old generation leaves the trust files one soak after Switch", "remove it")
			case r.TokenLifetime.Duration <= 0:
				v.add(o, field+".tokenLifetime", fmt.Sprintf("tokenLifetime must be positive, got %s", r.TokenLifetime), "the longest lifetime of a token signed with the key, such as 24h")
			}
		}
	}
	for _, ca := range v.t.CAs {
		o := object{kind: KindCertificateAuthority, name: ca.Metadata.Name, origin: ca.Origin}
		r := ca.Spec.Rotation
		check(o, "spec.rotation", r, false)
		if r != nil && r.Generation > 1 && ca.Spec.Import != nil {
			field := "spec.rotation.generation"
			if o.origin.Preset != "" {
				field = "spec.rotations." + o.name + ".generation"
				o.origin = v.presetOrigin(o.origin)
			}
			v.add(o, field, "an imported CA cannot be rotated by gitca: its key is not made here",
				"import the new root as another CertificateAuthority and list both in the trust bundles, or drop import so gitca makes the key")
		}
	}
	for _, kp := range v.t.KeyPairs {
		check(object{kind: KindKeyPair, name: kp.Metadata.Name, origin: kp.Origin}, "spec.rotation", kp.Spec.Rotation, true)
	}
}

// presetOrigin is the origin of the Preset document that generated an
// object, so that an error about spec.rotations.<name> points at that entry.
func (v *validator) presetOrigin(o Origin) Origin {
	if p := v.t.Preset(o.Preset); p != nil {
		return p.Origin
	}
	return o
}
