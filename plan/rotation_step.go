package plan

import (
	"fmt"
	"time"
)

// Phase is where a staged rotation stands between two runs.
type Phase string

const (
	// PhaseSteady: one generation signs and is trusted.
	PhaseSteady Phase = "steady"
	// PhaseAdd: a new generation is trusted next to the old one, which still signs.
	PhaseAdd Phase = "add"
	// PhaseSwitch: the new generation signs; the old one is still trusted.
	PhaseSwitch Phase = "switch"
)

// Transition is what one run does to a rotation.
type Transition string

const (
	TransitionNone Transition = ""
	// TransitionAdd makes a new generation and adds it to every trust file.
	TransitionAdd Transition = "add"
	// TransitionSwitch lets the new generation sign; every certificate below is reissued.
	TransitionSwitch Transition = "switch"
	// TransitionDrop takes the old generation out of every trust file and retires its key.
	TransitionDrop Transition = "drop"
	// TransitionRollback goes back: a new generation that never signed leaves
	// (from Add), or the old generation signs again (from Switch).
	TransitionRollback Transition = "rollback"
)

// rotationInput is what decides a rotation's next step: the generations in
// the state, the phase they are in and since when, what the topology wants,
// the gates and the clock.
type rotationInput struct {
	signing int   // the generation that signs now
	other   int   // the generation trusted beside it, 0 when steady
	phase   Phase // PhaseSteady exactly when other is 0
	since   time.Time
	target  int // the topology's spec.rotation.generation
	soak    time.Duration
	// dropAfter is how long after Switch the old generation stays trusted:
	// the soak for a CA, and at least the longest token lifetime for a key pair.
	dropAfter time.Duration
	now       time.Time
	// leavesUnderOld counts the certificates in the state still signed by
	// the old generation; Drop waits for none.
	leavesUnderOld int
}

// rotationStep is a run's decision: the transition, the generations and
// phase it leaves behind, and what comes next and when, for the plan to say.
type rotationStep struct {
	Transition Transition
	Signing    int
	Other      int
	Phase      Phase
	Since      time.Time
	// Next is what the next phase does; NextAt is when it is due (zero when
	// it waits for something other than time, or nothing is next).
	Next   string
	NextAt time.Time
	// Warning is for a target the rotation cannot take yet.
	Warning string
}

// stepRotation is the rotation state machine. It is pure: the same state,
// topology and clock always give the same step, so a run in the middle of a
// soak changes nothing, and the plan can say exactly what the next run does.
//
//	steady --(target > signing)--> add --(soak)--> switch --(soak, no old leaf)--> steady
//	add --(target = signing)--> steady: rollback, the new generation never signed
//	switch --(target = old)--> switch back: the old generation signs again, the new one is dropped after a soak
func stepRotation(in rotationInput) (rotationStep, error) {
	st := rotationStep{Signing: in.signing, Other: in.other, Phase: in.phase, Since: in.since}
	tooLow := func() error {
		return fmt.Errorf("spec.rotation.generation %d is older than generation %d, which signs: generation %d is gone (a rollback is possible until Drop); rotate forward with generation %d",
			in.target, in.signing, in.target, max(in.signing, in.other)+1)
	}
	switch in.phase {
	case PhaseSteady:
		switch {
		case in.target == in.signing:
			return st, nil
		case in.target < in.signing:
			return st, tooLow()
		}
		return in.add(in.target), nil
	case PhaseAdd:
		switch {
		case in.target == in.other:
			if due := in.since.Add(in.soak); in.now.Before(due) {
				st.Next, st.NextAt = fmt.Sprintf("switch: generation %d signs", in.other), due
				return st, nil
			}
			return in.switchTo(in.other, in.signing, TransitionSwitch), nil
		case in.target == in.signing:
			// Nothing was signed by the new generation: it can leave every
			// trust file at once.
			return rotationStep{Transition: TransitionRollback, Signing: in.signing, Phase: PhaseSteady}, nil
		case in.target < in.signing:
			return st, tooLow()
		}
		// Another generation is wanted before this one signed anything: it
		// takes the new generation's place and its soak starts again.
		st = in.add(in.target)
		return st, nil
	case PhaseSwitch:
		switch {
		case in.target == in.other:
			// The old generation is still trusted everywhere: it can sign again.
			st = in.switchTo(in.other, in.signing, TransitionRollback)
			return st, nil
		case in.target < in.signing:
			return st, tooLow()
		case in.target != in.signing:
			st.Warning = fmt.Sprintf("generation %d starts after generation %d's rotation is complete (Drop)", in.target, in.signing)
		}
		due := in.since.Add(in.dropAfter)
		switch {
		case in.now.Before(due):
			st.Next, st.NextAt = fmt.Sprintf("drop: generation %d is no longer trusted", in.other), due
		case in.leavesUnderOld > 0:
			st.Next = fmt.Sprintf("drop, once the %d certificate(s) still signed by generation %d are reissued", in.leavesUnderOld, in.other)
		default:
			return rotationStep{Transition: TransitionDrop, Signing: in.signing, Phase: PhaseSteady, Since: in.now}, nil
		}
		return st, nil
	}
	return st, fmt.Errorf("unknown rotation phase %q", in.phase)
}

func (in rotationInput) add(gen int) rotationStep {
	return rotationStep{Transition: TransitionAdd, Signing: in.signing, Other: gen, Phase: PhaseAdd, Since: in.now,
		Next:   fmt.Sprintf("switch: generation %d signs", gen),
		NextAt: in.now.Add(in.soak)}
}

func (in rotationInput) switchTo(signing, old int, tr Transition) rotationStep {
	return rotationStep{Transition: tr, Signing: signing, Other: old, Phase: PhaseSwitch, Since: in.now,
		Next:   fmt.Sprintf("drop: generation %d is no longer trusted", old),
		NextAt: in.now.Add(in.dropAfter)}
}
