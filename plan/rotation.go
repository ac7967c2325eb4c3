package plan

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// Where a rotation stands is kept in plain, MAC-covered annotations of the
// records it concerns, so planning reads it without decrypting anything.
const (
	// AnnotationGeneration is the key generation a record holds; absent means 1.
	AnnotationGeneration = "gitca.dev/generation"
	// AnnotationRotationPhase is add or switch on every live record of a rotation in flight.
	AnnotationRotationPhase = "gitca.dev/rotation-phase"
	// AnnotationRotationSince is when that phase started (RFC 3339); the soak counts from it.
	AnnotationRotationSince = "gitca.dev/rotation-since"
	// AnnotationRotationRole is what a CA generation record is beside the
	// signing one (ca/<name>.yaml): next, previous or retired.
	AnnotationRotationRole = "gitca.dev/rotation-role"
	// AnnotationRotationOther is, on a key pair's record, the generation of
	// the second key it holds (next.key or previous.key).
	AnnotationRotationOther = "gitca.dev/rotation-other"
	// AnnotationRetiredAt is when a generation was dropped.
	AnnotationRetiredAt = "gitca.dev/retired-at"
)

// Roles of a CA generation record beside the signing one.
const (
	GenerationNext     = "next"     // Add: trusted, does not sign yet
	GenerationPrevious = "previous" // Switch: trusted, no longer signs
	GenerationRetired  = "retired"  // Drop: in no trust file; its key kept, encrypted
)

// Reasons a rotation gives; each comes from one function in rotation_policy.go.
const (
	ReasonRotationAdd      = "rotation-add"
	ReasonRotationSwitch   = "rotation-switch"
	ReasonRotationDrop     = "rotation-drop"
	ReasonRotationRollback = "rotation-rollback"
	ReasonVerifyList       = "rotation-verify-list"
)

// RotationStatus is a rotation as the plan reports it, on the rotating
// object's action: what this run does, where it leaves the rotation, and
// what the next run does and from when.
type RotationStatus struct {
	Transition Transition `json:"transition,omitempty"`
	Phase      Phase      `json:"phase"`
	Since      *time.Time `json:"since,omitempty"`
	Signing    int        `json:"signingGeneration"`
	Trusted    []int      `json:"trustedGenerations"`
	Next       string     `json:"next,omitempty"`
	NextAt     *time.Time `json:"nextAt,omitempty"`
}

// staged is the plan of one CA's or key pair's rotation.
type staged struct {
	id   string // the topology object's ID
	name string
	kind ObjectKind
	spec *topology.Rotation
	in   rotationInput
	step rotationStep
	// trustBefore and trustAfter are the trusted generations before and after the run.
	trustBefore, trustAfter []int
	// trustIDs are the records of the generations trusted after the run, in
	// generation order (CAs only).
	trustIDs []string
	// otherRole is where the second live generation is kept after the run.
	otherRole string
	// dropped is the generation this run drops, 0 for none.
	dropped int
	// storedGen are the stored records of the live generations before the
	// run, genIDs the desired records of those after it, by generation.
	storedGen map[int]*state.Object
	genIDs    map[int]string
}

// trustChanged reports whether generations enter or leave the trust files in this run.
func (r *staged) trustChanged() bool { return !slices.Equal(r.trustBefore, r.trustAfter) }

// KeyRotation is what apply needs to carry a key pair's rotation out: which
// generation signs after the run, which other one stays in the verify list
// and where, and what the run drops.
type KeyRotation struct {
	Transition Transition
	// Before: the generations the stored record holds (0 for none).
	SigningBefore, OtherBefore int
	// After the run.
	Signing, Other int
	OtherRole      string // next or previous, empty when steady
	Dropped        int    // the generation this run takes out, 0 for none
	Retire         topology.RetirePolicy
}

// rotationPlan is every rotation of a plan and what the objects and records
// around them see.
type rotationPlan struct {
	byID map[string]*staged // by the topology object's ID
	// claims maps a desired record (by ID) to the stored record it is made
	// from, when that is not the stored record of the same ID: generations
	// change places at Switch. A nil value means "a fresh record".
	claims map[string]*state.Object
	// claimed are stored IDs taken by another desired record: not orphans.
	claimed map[string]bool
	// deletes are stored records a rotation removes, with why.
	deletes map[string][]Reason
	// views are what the policies of each desired record see.
	views map[string]*rotationView
	// generations maps a CA generation record's ID to its CA and role.
	generations map[string]generationRef
}

type generationRef struct {
	ca, role string
}

func newRotationPlan() rotationPlan {
	return rotationPlan{byID: map[string]*staged{}, claims: map[string]*state.Object{}, claimed: map[string]bool{},
		deletes: map[string][]Reason{}, views: map[string]*rotationView{}, generations: map[string]generationRef{}}
}

// storedFor is the stored record a desired record is made from.
func (p *Plan) storedFor(st *state.State, id string) *state.Object {
	if o, ok := p.rot.claims[id]; ok {
		return o
	}
	return st.Primary[id]
}

// generationID is the ID of a CA generation record: CertificateAuthority/<name>@next.
func generationID(caID, suffix string) string { return caID + "@" + suffix }

func retiredSuffix(gen int) string { return "g" + strconv.Itoa(gen) }

// generationCN gives every generation after the first a subject of its own
// (a client picking an issuer by name never confuses the two generations
// that share the trust files), and leaves generation 1 as it always was.
func generationCN(cn string, gen int) string {
	if gen <= 1 {
		return cn
	}
	return fmt.Sprintf("%s-g%d", cn, gen)
}

// generationOf reads a record's generation; absent or unreadable means 1.
func generationOf(o *state.Object) int {
	if o == nil {
		return 0
	}
	if n, err := strconv.Atoi(o.Annotations[AnnotationGeneration]); err == nil && n > 0 {
		return n
	}
	return 1
}

// StoredRotation is where the rotation of a CA or key pair stands in st,
// from public annotations only: the signing generation (0 when there is no
// record), the other live generation (0 when none) and the phase. It reads
// the records as planning does, for the commands that declare the next step.
func StoredRotation(st *state.State, kind ObjectKind, name string) (signing, other int, phase Phase) {
	if st == nil {
		return 0, 0, PhaseSteady
	}
	id := string(kind) + "/" + name
	o := st.Primary[id]
	signing = generationOf(o)
	if kind == KindKeyPair {
		if o != nil && o.Annotations[AnnotationRotationPhase] != "" {
			other, _ = strconv.Atoi(o.Annotations[AnnotationRotationOther])
			return signing, other, Phase(o.Annotations[AnnotationRotationPhase])
		}
		return signing, 0, PhaseSteady
	}
	if next := st.Primary[generationID(id, GenerationNext)]; next != nil {
		return signing, generationOf(next), PhaseAdd
	}
	if prev := st.Primary[generationID(id, GenerationPrevious)]; prev != nil {
		return signing, generationOf(prev), PhaseSwitch
	}
	return signing, 0, PhaseSteady
}

// sinceOf is when the phase a record is in started: its annotation, or when
// its certificate was made (a record without the annotation was edited).
func sinceOf(o *state.Object) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, o.Annotations[AnnotationRotationSince]); err == nil {
		return t.UTC(), true
	}
	return o.NotBefore, false
}

// planRotations decides every rotation before the objects are planned: it
// adds the records of a CA's other generations after the CA, sets each
// generation's subject and annotations, and says which stored record each
// desired record is made from.
func (p *Plan) planRotations(desired []*Desired, st *state.State) ([]*Desired, error) {
	p.rot = newRotationPlan()
	retired := retiredRecords(st)
	out := make([]*Desired, 0, len(desired))
	var errs topology.ErrorList
	for _, d := range desired {
		out = append(out, d)
		switch {
		case d.Kind == KindCA && d.CA.Spec.Import == nil:
			extra, err := p.planCARotation(d, st, retired[d.ID])
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, extra...)
		case d.Kind == KindKeyPair:
			if kp := p.Topology.KeyPair(d.Name); kp != nil {
				if err := p.planKeyRotation(d, kp, st); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	for _, d := range out {
		if v := p.viewOf(d, st); v != nil {
			p.rot.views[d.ID] = v
		}
	}
	return out, nil
}

// rotationError points at the declaration a rotation cannot follow.
func rotationError(d *Desired, err error) *topology.FieldError {
	field := "spec.rotation.generation"
	origin := d.Origin
	if origin.Preset != "" {
		field = "spec.rotations." + d.Name + ".generation"
	}
	return &topology.FieldError{Pos: origin.At(field), Field: field, Msg: fmt.Sprintf("%s: %v", d.ID, err)}
}

// planCARotation plans one CA's rotation and returns the records of its
// other generations (next or previous, and retired ones).
func (p *Plan) planCARotation(d *Desired, st *state.State, retired []*state.Object) ([]*Desired, *topology.FieldError) {
	spec := d.CA.Spec.Rotation
	signing := st.Primary[d.ID]
	next := st.Primary[generationID(d.ID, GenerationNext)]
	prev := st.Primary[generationID(d.ID, GenerationPrevious)]
	if spec == nil && next == nil && prev == nil && len(retired) == 0 && generationOf(signing) <= 1 {
		return nil, nil
	}
	baseCN := d.Shape.CommonName
	var extra []*Desired
	for _, o := range retired {
		extra = append(extra, p.retiredDesired(d, baseCN, o))
	}
	if signing == nil {
		// Nothing trusts this CA yet: it is made at the wanted generation,
		// without phases.
		gen := 1
		if spec != nil {
			gen = spec.Generation
		}
		p.setGeneration(d, baseCN, gen, rotationStep{Phase: PhaseSteady, Signing: gen})
		return extra, nil
	}
	r := &staged{id: d.ID, name: d.Name, kind: KindCA, spec: spec}
	p.rot.byID[d.ID] = r
	in := rotationInput{signing: generationOf(signing), phase: PhaseSteady, now: p.Now, soak: spec.SoakDuration()}
	in.dropAfter = in.soak
	var other *state.Object
	switch {
	case next != nil && prev != nil:
		return nil, rotationError(d, fmt.Errorf("the state holds both %s and %s; remove the one that was restored by hand", next.Path, prev.Path))
	case next != nil:
		other, in.other, in.phase = next, generationOf(next), PhaseAdd
	case prev != nil:
		other, in.other, in.phase = prev, generationOf(prev), PhaseSwitch
	}
	if other != nil {
		since, ok := sinceOf(other)
		if !ok {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: %s has no readable %s annotation; the soak counts from its certificate's notBefore", d.ID, other.Path, AnnotationRotationSince))
		}
		in.since = since
	}
	switch {
	case spec != nil:
		in.target = spec.Generation
	case in.phase == PhaseAdd:
		in.target = in.other // without a declaration, a rotation in flight goes on
	default:
		in.target = in.signing
	}
	if in.phase == PhaseSwitch {
		in.leavesUnderOld = leavesSignedBy(st, d.Name, other)
	}
	r.in = in
	step, err := stepRotation(in)
	if err != nil {
		return nil, rotationError(d, err)
	}
	r.step = step
	if step.Warning != "" {
		p.Warnings = append(p.Warnings, d.ID+": "+step.Warning)
	}
	r.trustBefore = sortedGens(in.signing, in.other)
	r.trustAfter = sortedGens(step.Signing, step.Other)

	p.setGeneration(d, baseCN, step.Signing, step)
	if step.Signing != in.signing {
		p.claim(d.ID, other)
	}
	type ref struct {
		gen int
		id  string
	}
	trust := []ref{{step.Signing, d.ID}}
	if step.Phase != PhaseSteady {
		r.otherRole = GenerationNext
		if step.Phase == PhaseSwitch {
			r.otherRole = GenerationPrevious
		}
		g := p.generationDesired(d, baseCN, r.otherRole, step.Other, step)
		switch {
		case step.Other == in.signing:
			p.claim(g.ID, signing)
		case other != nil && step.Other == in.other:
			p.claim(g.ID, other)
		default:
			// A generation made in this run (Add, or a new target replacing
			// one that never signed: its record is written over).
			p.rot.claims[g.ID] = nil
		}
		extra = append([]*Desired{g}, extra...)
		trust = append(trust, ref{step.Other, g.ID})
	}
	slices.SortFunc(trust, func(a, b ref) int { return cmp.Compare(a.gen, b.gen) })
	r.storedGen = map[int]*state.Object{in.signing: signing}
	if other != nil {
		r.storedGen[in.other] = other
	}
	r.genIDs = map[int]string{}
	for _, t := range trust {
		r.trustIDs = append(r.trustIDs, t.id)
		r.genIDs[t.gen] = t.id
	}
	switch {
	case step.Transition == TransitionDrop:
		r.dropped = in.other
		if spec.RetirePolicyOrDefault() == topology.RetireKeep {
			g := p.retiredDesired(d, baseCN, other)
			g.Annotations[AnnotationRetiredAt] = p.Now.Format(time.RFC3339)
			p.claim(g.ID, other)
			extra = append(extra, g)
		} else {
			p.rot.deletes[other.ID] = []Reason{{Code: ReasonRotationDrop, Detail: fmt.Sprintf("generation %d of %s leaves every trust file; spec.rotation.retire: delete", in.other, d.Name)}}
		}
	case step.Transition == TransitionRollback && in.phase == PhaseAdd:
		r.dropped = in.other
		p.rot.deletes[other.ID] = []Reason{{Code: ReasonRotationRollback, Detail: fmt.Sprintf("generation %d of %s never signed; it leaves every trust file", in.other, d.Name)}}
	case step.Transition == TransitionAdd && in.phase == PhaseAdd:
		r.dropped = in.other // replaced before it signed: its record is written over
	}
	return extra, nil
}

// claim makes the desired record id from the stored record o.
func (p *Plan) claim(id string, o *state.Object) {
	p.rot.claims[id] = o
	if o != nil && o.ID != id {
		p.rot.claimed[o.ID] = true
	}
}

// setGeneration gives the signing record its generation's subject and the
// rotation's annotations.
func (p *Plan) setGeneration(d *Desired, baseCN string, gen int, step rotationStep) {
	d.Shape.CommonName = generationCN(baseCN, gen)
	d.hash = ""
	ann := maps.Clone(d.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	if gen > 1 {
		ann[AnnotationGeneration] = strconv.Itoa(gen)
	}
	phaseAnnotations(ann, step)
	d.Annotations = ann
}

func phaseAnnotations(ann map[string]string, step rotationStep) {
	if step.Phase == PhaseAdd || step.Phase == PhaseSwitch {
		ann[AnnotationRotationPhase] = string(step.Phase)
		ann[AnnotationRotationSince] = step.Since.UTC().Format(time.RFC3339)
	}
}

// generationAnnotations are a generation record's: the CA's own, without
// the kubeadm file (export writes the signing record there), plus the
// generation and its role.
func generationAnnotations(d *Desired, role string, gen int) map[string]string {
	ann := maps.Clone(d.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	delete(ann, topology.AnnotationKubeadmFile)
	delete(ann, AnnotationRotationPhase)
	delete(ann, AnnotationRotationSince)
	ann[AnnotationGeneration] = strconv.Itoa(gen)
	ann[AnnotationRotationRole] = role
	return ann
}

// generationDesired is the record of a CA's next or previous generation.
func (p *Plan) generationDesired(d *Desired, baseCN, role string, gen int, step rotationStep) *Desired {
	g := *d
	g.hash = ""
	g.ID = generationID(d.ID, role)
	g.Name = d.Name + "@" + role
	g.Path = p.Layout.CAGeneration(d.Name, role)
	g.Copy = nil
	g.Shape.CommonName = generationCN(baseCN, gen)
	g.Annotations = generationAnnotations(d, role, gen)
	phaseAnnotations(g.Annotations, step)
	p.rot.generations[g.ID] = generationRef{ca: d.Name, role: role}
	return &g
}

// retiredDesired is the record a dropped generation's key is kept in: what
// the stored record says it is, never renewed, in no trust file.
func (p *Plan) retiredDesired(d *Desired, baseCN string, o *state.Object) *Desired {
	gen := generationOf(o)
	g := *d
	g.hash = ""
	g.ID = generationID(d.ID, retiredSuffix(gen))
	g.Name = d.Name + "@" + retiredSuffix(gen)
	g.Path = p.Layout.CARetired(d.Name, gen)
	g.Copy = nil
	g.RenewBefore = 0
	if sh, ok := storedShape(o); ok {
		g.Shape = sh
	} else {
		g.Shape.CommonName = generationCN(baseCN, gen)
	}
	g.Annotations = generationAnnotations(d, GenerationRetired, gen)
	if at := o.Annotations[AnnotationRetiredAt]; at != "" {
		g.Annotations[AnnotationRetiredAt] = at
	}
	p.rot.generations[g.ID] = generationRef{ca: d.Name, role: GenerationRetired}
	p.claim(g.ID, o)
	return &g
}

// retiredRecords are the stored retired generations of every CA, by the CA's
// ID, each list by record ID: one pass over the state for all CAs, since a
// plan of thousands of records has them on its every run.
func retiredRecords(st *state.State) map[string][]*state.Object {
	out := map[string][]*state.Object{}
	for id, o := range st.Primary {
		if ca, _, ok := strings.Cut(id, "@"); ok && o.Annotations[AnnotationRotationRole] == GenerationRetired {
			out[ca] = append(out[ca], o)
		}
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b *state.Object) int { return strings.Compare(a.ID, b.ID) })
	}
	return out
}

// leavesSignedBy counts the records issued by ca whose certificate the
// generation in old signed.
func leavesSignedBy(st *state.State, ca string, old *state.Object) int {
	if old == nil || len(old.SKI) == 0 {
		return 0
	}
	n := 0
	for _, o := range st.Primary {
		if o.Annotations[state.AnnotationIssuer] == ca && bytes.Equal(o.AKI, old.SKI) {
			n++
		}
	}
	return n
}

func sortedGens(gens ...int) []int {
	var out []int
	for _, g := range gens {
		if g > 0 && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// planKeyRotation plans a key pair's rotation. A key pair keeps every live
// generation in its one record (tls.key signs; next.key or previous.key
// beside it; verify.pub lists the public keys), since kube-apiserver reads
// one signing key and one verify file.
func (p *Plan) planKeyRotation(d *Desired, kp *topology.KeyPair, st *state.State) *topology.FieldError {
	spec := kp.Spec.Rotation
	o := st.Primary[d.ID]
	phase := Phase(cmp.Or(annotation(o, AnnotationRotationPhase), string(PhaseSteady)))
	if spec == nil && phase == PhaseSteady && generationOf(o) <= 1 {
		return nil
	}
	r := &staged{id: d.ID, name: d.Name, kind: KindKeyPair, spec: spec}
	p.rot.byID[d.ID] = r
	ann := maps.Clone(d.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	d.Annotations = ann
	if o == nil {
		gen := 1
		if spec != nil {
			gen = spec.Generation
		}
		r.step = rotationStep{Signing: gen, Phase: PhaseSteady}
		r.in = rotationInput{signing: gen, phase: PhaseSteady}
		r.trustAfter = []int{gen}
		if gen > 1 {
			ann[AnnotationGeneration] = strconv.Itoa(gen)
		}
		return nil
	}
	in := rotationInput{signing: generationOf(o), phase: phase, now: p.Now, soak: spec.SoakDuration()}
	in.dropAfter = max(in.soak, spec.TokenLifetimeDuration())
	if phase != PhaseSteady {
		in.other, _ = strconv.Atoi(o.Annotations[AnnotationRotationOther])
		since, ok := sinceOf(o)
		if !ok || in.other < 1 || (phase != PhaseAdd && phase != PhaseSwitch) {
			return rotationError(d, fmt.Errorf("%s: unreadable rotation annotations (%s=%q, %s=%q)", o.Path,
				AnnotationRotationPhase, phase, AnnotationRotationOther, o.Annotations[AnnotationRotationOther]))
		}
		in.since = since
	}
	switch {
	case spec != nil:
		in.target = spec.Generation
	case in.phase == PhaseAdd:
		in.target = in.other
	default:
		in.target = in.signing
	}
	r.in = in
	step, err := stepRotation(in)
	if err != nil {
		return rotationError(d, err)
	}
	r.step = step
	if step.Warning != "" {
		p.Warnings = append(p.Warnings, d.ID+": "+step.Warning)
	}
	r.trustBefore = sortedGens(in.signing, in.other)
	r.trustAfter = sortedGens(step.Signing, step.Other)
	switch {
	case step.Transition == TransitionDrop, step.Transition == TransitionRollback && in.phase == PhaseAdd,
		step.Transition == TransitionAdd && in.phase == PhaseAdd:
		r.dropped = in.other
	}
	if step.Phase != PhaseSteady {
		r.otherRole = GenerationNext
		if step.Phase == PhaseSwitch {
			r.otherRole = GenerationPrevious
		}
		ann[AnnotationRotationOther] = strconv.Itoa(step.Other)
	}
	if step.Signing > 1 {
		ann[AnnotationGeneration] = strconv.Itoa(step.Signing)
	}
	phaseAnnotations(ann, step)
	return nil
}

func annotation(o *state.Object, key string) string {
	if o == nil {
		return ""
	}
	return o.Annotations[key]
}

// KeyRotation is the rotation apply carries out for a key pair, nil when the
// key pair has none.
func (p *Plan) KeyRotation(id string) *KeyRotation {
	r := p.rot.byID[id]
	if r == nil || r.kind != KindKeyPair {
		return nil
	}
	return &KeyRotation{
		Transition:    r.step.Transition,
		SigningBefore: r.in.signing, OtherBefore: r.in.other,
		Signing: r.step.Signing, Other: r.step.Other, OtherRole: r.otherRole,
		Dropped: r.dropped, Retire: r.spec.RetirePolicyOrDefault(),
	}
}

// TrustIDs are the records whose certificates a CA's trust holds after the
// run, in generation order: the CA's own record, and during a rotation the
// other live generation's.
func (p *Plan) TrustIDs(name string) []string {
	id := string(KindCA) + "/" + name
	if r := p.rot.byID[id]; r != nil && len(r.trustIDs) > 0 {
		return r.trustIDs
	}
	return []string{id}
}

// RootOf is the CA at the top of an object's chain: the trust its ca.crt
// holds. For a CA generation record it is its CA's root.
func (p *Plan) RootOf(d *Desired) string {
	name := d.Shape.Issuer
	if d.Kind == KindCA {
		name = d.CA.Metadata.Name
	}
	for range len(p.Topology.CAs) + 1 {
		ca := p.Topology.CA(name)
		if ca == nil || ca.Spec.Issuer == "" || ca.Spec.Import != nil {
			return name
		}
		name = ca.Spec.Issuer
	}
	return name
}

// GenerationRole is the role of a CA generation record (next, previous,
// retired), empty for every other object.
func (p *Plan) GenerationRole(id string) string { return p.rot.generations[id].role }

// TrustDeps are the records an object's ca.crt is made of (its root's live
// generations) that the run signs anew, which apply must finish first; the
// others' certificates are known from the state. A root's generation
// records do not wait for its signing record, which waits for them.
func (p *Plan) TrustDeps(d *Desired) []string {
	if d.Kind == KindKeyPair || d.Kind == KindKubeconfig || p.GenerationRole(d.ID) == GenerationRetired {
		return nil
	}
	root := p.RootOf(d)
	_, ownGeneration := p.rot.generations[d.ID]
	var out []string
	for _, id := range p.TrustIDs(root) {
		a := p.byID[id]
		switch {
		case id == d.ID || a == nil || !a.NewCert():
		case ownGeneration && id == string(KindCA)+"/"+root:
		default:
			out = append(out, id)
		}
	}
	return out
}

// rotationStatus is what the plan reports on a rotating object's action.
func (r *staged) status() *RotationStatus {
	s := &RotationStatus{Transition: r.step.Transition, Phase: r.step.Phase, Signing: r.step.Signing, Trusted: r.trustAfter, Next: r.step.Next}
	if r.step.Phase != PhaseSteady && !r.step.Since.IsZero() {
		since := r.step.Since
		s.Since = &since
	}
	if !r.step.NextAt.IsZero() {
		at := r.step.NextAt
		s.NextAt = &at
	}
	return s
}

// notes say in words where the rotation stands, what this run does and
// what the next run does, from when.
func (p *Plan) rotationNotes(r *staged) []string {
	st := r.step
	trust := "every trust file"
	if r.kind == KindKeyPair {
		trust = "the verify list (" + KeyVerifyList + ", " + KeyJWKS + ")"
	}
	var now string
	switch st.Transition {
	case TransitionAdd:
		now = fmt.Sprintf("this run adds generation %d next to generation %d in %s; generation %d keeps signing", st.Other, st.Signing, trust, st.Signing)
		if r.dropped > 0 {
			now += fmt.Sprintf("; generation %d, which never signed, leaves", r.dropped)
		}
	case TransitionSwitch:
		now = fmt.Sprintf("this run switches signing to generation %d%s; generation %d stays in %s", st.Signing, p.below(r), st.Other, trust)
	case TransitionDrop:
		now = fmt.Sprintf("this run drops generation %d from %s%s", r.dropped, trust, p.retireText(r))
	case TransitionRollback:
		if st.Phase == PhaseSteady {
			now = fmt.Sprintf("this run rolls back: generation %d, which never signed, leaves %s", r.dropped, trust)
		} else {
			now = fmt.Sprintf("this run rolls back: generation %d signs again%s; generation %d stays in %s until Drop", st.Signing, p.below(r), st.Other, trust)
		}
	default:
		switch st.Phase {
		case PhaseSteady:
			now = fmt.Sprintf("generation %d signs and is the only one in %s", st.Signing, trust)
		case PhaseAdd:
			now = fmt.Sprintf("phase add since %s: generations %d and %d are in %s, %d signs", st.Since.Format(time.RFC3339), r.in.signing, r.in.other, trust, st.Signing)
		case PhaseSwitch:
			now = fmt.Sprintf("phase switch since %s: generation %d signs, %d is still in %s", st.Since.Format(time.RFC3339), st.Signing, st.Other, trust)
		}
	}
	note := "rotation: " + now
	var next string
	switch st.Phase {
	case PhaseAdd:
		next = fmt.Sprintf("switch: generation %d signs%s", st.Other, p.below(r))
	case PhaseSwitch:
		next = fmt.Sprintf("drop: generation %d leaves %s%s", st.Other, trust, p.retireText(r))
		if r.in.leavesUnderOld > 0 && st.Transition == TransitionNone {
			next += fmt.Sprintf(", once the %d certificate(s) it still signs are reissued", r.in.leavesUnderOld)
		}
	}
	switch {
	case next == "":
	case st.NextAt.IsZero():
		note += "; next: " + next
	default:
		note += fmt.Sprintf("; next, from %s (the first run then): %s", st.NextAt.Format(time.RFC3339), next)
	}
	return []string{note}
}

func (p *Plan) retireText(r *staged) string {
	if r.kind == KindKeyPair {
		if r.spec.RetirePolicyOrDefault() == topology.RetireKeep {
			return ", its key kept as retired.key"
		}
		return ", its key deleted"
	}
	gen := r.dropped
	if gen == 0 {
		gen = r.step.Other
	}
	if r.spec.RetirePolicyOrDefault() == topology.RetireKeep {
		return ", its key kept in " + p.Layout.CARetired(r.name, gen)
	}
	return ", its key deleted"
}

// below names what a switch reissues.
func (p *Plan) below(r *staged) string {
	if r.kind == KindKeyPair {
		return " every token from then on"
	}
	return fmt.Sprintf(" and the %d object(s) it issues are reissued", len(p.desiredIssuedBy(r.name)))
}

func (p *Plan) desiredIssuedBy(ca string) []string {
	var out []string
	t := p.Topology
	for _, c := range t.CAs {
		if c.Spec.Issuer == ca {
			out = append(out, c.Metadata.Name)
		}
	}
	for _, c := range t.Certificates {
		if c.Spec.Issuer == ca {
			out = append(out, c.Metadata.Name)
		}
	}
	for _, k := range t.Kubeconfigs {
		if k.Spec.Issuer == ca {
			out = append(out, k.Metadata.Name)
		}
	}
	return out
}

// planTimeTrust is what the plan knows of a CA's trusted certificates after
// the run: the stored ones it keeps, and the names of those it signs anew.
func (p *Plan) planTimeTrust(name string) ([]*x509.Certificate, []string) {
	var certs []*x509.Certificate
	var pending []string
	for _, id := range p.TrustIDs(name) {
		a := p.byID[id]
		switch {
		case a == nil || a.Action == ActionDelete:
		case a.Cert != nil:
			certs = append(certs, a.Cert)
		case a.NewCert():
			pending = append(pending, a.Name)
		}
	}
	return certs, pending
}

// trustDiff is what enters and leaves a CA's trust in this run, by certificate.
func (p *Plan) rotationTrustDiff(r *staged) *TrustDiff {
	d := &TrustDiff{}
	for _, g := range without(r.trustAfter, r.trustBefore) {
		if a := p.byID[r.genIDs[g]]; a != nil && a.Cert != nil {
			d.Enter = append(d.Enter, certRef(a.Cert))
		} else {
			d.Enter = append(d.Enter, CertRef{Subject: fmt.Sprintf("CA %s generation %d", r.name, g), Pending: "new certificate, signed by this run"})
		}
	}
	for _, g := range without(r.trustBefore, r.trustAfter) {
		if c := r.storedGen[g].Cert(); c != nil {
			d.Leave = append(d.Leave, certRef(c))
		}
	}
	return d
}

// describeRotationTrust marks the records whose trust a rotation changes
// (a certificate's ca.crt, a kubeconfig's CA data, a CA's delivered copy) as
// trust changes, which a plan shows first.
func (p *Plan) describeRotationTrust() {
	diffs := map[string]*TrustDiff{}
	for _, f := range p.Files {
		if (f.Kind != FileRecord && f.Kind != FileCACopy) || f.Action == FileDelete || f.Trust != nil {
			continue
		}
		a := p.byID[f.Owner]
		if a == nil || a.Desired == nil || p.GenerationRole(a.ID) == GenerationRetired {
			continue
		}
		ca := ""
		switch a.Kind {
		case KindCert, KindCA:
			ca = p.RootOf(a.Desired)
		case KindKubeconfig:
			ca = a.Desired.Kubeconfig.Spec.Target.CA
		}
		r := p.rot.byID[string(KindCA)+"/"+ca]
		if r == nil || !r.trustChanged() {
			continue
		}
		if diffs[ca] == nil {
			diffs[ca] = p.rotationTrustDiff(r)
		}
		f.Trust = diffs[ca]
	}
}

// revocationNotes date the end of a deleted certificate whose issuer is
// rotating away from the generation that signed it: Kubernetes checks no
// revocation list, so a copy works until that generation leaves the trust
// files at Drop.
func (p *Plan) revocationNotes() {
	for _, a := range p.Objects {
		if a.Action != ActionDelete || a.Stored == nil || (a.Kind != KindKubeconfig && a.Kind != KindCert) {
			continue
		}
		ca := a.Stored.Annotations[state.AnnotationIssuer]
		r := p.rot.byID[string(KindCA)+"/"+ca]
		if r == nil || r.step.Phase == PhaseSteady {
			continue
		}
		leaving, at := r.step.Other, r.step.NextAt
		if r.step.Phase == PhaseAdd {
			leaving, at = r.step.Signing, r.step.NextAt.Add(r.in.dropAfter)
		}
		old := r.storedGen[leaving]
		if old == nil || !bytes.Equal(old.SKI, a.Stored.AKI) {
			continue
		}
		note := fmt.Sprintf("revoked: %s generation %d, which signed it, leaves every trust file at Drop, from %s at the earliest; until then a copy still authenticates (without its bindings)",
			ca, leaving, at.UTC().Format(time.RFC3339))
		if c := p.Topology.CA(ca); c != nil && c.Spec.Issuer != "" {
			note += fmt.Sprintf("; %s is an intermediate: a verifier that trusts %s rather than %s itself accepts the certificate until it expires", ca, c.Spec.Issuer, ca)
		}
		a.Notes = append(a.Notes, note)
	}
}
