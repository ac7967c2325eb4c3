package plan

import "strconv"

// Where a CA's other generations live. '@' cannot appear in an object name,
// so these paths never meet another CA's record.

// CAGeneration is the record of a CA's next or previous generation: the
// signing generation is always CARecord, so everything that signs or
// exports reads one place whatever the phase.
func (l Layout) CAGeneration(name, role string) string {
	return caDir + "/" + name + "@" + role + ".yaml"
}

// CARetired is the record of a dropped generation's key (spec.rotation.retire: keep).
func (l Layout) CARetired(name string, gen int) string {
	return caDir + "/retired/" + name + "@g" + strconv.Itoa(gen) + ".yaml"
}
