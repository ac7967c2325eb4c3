package plan

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
)

// FileAction is what a run does to one file.
type FileAction string

const (
	FileCreate FileAction = "create"
	FileUpdate FileAction = "update"
	FileDelete FileAction = "delete"
)

// File is the planned change of one path of the state tree.
type File struct {
	Path   string     `json:"path"`
	Kind   FileKind   `json:"kind"`
	Action FileAction `json:"action"`
	// Owner is what the file belongs to: an object ID, "Cluster/<name>" for
	// an overlay's own files, "Config" for .sops.yaml, "State" for the index.
	Owner   string   `json:"owner,omitempty"`
	Reasons []Reason `json:"reasons"`
	// Trust lists the CA certificates that enter or leave a trust bundle.
	Trust *TrustDiff `json:"trust,omitempty"`
	// RBAC is a ClusterRoleBinding's grant before and after.
	RBAC *RBACDiff `json:"rbac,omitempty"`
	// Recipients are the age recipients that gain or lose access.
	Recipients *RecipientDiff `json:"recipients,omitempty"`
}

// TrustChange reports whether the file decides whom something trusts or
// what someone may do: what a reviewer must not miss.
func (f *File) TrustChange() bool {
	return f.Trust != nil || f.RBAC != nil || f.Recipients != nil
}

// CertRef names a CA certificate in a trust change.
type CertRef struct {
	Subject  string     `json:"subject"`
	SHA256   string     `json:"fingerprint,omitempty"` // sha256:<hex> of the DER
	NotAfter *time.Time `json:"notAfter,omitempty"`
	// Pending is set for a certificate this run signs: its fingerprint is
	// known only once it is signed.
	Pending string `json:"pending,omitempty"`
}

func (c CertRef) String() string {
	if c.Pending != "" {
		return c.Subject + " (" + c.Pending + ")"
	}
	s := c.Subject + " " + c.SHA256
	if c.NotAfter != nil {
		s += " until " + c.NotAfter.UTC().Format("2006-01-02")
	}
	return s
}

func certRef(c *x509.Certificate) CertRef {
	na := c.NotAfter.UTC()
	return CertRef{Subject: c.Subject.String(), SHA256: sign.Fingerprint(c), NotAfter: &na}
}

// TrustDiff is what enters and leaves a set of trusted CA certificates.
type TrustDiff struct {
	Enter []CertRef `json:"enter,omitempty"`
	Leave []CertRef `json:"leave,omitempty"`
}

func (d *TrustDiff) String() string {
	var parts []string
	for _, c := range d.Enter {
		parts = append(parts, "+ "+c.String())
	}
	for _, c := range d.Leave {
		parts = append(parts, "- "+c.String())
	}
	if len(parts) == 0 {
		return "same certificates"
	}
	return strings.Join(parts, "; ")
}

// trustDiff compares two certificate sets by fingerprint; pending CAs enter
// with their new certificate still unsigned.
func trustDiff(before, after []*x509.Certificate, pending []string) *TrustDiff {
	d := &TrustDiff{}
	fps := func(cs []*x509.Certificate) map[string]bool {
		m := map[string]bool{}
		for _, c := range cs {
			m[sign.Fingerprint(c)] = true
		}
		return m
	}
	was, is := fps(before), fps(after)
	for _, c := range after {
		if !was[sign.Fingerprint(c)] {
			d.Enter = append(d.Enter, certRef(c))
		}
	}
	for _, ca := range pending {
		d.Enter = append(d.Enter, CertRef{Subject: "CA " + ca, Pending: "new certificate, signed by this run"})
	}
	for _, c := range before {
		if !is[sign.Fingerprint(c)] {
			d.Leave = append(d.Leave, certRef(c))
		}
	}
	return d
}

// RBACDiff is a ClusterRoleBinding's grant before and after ("" when absent).
type RBACDiff struct {
	Binding        string `json:"binding"`
	RoleBefore     string `json:"roleBefore,omitempty"`
	RoleAfter      string `json:"roleAfter,omitempty"`
	SubjectsBefore string `json:"subjectsBefore,omitempty"`
	SubjectsAfter  string `json:"subjectsAfter,omitempty"`
}

func (d *RBACDiff) String() string {
	grant := func(role, subj string) string {
		if role == "" {
			return "nothing"
		}
		return "ClusterRole " + role + " to " + subj
	}
	switch {
	case d.RoleBefore == "":
		return "grants " + grant(d.RoleAfter, d.SubjectsAfter)
	case d.RoleAfter == "":
		return "revokes " + grant(d.RoleBefore, d.SubjectsBefore)
	}
	return fmt.Sprintf("%s: %s → %s", d.Binding, grant(d.RoleBefore, d.SubjectsBefore), grant(d.RoleAfter, d.SubjectsAfter))
}

// rbacOf reads a binding's role and subjects from its YAML.
func rbacOf(b []byte) (name, role, subjects string) {
	var crb clusterRoleBinding
	if yaml.Unmarshal(b, &crb) != nil {
		return "", "", ""
	}
	var s []string
	for _, sub := range crb.Subjects {
		s = append(s, sub.Kind+" "+sub.Name)
	}
	return crb.Metadata.Name, crb.RoleRef.Name, strings.Join(s, ", ")
}

func rbacDiff(before, after []byte) *RBACDiff {
	d := &RBACDiff{}
	var n1, n2 string
	if before != nil {
		n1, d.RoleBefore, d.SubjectsBefore = rbacOf(before)
	}
	if after != nil {
		n2, d.RoleAfter, d.SubjectsAfter = rbacOf(after)
	}
	d.Binding = cmpOr(n2, n1)
	return d
}

// RecipientDiff is who gains and who loses the ability to decrypt.
type RecipientDiff struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

func (d *RecipientDiff) String() string {
	var parts []string
	for _, r := range d.Added {
		parts = append(parts, "+ "+r)
	}
	for _, r := range d.Removed {
		parts = append(parts, "- "+r)
	}
	return strings.Join(parts, "; ")
}

func recipientDiff(before, after []string) *RecipientDiff {
	d := &RecipientDiff{}
	for _, r := range after {
		if !slices.Contains(before, r) {
			d.Added = append(d.Added, r)
		}
	}
	for _, r := range before {
		if !slices.Contains(after, r) {
			d.Removed = append(d.Removed, r)
		}
	}
	if len(d.Added) == 0 && len(d.Removed) == 0 {
		return nil
	}
	return d
}

func (p *Plan) addFile(f *File) {
	if prev := p.byPath[f.Path]; prev != nil {
		// Two reasons to touch one path (an object moves onto a path another
		// leaves): the write wins, and both reasons stay.
		prev.Reasons = append(prev.Reasons, f.Reasons...)
		if f.Action != FileDelete {
			prev.Action, prev.Kind, prev.Owner = f.Action, f.Kind, f.Owner
		}
		return
	}
	p.byPath[f.Path] = f
	p.Files = append(p.Files, f)
}

// planFiles lists every file the run writes or deletes: the records of the
// objects that change, the derived files whose bytes change, what gitca
// manages and no longer produces, and the index.
func (p *Plan) planFiles(st *state.State) error {
	// Without known recipients (no Config recipients, no SOPS_AGE_RECIPIENTS,
	// no identity) .sops.yaml cannot be written anew: it stays as it is.
	wanted := map[string]bool{IndexPath: true, SopsConfigPath: len(p.Recipients.ForCA()) == 0}
	writeAction := func(path string) FileAction {
		if st.Has(path) {
			return FileUpdate
		}
		return FileCreate
	}
	for _, a := range p.Objects {
		if a.Action == ActionDelete {
			continue
		}
		wanted[a.Path] = true
		if c := a.Desired.Copy; c != nil {
			wanted[c.Path] = true
		}
		if a.Action == ActionKeep || a.Action == ActionWait {
			continue
		}
		reasons := objectReasons(a)
		if !a.copyOnly() {
			f := &File{Path: a.Path, Kind: FileRecord, Action: writeAction(a.Path), Owner: a.ID, Reasons: reasons}
			if a.Action == ActionReencrypt && a.Stored != nil {
				f.Recipients = recipientDiff(a.Stored.Recipients, a.Desired.Recipients)
			}
			p.addFile(f)
		}
		if c := a.Desired.Copy; c != nil && a.Action != ActionRequest {
			f := &File{Path: c.Path, Kind: FileCACopy, Action: writeAction(c.Path), Owner: a.ID, Reasons: reasons}
			if old := st.Copies[c.Path]; old != nil {
				f.Recipients = recipientDiff(old.Recipients, p.Recipients.ForCluster(c.Cluster))
			}
			p.addFile(f)
		}
	}
	for _, a := range p.Objects {
		switch {
		case a.Action == ActionDelete:
			p.addFile(&File{Path: a.Path, Kind: FileRecord, Action: FileDelete, Owner: a.ID, Reasons: a.Reasons})
		case a.OldPath != "" && !wanted[a.OldPath]:
			p.addFile(&File{Path: a.OldPath, Kind: FileRecord, Action: FileDelete, Owner: a.ID,
				Reasons: []Reason{{Code: ReasonMoved, Detail: "moved to " + a.Path}}})
		}
	}

	p.planOfflineFiles(st, wanted)

	der, err := p.derive(p.planTimeTrust)
	if err != nil {
		return err
	}
	for _, path := range sortedKeys(der) {
		d := der[path]
		wanted[path] = true
		old, err := st.ReadFile(path)
		exists := err == nil
		if exists && d.bytes != nil && bytes.Equal(old, d.bytes) {
			continue
		}
		f := &File{Path: path, Kind: d.kind, Owner: d.owner, Action: FileUpdate}
		if !exists {
			f.Action = FileCreate
			old = nil
		}
		p.describeDerived(f, d, old)
		p.addFile(f)
	}

	// What gitca wrote and no longer produces goes: anything in its
	// directories, and elsewhere (an overlay whose spec.clusters[].path was
	// changed or removed) every record and every object labelled as gitca's,
	// then the kustomizations left listing nothing else.
	var kustomizations []string
	for _, path := range st.Files {
		if wanted[path] || p.byPath[path] != nil {
			continue
		}
		old, _ := st.ReadFile(path)
		switch {
		case p.Layout.Managed(path), st.At(path) != nil, ownedByGitca(old):
		case IsKustomization(path):
			kustomizations = append(kustomizations, path)
			continue
		default:
			continue
		}
		f := &File{Path: path, Kind: FileStray, Action: FileDelete}
		p.describeRemoved(f, st, old)
		p.addFile(f)
	}
	for _, k := range kustomizations {
		old, _ := st.ReadFile(k)
		if res := kustomizationResources(old); len(res) > 0 && p.allDeleted(st, path.Dir(k), res) {
			f := &File{Path: k, Kind: FileKustomization, Action: FileDelete,
				Reasons: []Reason{{Code: ReasonOrphaned, Detail: "every file it lists is deleted"}}}
			p.addFile(f)
		}
	}

	if why := p.indexChange(st); why != "" {
		p.addFile(&File{Path: IndexPath, Kind: FileIndex, Action: writeAction(IndexPath), Owner: "State",
			Reasons: []Reason{{Code: ReasonIndex, Detail: why}}})
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	return nil
}

// indexChange says why the index changes, or "": it lists every record the
// run leaves in the tree, each with the hash of its bytes.
func (p *Plan) indexChange(st *state.State) string {
	after := map[string]bool{}
	written := 0
	for _, a := range p.Objects {
		if a.Action == ActionDelete {
			continue
		}
		paths := []string{a.Path}
		if a.Desired.Copy != nil {
			paths = append(paths, a.Desired.Copy.Path)
		}
		for _, path := range paths {
			if a.Action == ActionWait && !st.Has(path) {
				continue // nothing made yet
			}
			after[path] = true
			if f := p.byPath[path]; f != nil && f.Action != FileDelete {
				written++
			}
		}
	}
	switch {
	case written > 0:
		return fmt.Sprintf("%d record(s) written", written)
	case len(after) == 0 && !st.Has(IndexPath):
		return "" // nothing to index, and no index to empty
	case st.Indexed == nil:
		return "the index is missing or unreadable"
	}
	var stale, gone []string
	for path := range after {
		if !st.Indexed[path] {
			stale = append(stale, path)
		}
	}
	for path := range st.Indexed {
		if !after[path] {
			gone = append(gone, path)
		}
	}
	sort.Strings(stale)
	sort.Strings(gone)
	var why []string
	if len(stale) > 0 {
		why = append(why, "re-indexes records changed outside gitca or missing from it: "+listSome(stale, 3))
	}
	if len(gone) > 0 {
		why = append(why, "drops records no longer in the tree: "+listSome(gone, 3))
	}
	return strings.Join(why, "; ")
}

// objectReasons are an object's reasons, prefixed by its action, for its files.
func objectReasons(a *Action) []Reason {
	out := make([]Reason, 0, len(a.Reasons)+1)
	out = append(out, Reason{Code: string(a.Action), Detail: a.ID})
	return append(out, a.Reasons...)
}

// copyOnly: a kept CA whose delivered copy alone must be written again.
func (a *Action) copyOnly() bool {
	if a.Action != ActionReencrypt || a.Desired.Copy == nil {
		return false
	}
	for _, r := range a.Reasons {
		if !strings.HasPrefix(r.Detail, "delivered copy ") {
			return false
		}
	}
	return true
}

// describeDerived names why a derived file is written, and for trust files
// what they grant.
func (p *Plan) describeDerived(f *File, d *derived, old []byte) {
	add := func(code, detail string) { f.Reasons = append(f.Reasons, Reason{Code: code, Detail: detail}) }
	switch d.kind {
	case FileBundle:
		f.Trust = trustDiff(bundleFileCerts(old), d.certs, d.pending)
		switch {
		case len(d.pending) > 0:
			add(ReasonCASigned, strings.Join(d.pending, ", ")+" get(s) a new certificate in this run")
		case old == nil:
			add(ReasonMissing, "new trust bundle "+d.owner)
		case len(f.Trust.Enter) > 0 || len(f.Trust.Leave) > 0:
			add(ReasonBundleChanged, d.owner+": "+f.Trust.String())
		default:
			add(ReasonContentChanged, "same certificates, other bytes (edited outside gitca, or the bundle's sources changed)")
		}
	case FileRBAC:
		f.RBAC = rbacDiff(old, d.bytes)
		add(ReasonRBACChanged, f.RBAC.String())
	case FileSopsConfig:
		before, after := sopsRecipients(old), sopsRecipients(d.bytes)
		f.Recipients = recipientDiff(before, after)
		if f.Recipients != nil {
			add(ReasonRecipients, ".sops.yaml creation rules: "+f.Recipients.String())
		} else {
			add(ReasonContentChanged, ".sops.yaml creation rules")
		}
	case FileKustomization:
		add(ReasonOverlayChanged, kustomizationDiff(old, d.bytes))
	case FileNamespace:
		if old == nil {
			add(ReasonMissing, "a namespace "+strings.TrimPrefix(d.owner, "Cluster/")+"'s overlay writes into")
		} else {
			add(ReasonContentChanged, "edited outside gitca")
		}
	case FileGitOps:
		if old == nil {
			add(ReasonMissing, "applies "+strings.TrimPrefix(d.owner, "Cluster/")+"'s overlay")
		} else {
			add(ReasonContentChanged, "how "+strings.TrimPrefix(d.owner, "Cluster/")+"'s overlay is applied")
		}
	default:
		if old == nil {
			add(ReasonMissing, "")
		} else {
			add(ReasonContentChanged, "")
		}
	}
}

// describeRemoved names a managed file nothing produces any more.
func (p *Plan) describeRemoved(f *File, st *state.State, old []byte) {
	f.Reasons = []Reason{{Code: ReasonOrphaned, Detail: "not produced by the topology"}}
	switch {
	case st.At(f.Path) != nil:
		o := st.At(f.Path)
		f.Kind, f.Owner = FileRecord, o.ID
		if o.Role == state.RoleCopy {
			f.Kind = FileCACopy
		}
	case f.Path == SopsConfigPath:
		f.Kind, f.Owner = FileSopsConfig, "Config"
		f.Recipients = recipientDiff(sopsRecipients(old), nil)
	case IsKustomization(f.Path):
		f.Kind = FileKustomization
	case strings.HasPrefix(f.Path, fluxDir+"/") || strings.HasPrefix(f.Path, argoDir+"/"):
		f.Kind = FileGitOps
	default:
		var head struct {
			Kind     string `json:"kind"`
			Metadata Meta   `json:"metadata"`
		}
		if yaml.Unmarshal(old, &head) != nil {
			return
		}
		f.Owner = head.Metadata.Annotations[state.AnnotationObject]
		switch {
		case head.Kind == "ClusterRoleBinding":
			f.Kind = FileRBAC
			f.RBAC = rbacDiff(old, nil)
			f.Reasons = append(f.Reasons, Reason{Code: ReasonRBACChanged, Detail: f.RBAC.String()})
		case strings.HasPrefix(f.Owner, "TrustBundle/"):
			f.Kind = FileBundle
			f.Trust = trustDiff(bundleFileCerts(old), nil, nil)
		case head.Kind == "Namespace":
			f.Kind = FileNamespace
		}
	}
}

// bundleFileCerts are the certificates a stored bundle file holds.
func bundleFileCerts(b []byte) []*x509.Certificate {
	if b == nil {
		return nil
	}
	var obj plainObject
	if yaml.Unmarshal(b, &obj) != nil {
		return nil
	}
	pem := obj.Data["ca.crt"] + obj.StringData["tls.crt"]
	certs, _ := sign.ParseCertsPEM([]byte(pem))
	return certs
}

// sopsRecipients is every age recipient a .sops.yaml names, sorted.
func sopsRecipients(b []byte) []string {
	var cfg struct {
		CreationRules []struct {
			Age string `json:"age"`
		} `json:"creation_rules"`
	}
	if b == nil || yaml.Unmarshal(b, &cfg) != nil {
		return nil
	}
	var out []string
	for _, r := range cfg.CreationRules {
		for _, a := range strings.Split(r.Age, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// kustomizationDiff names the resources an overlay gains and loses.
func kustomizationDiff(before, after []byte) string {
	list := func(b []byte) []string {
		var k struct {
			Resources  []string `json:"resources"`
			Generators []string `json:"generators"`
			Files      []string `json:"files"`
		}
		if b == nil || yaml.Unmarshal(b, &k) != nil {
			return nil
		}
		return append(append(k.Resources, k.Generators...), k.Files...)
	}
	was, is := list(before), list(after)
	set := func(l []string) map[string]bool {
		m := make(map[string]bool, len(l))
		for _, r := range l {
			m[r] = true
		}
		return m
	}
	// An overlay lists thousands of files: sets, not repeated scans.
	wasSet, isSet := set(was), set(is)
	var added, removed []string
	for _, r := range is {
		if !wasSet[r] {
			added = append(added, r)
		}
	}
	for _, r := range was {
		if !isSet[r] {
			removed = append(removed, r)
		}
	}
	var parts []string
	if before == nil {
		parts = append(parts, "new overlay")
	}
	if len(added) > 0 {
		parts = append(parts, "adds "+listSome(added, 5))
	}
	if len(removed) > 0 {
		parts = append(parts, "removes "+listSome(removed, 5))
	}
	if len(parts) == 0 {
		return "same resources, other bytes"
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ownedByGitca reports whether a file is an object gitca labelled as its own.
func ownedByGitca(b []byte) bool {
	if !bytes.Contains(b, []byte(state.LabelManagedBy)) {
		return false
	}
	var head struct {
		Metadata Meta `json:"metadata"`
	}
	return yaml.Unmarshal(b, &head) == nil && head.Metadata.Labels[state.LabelManagedBy] == state.ManagedByValue
}

// kustomizationResources is what a kustomization lists: resources,
// generators, and the files of a KSOPS generator beside it are not followed.
func kustomizationResources(b []byte) []string {
	var k struct {
		Resources  []string `json:"resources"`
		Generators []string `json:"generators"`
	}
	if yaml.Unmarshal(b, &k) != nil {
		return nil
	}
	return append(k.Resources, k.Generators...)
}

// allDeleted reports whether every file listed (relative to dir) is gone
// already or one the plan deletes (a KSOPS generator is deleted with them).
func (p *Plan) allDeleted(st *state.State, dir string, rel []string) bool {
	for _, r := range rel {
		full := path.Join(dir, r)
		if path.Base(r) == ksopsGeneratorFile || !st.Has(full) {
			continue
		}
		if f := p.byPath[full]; f == nil || f.Action != FileDelete {
			return false
		}
	}
	return true
}
