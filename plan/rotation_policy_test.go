package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/state"
)

// TestRotationPolicies: each rotation reason is raised by its one function,
// for exactly the records the transition concerns.
func TestRotationPolicies(t *testing.T) {
	o := &state.Object{ID: "Certificate/web"}
	d := leafDesired(baseShape)
	add := &trustChange{ca: "root", transition: TransitionAdd, enter: []int{2}}
	drop := &trustChange{ca: "root", transition: TransitionDrop, leave: []int{1}}
	abort := &trustChange{ca: "root", transition: TransitionRollback, leave: []int{2}}
	in := func(o *state.Object, v *rotationView) policyInput { return policyInput{d: d, o: o, now: t0, rot: v} }
	tests := []struct {
		name string
		fn   func(policyInput) []Reason
		in   policyInput
		want []string
	}{
		{"new generation/made", rotationNewGeneration, in(nil, &rotationView{own: TransitionAdd, fresh: true, role: GenerationNext, ownDetail: "new generation 2"}),
			[]string{"rotation-add:new generation 2"}},
		{"new generation/stored already", rotationNewGeneration, in(o, &rotationView{own: TransitionAdd, fresh: true}), nil},
		{"new generation/no rotation", rotationNewGeneration, in(nil, nil), nil},

		{"add/signing record", rotationAdd, in(o, &rotationView{own: TransitionAdd, ownDetail: "generation 2 enters"}), []string{"rotation-add:generation 2 enters"}},
		{"add/fresh record is rotationNewGeneration's", rotationAdd, in(o, &rotationView{own: TransitionAdd, fresh: true}), nil},
		{"add/trust grows", rotationAdd, in(o, &rotationView{trust: add}), []string{"rotation-add:trusts: + root generation 2"}},
		{"add/trust shrinks is not add", rotationAdd, in(o, &rotationView{trust: drop}), nil},
		{"add/nothing stored", rotationAdd, in(nil, &rotationView{trust: add}), nil},

		{"switch/own record", rotationSwitch, in(o, &rotationView{own: TransitionSwitch, ownDetail: "generation 2 signs from now"}),
			[]string{"rotation-switch:generation 2 signs from now"}},
		{"switch/other transitions", rotationSwitch, in(o, &rotationView{own: TransitionAdd}), nil},

		{"signer switch/reissued", rotationSignerSwitch, in(o, &rotationView{signer: &signerChange{ca: "root", from: 1, to: 2}}),
			[]string{"rotation-switch:root generation 2 signs from now (was 1)"}},
		{"signer switch/back", rotationSignerSwitch, in(o, &rotationView{signer: &signerChange{ca: "root", from: 2, to: 1, rollback: true}}),
			[]string{"rotation-switch:root generation 1 signs from now (was 2), a rollback"}},
		{"signer switch/none", rotationSignerSwitch, in(o, &rotationView{trust: add}), nil},

		{"drop/own record", rotationDrop, in(o, &rotationView{own: TransitionDrop, ownDetail: "generation 1 leaves"}), []string{"rotation-drop:generation 1 leaves"}},
		{"drop/trust shrinks", rotationDrop, in(o, &rotationView{trust: drop}), []string{"rotation-drop:trusts: - root generation 1"}},
		{"drop/rollback is not drop", rotationDrop, in(o, &rotationView{trust: abort}), nil},

		{"rollback/own record", rotationRollback, in(o, &rotationView{own: TransitionRollback, ownDetail: "generation 1 signs again"}),
			[]string{"rotation-rollback:generation 1 signs again"}},
		{"rollback/trust shrinks", rotationRollback, in(o, &rotationView{trust: abort}), []string{"rotation-rollback:trusts: - root generation 2"}},
		{"rollback/none", rotationRollback, in(o, &rotationView{trust: add}), nil},

		{"verify list/missing", rotationVerifyList, in(o, &rotationView{verifyList: true}),
			[]string{"rotation-verify-list:spec.rotation is declared: the record gains verify.pub and jwks.json"}},
		{"verify list/a transition writes it anyway", rotationVerifyList, in(o, &rotationView{verifyList: true, own: TransitionAdd}), nil},
		{"verify list/present", rotationVerifyList, in(o, &rotationView{}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, codesOrNil(tc.fn(tc.in)))
		})
	}
}

func codesOrNil(rs []Reason) []string {
	if len(rs) == 0 {
		return nil
	}
	return codes(rs)
}

// TestRotationPoliciesPickTheirAction: a trust change rewrites a record
// without signing; a switched issuer reissues; a new generation is created.
func TestRotationPoliciesPickTheirAction(t *testing.T) {
	o := stored(baseShape, testCert(t, t0, t0.AddDate(1, 0, 0), []byte{1}, []byte{9}))
	o.Annotations[state.AnnotationSpecHash] = baseShape.Hash()
	d := leafDesired(baseShape)
	for _, c := range []struct {
		name  string
		chain []policy
		in    policyInput
		want  ActionKind
	}{
		{"trust grows", certPolicies, policyInput{d: d, o: o, rot: &rotationView{trust: &trustChange{ca: "ca", transition: TransitionAdd, enter: []int{2}}}}, ActionUpdateChain},
		{"issuer switched", certPolicies, policyInput{d: d, o: o, rot: &rotationView{signer: &signerChange{ca: "ca", from: 1, to: 2}}}, ActionReissue},
		{"next generation", generationPolicies, policyInput{d: d, rot: &rotationView{own: TransitionAdd, fresh: true}}, ActionCreate},
		{"retired generation never renews", retiredPolicies, policyInput{d: d, o: o, now: t0.AddDate(30, 0, 0)}, ActionKeep},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind, _, reasons := evaluate(c.chain, c.in)
			require.Equal(t, c.want, kind, "%v", reasons)
		})
	}
}
