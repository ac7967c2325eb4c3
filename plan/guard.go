package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// guardDestruction refuses a plan that deletes a CA, or most of the objects,
// unless the Config names each deleted CA (and, for a mass deletion, every
// deleted object) in spec.allowDelete, or the run was given AllowDestroy.
// terraform's prevent_destroy is the model: a bad merge or an empty checkout
// must not take a PKI down in one commit.
func (p *Plan) guardDestruction() error {
	allowed := p.Topology.Config.Spec.AllowDelete
	for i, id := range allowed {
		kind, name, ok := strings.Cut(id, "/")
		if !ok || name == "" || !slices.Contains(objectKinds, ObjectKind(kind)) {
			pos := p.Topology.Config.Origin.At(fmt.Sprintf("spec.allowDelete[%d]", i))
			return &topology.FieldError{Pos: pos, Field: fmt.Sprintf("spec.allowDelete[%d]", i),
				Msg: fmt.Sprintf("%q is not an object ID", id), Allowed: "<Kind>/<name> with Kind one of " + kindList()}
		}
	}
	stored, deleted := 0, 0
	var cas, unallowed []string
	for _, a := range p.Objects {
		if a.Stored != nil {
			stored++
		}
		if a.Action != ActionDelete || a.retiring {
			continue
		}
		deleted++
		if slices.Contains(allowed, a.ID) {
			continue
		}
		unallowed = append(unallowed, a.ID)
		if a.Kind == KindCA {
			cas = append(cas, a.ID)
		}
	}
	mass := deleted >= 2 && 2*deleted > stored
	switch {
	case len(cas) > 0:
		return &DestroyError{IDs: cas, Why: fmt.Sprintf("the plan deletes %d CA(s); every certificate they signed stops being trusted", len(cas))}
	case mass && len(unallowed) > 0:
		return &DestroyError{IDs: unallowed, Why: fmt.Sprintf("the plan deletes %d of %d objects (a wrong topology path or a bad merge looks like this)", deleted, stored)}
	}
	return nil
}

// DestroyError is a plan the destruction guard refused.
type DestroyError struct {
	IDs []string
	Why string
}

func (e *DestroyError) Error() string {
	return fmt.Sprintf("refusing to destroy: %s:\n  %s\nIf this is intended, list each object in the Config's spec.allowDelete, or run with --allow-destroy",
		e.Why, strings.Join(e.IDs, "\n  "))
}

var objectKinds = []ObjectKind{KindCA, KindCert, KindKeyPair, KindKubeconfig, KindMergedKubeconfig}

func kindList() string {
	s := make([]string, len(objectKinds))
	for i, k := range objectKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// guardCARecords stops a plan that would replace a CA whose record exists
// but cannot be read (a file at its path that is not its record, or a
// damaged one): a new root silently made over it would end the trust of
// everything the old one signed, and a new key for an intermediate would
// end its chain. A person decides: restore the record, or delete it.
func (p *Plan) guardCARecords(st *state.State) error {
	var errs []string
	for _, a := range p.Objects {
		if a.Kind != KindCA || a.Action == ActionDelete {
			continue
		}
		path := a.Desired.Path
		switch {
		case a.Stored == nil && st.Has(path):
			why := "it is not a gitca record"
			if u := st.Unreadable[path]; u != "" {
				why = "it cannot be read: " + u
			} else if o := st.At(path); o != nil {
				why = "it is the record of " + o.ID
			}
			errs = append(errs, fmt.Sprintf("%s: the record of %s exists, but %s", path, a.ID, why))
		case a.Stored != nil:
			var damage []string
			for _, r := range a.Reasons {
				if r.Code == ReasonDamaged {
					damage = append(damage, r.Detail)
				}
			}
			if len(damage) > 0 {
				errs = append(errs, fmt.Sprintf("%s: the record of %s is damaged: %s", a.Stored.Path, a.ID, strings.Join(damage, "; ")))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to replace a CA whose record cannot be read (a new key would end the trust of everything it signed); restore the record from the repository's history, or delete it to make a new CA:\n  %s", strings.Join(errs, "\n  "))
}
