package plan

import (
	"cmp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gitca-dev/gitca/state"
)

func TestStoredRotation(t *testing.T) {
	rec := func(id string, ann map[string]string) *state.Object { return &state.Object{ID: id, Annotations: ann} }
	gen := func(n string) map[string]string { return map[string]string{AnnotationGeneration: n} }
	for _, tc := range []struct {
		name           string
		kind           ObjectKind
		records        []*state.Object
		signing, other int
		phase          Phase
	}{
		{name: "no record", kind: KindCA},
		{name: "a first generation without the annotation", kind: KindCA, records: []*state.Object{rec("CertificateAuthority/ca", nil)}, signing: 1},
		{name: "an unreadable or non-positive generation reads as 1, as planning reads it", kind: KindCA,
			records: []*state.Object{rec("CertificateAuthority/ca", gen("0"))}, signing: 1},
		{name: "Add: a next generation waits", kind: KindCA, phase: PhaseAdd, signing: 1, other: 2,
			records: []*state.Object{rec("CertificateAuthority/ca", nil), rec("CertificateAuthority/ca@next", gen("2"))}},
		{name: "Switch: the previous generation is still trusted", kind: KindCA, phase: PhaseSwitch, signing: 2, other: 1,
			records: []*state.Object{rec("CertificateAuthority/ca", gen("2")), rec("CertificateAuthority/ca@previous", gen("1"))}},
		{name: "a key pair keeps its phase on its own record", kind: KindKeyPair, phase: PhaseSwitch, signing: 3, other: 2,
			records: []*state.Object{rec("KeyPair/ca", map[string]string{AnnotationGeneration: "3", AnnotationRotationPhase: string(PhaseSwitch), AnnotationRotationOther: "2"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{Primary: map[string]*state.Object{}}
			for _, o := range tc.records {
				st.Primary[o.ID] = o
			}
			signing, other, phase := StoredRotation(st, tc.kind, "ca")
			assert.Equal(t, []any{tc.signing, tc.other, cmp.Or(tc.phase, PhaseSteady)}, []any{signing, other, phase})
		})
	}
	signing, other, phase := StoredRotation(nil, KindCA, "ca")
	assert.Equal(t, []any{0, 0, PhaseSteady}, []any{signing, other, phase})
}
