package plan

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStepRotation walks the state machine's gates: each phase stays until
// its gate opens, then moves exactly one step; a rollback is a lower target.
func TestStepRotation(t *testing.T) {
	since := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	soak := 24 * time.Hour
	in := func(signing, other int, phase Phase, target int, now time.Time) rotationInput {
		return rotationInput{signing: signing, other: other, phase: phase, since: since, target: target,
			soak: soak, dropAfter: 2 * soak, now: now}
	}
	for _, c := range []struct {
		name string
		in   rotationInput
		want rotationStep
		err  string
	}{
		{name: "steady, nothing wanted", in: in(1, 0, PhaseSteady, 1, since),
			want: rotationStep{Signing: 1, Phase: PhaseSteady, Since: since}},
		{name: "steady, a new generation: add", in: in(1, 0, PhaseSteady, 2, since.Add(time.Hour)),
			want: rotationStep{Transition: TransitionAdd, Signing: 1, Other: 2, Phase: PhaseAdd, Since: since.Add(time.Hour),
				Next: "switch: generation 2 signs", NextAt: since.Add(time.Hour + soak)}},
		{name: "steady, generations may skip", in: in(2, 0, PhaseSteady, 5, since),
			want: rotationStep{Transition: TransitionAdd, Signing: 2, Other: 5, Phase: PhaseAdd, Since: since,
				Next: "switch: generation 5 signs", NextAt: since.Add(soak)}},
		{name: "steady, an older generation is gone", in: in(2, 0, PhaseSteady, 1, since),
			err: "generation 1 is older than generation 2, which signs: generation 1 is gone (a rollback is possible until Drop); rotate forward with generation 3"},
		{name: "add, soak not passed: stays", in: in(1, 2, PhaseAdd, 2, since.Add(soak-time.Second)),
			want: rotationStep{Signing: 1, Other: 2, Phase: PhaseAdd, Since: since, Next: "switch: generation 2 signs", NextAt: since.Add(soak)}},
		{name: "add, soak passed: switch", in: in(1, 2, PhaseAdd, 2, since.Add(soak)),
			want: rotationStep{Transition: TransitionSwitch, Signing: 2, Other: 1, Phase: PhaseSwitch, Since: since.Add(soak),
				Next: "drop: generation 1 is no longer trusted", NextAt: since.Add(soak + 2*soak)}},
		{name: "add, rollback: the new generation leaves at once", in: in(1, 2, PhaseAdd, 1, since.Add(time.Minute)),
			want: rotationStep{Transition: TransitionRollback, Signing: 1, Phase: PhaseSteady}},
		{name: "add, another generation replaces one that never signed", in: in(1, 2, PhaseAdd, 3, since.Add(time.Hour)),
			want: rotationStep{Transition: TransitionAdd, Signing: 1, Other: 3, Phase: PhaseAdd, Since: since.Add(time.Hour),
				Next: "switch: generation 3 signs", NextAt: since.Add(time.Hour + soak)}},
		{name: "add, below the signing generation", in: in(2, 3, PhaseAdd, 1, since), err: "generation 1 is older than generation 2"},
		{name: "switch, drop gate not passed: stays", in: in(2, 1, PhaseSwitch, 2, since.Add(2*soak-time.Second)),
			want: rotationStep{Signing: 2, Other: 1, Phase: PhaseSwitch, Since: since, Next: "drop: generation 1 is no longer trusted", NextAt: since.Add(2 * soak)}},
		{name: "switch, gate passed: drop", in: in(2, 1, PhaseSwitch, 2, since.Add(2*soak)),
			want: rotationStep{Transition: TransitionDrop, Signing: 2, Phase: PhaseSteady, Since: since.Add(2 * soak)}},
		{name: "switch, gate passed but a leaf of the old generation is left: stays",
			in: func() rotationInput { i := in(2, 1, PhaseSwitch, 2, since.Add(3*soak)); i.leavesUnderOld = 2; return i }(),
			want: rotationStep{Signing: 2, Other: 1, Phase: PhaseSwitch, Since: since,
				Next: "drop, once the 2 certificate(s) still signed by generation 1 are reissued"}},
		{name: "switch, rollback: the old generation signs again, the new one is dropped later", in: in(2, 1, PhaseSwitch, 1, since.Add(time.Hour)),
			want: rotationStep{Transition: TransitionRollback, Signing: 1, Other: 2, Phase: PhaseSwitch, Since: since.Add(time.Hour),
				Next: "drop: generation 2 is no longer trusted", NextAt: since.Add(time.Hour + 2*soak)}},
		{name: "switch, a further generation waits for Drop", in: in(2, 1, PhaseSwitch, 3, since.Add(time.Hour)),
			want: rotationStep{Signing: 2, Other: 1, Phase: PhaseSwitch, Since: since, Next: "drop: generation 1 is no longer trusted",
				NextAt: since.Add(2 * soak), Warning: "generation 3 starts after generation 2's rotation is complete (Drop)"}},
		{name: "switch, an older generation than both", in: in(3, 2, PhaseSwitch, 1, since), err: "generation 1 is older than generation 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := stepRotation(c.in)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

// TestStepRotationIsIdempotentMidSoak: the state a step leaves, stepped
// again before its gate, stays where it is: a no-op run changes nothing.
func TestStepRotationIsIdempotentMidSoak(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	in := rotationInput{signing: 1, phase: PhaseSteady, target: 2, soak: time.Hour, dropAfter: time.Hour, now: t0}
	for _, want := range []Transition{TransitionAdd, TransitionNone, TransitionSwitch, TransitionNone, TransitionDrop, TransitionNone} {
		st, err := stepRotation(in)
		require.NoError(t, err)
		require.Equal(t, want, st.Transition, "at %s", in.now)
		in.signing, in.other, in.phase, in.since = st.Signing, st.Other, st.Phase, st.Since
		in.now = in.now.Add(40 * time.Minute)
	}
	assert.Equal(t, PhaseSteady, in.phase)
	assert.Equal(t, 2, in.signing)
}
