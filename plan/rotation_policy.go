package plan

import (
	"fmt"
	"strings"

	"github.com/gitca-dev/gitca/state"
)

// rotationView is what a rotation means for one desired record, as its
// policies see it.
type rotationView struct {
	// own is the transition of the object's own rotation (its signing
	// record, or one of its generation records) in this run.
	own       Transition
	ownDetail string
	// role is a CA generation record's role; empty for the signing record.
	role string
	// fresh marks a generation record this run makes.
	fresh bool
	// trust is set when the CA this record trusts (the root of its chain,
	// or a kubeconfig's target CA) changes its trusted generations in this run.
	trust *trustChange
	// signer is set when the record's issuer signs with another generation from this run on.
	signer *signerChange
	// verifyList marks a key pair with spec.rotation whose record does not
	// hold its verify list (verify.pub, jwks.json) yet.
	verifyList bool
}

type trustChange struct {
	ca           string
	transition   Transition
	enter, leave []int
}

func (c *trustChange) detail(what string) string {
	var parts []string
	for _, g := range c.enter {
		parts = append(parts, fmt.Sprintf("+ %s generation %d", c.ca, g))
	}
	for _, g := range c.leave {
		parts = append(parts, fmt.Sprintf("- %s generation %d", c.ca, g))
	}
	return what + ": " + strings.Join(parts, ", ")
}

type signerChange struct {
	ca       string
	from, to int
	rollback bool
}

// viewOf is the rotation view of a desired record, nil when no rotation concerns it.
func (p *Plan) viewOf(d *Desired, st *state.State) *rotationView {
	if len(p.rot.byID) == 0 {
		return nil // no rotation anywhere: the common case, on every record
	}
	v := &rotationView{}
	var own *staged
	if ref, ok := p.rot.generations[d.ID]; ok {
		own, v.role = p.rot.byID[string(KindCA)+"/"+ref.ca], ref.role
	} else {
		own = p.rot.byID[d.ID]
	}
	if own != nil && own.step.Transition != TransitionNone {
		v.own, v.ownDetail = ownTransition(own, v.role, d)
		if v.role == GenerationRetired && !(own.step.Transition == TransitionDrop && d.ID == generationID(own.id, retiredSuffix(own.dropped))) {
			v.own, v.ownDetail = TransitionNone, "" // retired before this run: untouched
		}
		if o, ok := p.rot.claims[d.ID]; ok && o == nil && v.role != "" {
			v.fresh = true
		}
	}
	if v.role != GenerationRetired {
		trustCA := ""
		switch d.Kind {
		case KindCert, KindCA:
			trustCA = p.RootOf(d)
		case KindKubeconfig:
			if p.Topology.CA(d.Kubeconfig.Spec.Target.CA) != nil {
				trustCA = d.Kubeconfig.Spec.Target.CA
			}
		}
		if tr := p.rot.byID[string(KindCA)+"/"+trustCA]; tr != nil && tr != own && tr.trustChanged() {
			v.trust = &trustChange{ca: tr.name, transition: tr.step.Transition,
				enter: without(tr.trustAfter, tr.trustBefore), leave: without(tr.trustBefore, tr.trustAfter)}
		}
		if iss := d.Shape.Issuer; iss != "" {
			if ir := p.rot.byID[string(KindCA)+"/"+iss]; ir != nil && ir.step.Signing != ir.in.signing {
				v.signer = &signerChange{ca: iss, from: ir.in.signing, to: ir.step.Signing, rollback: ir.step.Transition == TransitionRollback}
			}
		}
	}
	if d.Kind == KindKeyPair && own != nil && own.spec != nil {
		if o := st.Primary[d.ID]; o != nil {
			pv := o.PlainValues()
			v.verifyList = pv[KeyVerifyList] == "" || pv[KeyJWKS] == ""
		}
	}
	if v.own == TransitionNone && v.trust == nil && v.signer == nil && !v.verifyList {
		return nil
	}
	return v
}

// Values of a key pair's record besides tls.key and tls.pub.
const (
	KeyVerifyList = "verify.pub" // every public key tokens are verified with, PEM, generation order
	KeyJWKS       = "jwks.json"  // the same keys as a JWK Set (RFC 7517)
	KeyNext       = "next.key"   // Add: the next generation's private key
	KeyPrevious   = "previous.key"
	KeyRetired    = "retired.key" // the last generation dropped, with spec.rotation.retire: keep
)

func without(a, b []int) []int {
	var out []int
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// ownTransition says what a run's transition does to one of the rotating
// object's records.
func ownTransition(r *staged, role string, d *Desired) (Transition, string) {
	st, in := r.step, r.in
	tr := st.Transition
	switch {
	case tr == TransitionAdd && role == GenerationNext:
		detail := fmt.Sprintf("new generation %d of %s (CN %s), trusted beside generation %d, signs from the switch", st.Other, r.name, d.Shape.CommonName, st.Signing)
		if r.dropped > 0 {
			detail += fmt.Sprintf("; replaces generation %d, which never signed", r.dropped)
		}
		return tr, detail
	case tr == TransitionAdd && r.kind == KindKeyPair:
		return tr, fmt.Sprintf("generation %d of %s enters the verify list; generation %d keeps signing tokens", st.Other, r.name, st.Signing)
	case tr == TransitionAdd:
		return tr, fmt.Sprintf("generation %d of %s enters every trust file; generation %d keeps signing", st.Other, r.name, st.Signing)
	case (tr == TransitionSwitch || tr == TransitionRollback && in.phase == PhaseSwitch) && role == "":
		return tr, fmt.Sprintf("generation %d of %s signs from now", st.Signing, r.name)
	case tr == TransitionSwitch || tr == TransitionRollback && in.phase == PhaseSwitch:
		return tr, fmt.Sprintf("generation %d of %s stops signing; it stays trusted until Drop", st.Other, r.name)
	case tr == TransitionDrop && role == GenerationRetired:
		return tr, fmt.Sprintf("generation %d of %s is retired: in no trust file, its key kept", r.dropped, r.name)
	case tr == TransitionDrop && r.kind == KindKeyPair:
		return tr, fmt.Sprintf("generation %d of %s leaves the verify list", r.dropped, r.name)
	case tr == TransitionDrop:
		return tr, fmt.Sprintf("generation %d of %s leaves every trust file", r.dropped, r.name)
	case tr == TransitionRollback:
		return tr, fmt.Sprintf("generation %d of %s, which never signed, leaves every trust file and verify list", r.dropped, r.name)
	}
	return tr, ""
}

// rotationNewGeneration makes the record of a CA's next generation (Add).
func rotationNewGeneration(in policyInput) []Reason {
	if in.o != nil || in.rot == nil || !in.rot.fresh {
		return nil
	}
	return []Reason{{Code: ReasonRotationAdd, Detail: in.rot.ownDetail}}
}

// rotationAdd: a new generation enters what this record trusts (its ca.crt
// or a kubeconfig's CA data), or the rotating object's own record starts
// phase add.
func rotationAdd(in policyInput) []Reason {
	v := in.rot
	switch {
	case in.o == nil || v == nil:
	case v.own == TransitionAdd && !v.fresh:
		return []Reason{{Code: ReasonRotationAdd, Detail: v.ownDetail}}
	case v.trust != nil && v.trust.transition == TransitionAdd:
		return []Reason{{Code: ReasonRotationAdd, Detail: v.trust.detail("trusts")}}
	}
	return nil
}

// rotationSwitch: the rotating object's records change places (the new
// generation's record becomes the signing one); nothing is signed.
func rotationSwitch(in policyInput) []Reason {
	if in.o == nil || in.rot == nil || in.rot.own != TransitionSwitch {
		return nil
	}
	return []Reason{{Code: ReasonRotationSwitch, Detail: in.rot.ownDetail}}
}

// rotationSignerSwitch: the issuer signs with another generation from this
// run on, so the certificate is issued again by it.
func rotationSignerSwitch(in policyInput) []Reason {
	v := in.rot
	if in.o == nil || v == nil || v.signer == nil {
		return nil
	}
	s := v.signer
	detail := fmt.Sprintf("%s generation %d signs from now (was %d)", s.ca, s.to, s.from)
	if s.rollback {
		detail += ", a rollback"
	}
	return []Reason{{Code: ReasonRotationSwitch, Detail: detail}}
}

// rotationDrop: the old generation leaves what this record trusts, or the
// rotating object's records change at Drop (the old one is retired).
func rotationDrop(in policyInput) []Reason {
	v := in.rot
	switch {
	case in.o == nil || v == nil:
	case v.own == TransitionDrop:
		return []Reason{{Code: ReasonRotationDrop, Detail: v.ownDetail}}
	case v.trust != nil && v.trust.transition == TransitionDrop:
		return []Reason{{Code: ReasonRotationDrop, Detail: v.trust.detail("trusts")}}
	}
	return nil
}

// rotationRollback: a rotation goes back (the topology set the generation
// back): a generation that never signed leaves what this record trusts, or
// the rotating object's records change places again.
func rotationRollback(in policyInput) []Reason {
	v := in.rot
	switch {
	case in.o == nil || v == nil:
	case v.own == TransitionRollback:
		return []Reason{{Code: ReasonRotationRollback, Detail: v.ownDetail}}
	case v.trust != nil && v.trust.transition == TransitionRollback:
		return []Reason{{Code: ReasonRotationRollback, Detail: v.trust.detail("trusts")}}
	}
	return nil
}

// rotationVerifyList: a key pair whose rotation is declared publishes its
// verify list (verify.pub, jwks.json) from the first run on, so consumers
// can be pointed at it before the first Add.
func rotationVerifyList(in policyInput) []Reason {
	if in.o == nil || in.rot == nil || !in.rot.verifyList || in.rot.own != TransitionNone {
		return nil
	}
	return []Reason{{Code: ReasonVerifyList, Detail: "spec.rotation is declared: the record gains " + KeyVerifyList + " and " + KeyJWKS}}
}

// rotationPolicies are evaluated for every certificate-bearing object and key pair.
var rotationPolicies = []policy{
	{ReasonRotationAdd, ActionUpdateChain, rotationAdd},
	{ReasonRotationSwitch, ActionUpdateChain, rotationSwitch},
	{ReasonRotationSwitch, ActionReissue, rotationSignerSwitch},
	{ReasonRotationDrop, ActionUpdateChain, rotationDrop},
	{ReasonRotationRollback, ActionUpdateChain, rotationRollback},
}

// generationPolicies are a CA generation record's (next or previous): a
// certificate's, except that it is made by Add, not because it is missing.
var generationPolicies = append([]policy{{ReasonRotationAdd, ActionCreate, rotationNewGeneration}}, certPolicies[1:]...)

// retiredPolicies: a retired generation is never renewed or re-signed;
// it only moves or follows its recipients.
var retiredPolicies = []policy{
	{ReasonMoved, ActionReencrypt, moved},
	{ReasonRecipients, ActionReencrypt, recipientsChanged},
	{ReasonRotationDrop, ActionUpdateChain, rotationDrop},
}

// rotationChain picks the policies of a CA generation record; nil for any other object.
func (p *Plan) rotationChain(d *Desired) []policy {
	switch p.GenerationRole(d.ID) {
	case GenerationNext, GenerationPrevious:
		return generationPolicies
	case GenerationRetired:
		return retiredPolicies
	}
	return nil
}

// rotationDelete is the reasons a stored record is deleted by a rotation, nil when it is not.
func (p *Plan) rotationDelete(id string) []Reason { return p.rot.deletes[id] }

// isRotationClaimed reports whether a stored record lives on in another desired record.
func (p *Plan) isRotationClaimed(id string) bool {
	return p.rot.claimed[id] && p.rot.deletes[id] == nil
}

// rotationOnly reports whether an action is a rotation's alone: the
// record changes (its trust, its place, its annotations) but not the chain
// its children carry.
func (a *Action) rotationOnly() bool {
	if len(a.Reasons) == 0 {
		return false
	}
	for _, r := range a.Reasons {
		switch r.Code {
		case ReasonRotationAdd, ReasonRotationSwitch, ReasonRotationDrop, ReasonRotationRollback, ReasonVerifyList, ReasonMoved:
		default:
			return false
		}
	}
	return true
}
