package plan

import (
	"encoding/json"
	"maps"
	"slices"
)

// AnnotationMembers records, on a merged kubeconfig, what each member looked
// like when it was merged (a digest of the member's content and target), so
// a member that changed since is seen without decrypting anything.
const AnnotationMembers = "gitca.dev/members"

// mergedPolicies apply to a merged kubeconfig: it has no certificate of its
// own to expire; it follows its members.
func mergedPolicies(p *Plan) []policy {
	return []policy{
		{ReasonMissing, ActionCreate, missing},
		{ReasonDamaged, ActionRekey, damaged},
		{ReasonSpecDrift, ActionUpdateChain, specDrift},
		{ReasonMemberChanged, ActionUpdateChain, func(in policyInput) []Reason { return membersChanged(p, in) }},
		{ReasonMoved, ActionReencrypt, moved},
		{ReasonRecipients, ActionReencrypt, recipientsChanged},
	}
}

// membersChanged: a member that gets a new certificate, a new chain or a new
// target rewrites the merged kubeconfig; so does a kept member whose record
// no longer matches what was merged (edited, or restored from elsewhere).
func membersChanged(p *Plan, in policyInput) []Reason {
	if in.o == nil {
		return nil
	}
	var recorded map[string]string
	_ = json.Unmarshal([]byte(in.o.Annotations[AnnotationMembers]), &recorded)
	var out []Reason
	for _, m := range in.d.Members {
		a := p.Action(m.ID)
		switch {
		case a == nil:
		case a.Action != ActionKeep:
			out = append(out, Reason{Code: ReasonMemberChanged, Detail: m.ID + " " + string(a.Action)})
		case a.Stored == nil || recorded[m.ID] != memberDigest(a.Stored.Annotations):
			out = append(out, Reason{Code: ReasonMemberChanged, Detail: m.ID + " differs from what was merged"})
		}
	}
	return out
}

// memberDigest is what a merged kubeconfig depends on of a member: its
// certificate and chain (the content hash) and its target.
func memberDigest(ann map[string]string) string {
	return ContentHash([]byte(ann[AnnotationContentHash]), []byte(ann[AnnotationTarget]))
}

// MergedAnnotation is the AnnotationMembers value of a merged kubeconfig
// made from members whose records carry the given annotations, by member ID.
func MergedAnnotation(members map[string]map[string]string) string {
	digests := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(members)) {
		digests[id] = memberDigest(members[id])
	}
	b, _ := json.Marshal(digests)
	return string(b)
}
