// Package plan decides, from a topology, the public material of a state tree
// and a clock, what every file of the state tree should hold and why each one
// changes. It owns the state layout. It never sees a private key and never
// writes: signing, sealing and writing follow the plan elsewhere.
package plan

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// ActionKind is what a run does to one object.
type ActionKind string

const (
	ActionCreate      ActionKind = "create"       // nothing in the state yet
	ActionRekey       ActionKind = "rekey"        // new key and new certificate
	ActionReissue     ActionKind = "reissue"      // new certificate for a changed spec
	ActionRenew       ActionKind = "renew"        // new certificate, same key, same spec
	ActionUpdateChain ActionKind = "update-chain" // certificate unchanged; its chain or kubeconfig target changed
	ActionReencrypt   ActionKind = "re-encrypt"   // content unchanged; recipients or location changed
	ActionDelete      ActionKind = "delete"       // left the topology
	ActionKeep        ActionKind = "keep"
)

// strength orders actions so that the most invasive one a policy asks for wins.
func (k ActionKind) strength() int {
	switch k {
	case ActionReencrypt:
		return 1
	case ActionUpdateChain:
		return 2
	case ActionRenew:
		return 3
	case ActionReissue:
		return 4
	case ActionRekey:
		return 5
	case ActionCreate:
		return 6
	}
	return 0
}

// Action is the plan for one object.
type Action struct {
	ID      string             `json:"id"`
	Kind    ObjectKind         `json:"kind"`
	Name    string             `json:"name"`
	Path    string             `json:"path"`
	Action  ActionKind         `json:"action"`
	Reasons []Reason           `json:"reasons,omitempty"`
	Rekeys  bool               `json:"newKey,omitempty"`
	Before  *time.Time         `json:"notAfterBefore,omitempty"`
	After   *time.Time         `json:"notAfterAfter,omitempty"`
	Notes   []string           `json:"notes,omitempty"`
	OldPath string             `json:"oldPath,omitempty"`
	Preset  string             `json:"preset,omitempty"`
	Origin  *topology.Position `json:"origin,omitempty"`

	// Rotation is where the object's staged rotation stands after the run
	// and what comes next; nil for objects without one.
	Rotation *RotationStatus `json:"rotation,omitempty"`

	Desired *Desired      `json:"-"`
	Stored  *state.Object `json:"-"`
	// Cert is the stored certificate of a CA the run keeps: kept CAs sign,
	// verify and fill bundles. Nil for everything else.
	Cert *x509.Certificate `json:"-"`

	subjectChanged bool
	// retiring marks a CA deletion a rotation asked for (Drop with retire:
	// delete, or a rollback): the destruction guard lets it pass.
	retiring bool
}

// NewKey reports whether the action makes a new private key.
func (a *Action) NewKey() bool { return a.Rekeys }

// NewCert reports whether the action signs a new certificate.
func (a *Action) NewCert() bool {
	switch a.Action {
	case ActionCreate, ActionRekey, ActionReissue, ActionRenew:
		return true
	}
	return false
}

// Keeps reports whether the object's certificate stays as it is.
func (a *Action) Keeps() bool { return !a.NewCert() && a.Action != ActionDelete }

// ski is the subject key id of the object's certificate after the run, when
// the run keeps it.
func (a *Action) ski() []byte {
	switch {
	case !a.Keeps():
		return nil
	case a.Cert != nil:
		return a.Cert.SubjectKeyId
	case a.Stored != nil:
		return a.Stored.SKI
	}
	return nil
}

// Plan is everything one run would do: one Action per object (CAs in issuer
// order, then certificates, key pairs and kubeconfigs by name, then
// deletions), and one File per path the run writes or deletes, each with its
// named reasons.
type Plan struct {
	Now     time.Time `json:"now"`
	Objects []*Action `json:"objects"`
	// Files lists every file a run writes or deletes, sorted by path. A file
	// that does not change is not listed.
	Files []*File `json:"files"`
	// Warnings are for people: things gitca will not or cannot fix.
	Warnings []string `json:"warnings,omitempty"`

	Topology   *topology.Topology `json:"-"`
	Layout     Layout             `json:"-"`
	Recipients Recipients         `json:"-"`

	byID   map[string]*Action
	byPath map[string]*File
	rot    rotationPlan
	crls   map[string]*CRLWork
	off    offlinePlan
}

// Action returns the action for an object ID, or nil.
func (p *Plan) Action(id string) *Action { return p.byID[id] }

// CA returns the action for a CA by name, or nil.
func (p *Plan) CA(name string) *Action { return p.byID[string(KindCA)+"/"+name] }

// File returns the planned change of a path, or nil when it does not change.
func (p *Plan) File(path string) *File { return p.byPath[path] }

// Counts returns how many objects get each action.
func (p *Plan) Counts() map[ActionKind]int {
	m := map[ActionKind]int{}
	for _, a := range p.Objects {
		m[a.Action]++
	}
	return m
}

// Changes reports whether a run would write or delete anything.
func (p *Plan) Changes() bool { return len(p.Files) > 0 }

// Options are the inputs of a plan besides topology and state.
type Options struct {
	Now        time.Time
	Recipients Recipients
	// AllowDestroy lets a plan delete CAs or most of the PKI (the destruction guard).
	AllowDestroy bool
	// CSRs names CAs signed offline to make a certificate signing request
	// for (gitca csr): a new key, or the stored one for a renewal.
	CSRs []string
}

// Make compares the topology with the state. It reads public material only.
func Make(t *topology.Topology, st *state.State, opt Options) (*Plan, error) {
	p := &Plan{Now: opt.Now.UTC(), Topology: t, Layout: LayoutOf(t), Recipients: opt.Recipients,
		byID: map[string]*Action{}, byPath: map[string]*File{}}
	if err := p.Layout.CheckLayout(); err != nil {
		return nil, err
	}
	if err := checkRequests(t, opt.CSRs); err != nil {
		return nil, err
	}
	p.off = offlinePlan{requested: map[string]bool{}, keep: map[string]bool{}, signed: map[string]*x509.Certificate{}}
	for _, n := range opt.CSRs {
		p.off.requested[n] = true
	}
	if err := p.planObjects(st); err != nil {
		return nil, err
	}
	if err := p.guardCARecords(st); err != nil {
		return nil, err
	}
	if err := p.importedIssuersValid(); err != nil {
		return nil, err
	}
	p.planDeletes(st)
	p.planCRLs(st)
	p.revocationNotes()
	if w := unverifiedWarning(st); w != "" {
		p.Warnings = append(p.Warnings, w)
	}
	if err := p.planFiles(st); err != nil {
		return nil, err
	}
	p.describeRotationTrust()
	if !opt.AllowDestroy {
		if err := p.guardDestruction(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Plan) planObjects(st *state.State) error {
	t := p.Topology
	desired, err := p.planRotations(DesiredObjects(t, p.Recipients), st)
	if err != nil {
		return err
	}
	imported := map[string]*x509.Certificate{}
	for _, d := range desired {
		if d.Kind == KindCA && d.CA.Spec.Import != nil {
			c, err := importedCert(t.Root, d.CA.Spec.Import.Certificate)
			if err != nil {
				return fmt.Errorf("%s: spec.import.certificate: %w", d.ID, err)
			}
			d.Shape.Imported = sign.Fingerprint(c)
			imported[d.ID] = c
		}
	}
	var errs topology.ErrorList
	for _, d := range desired {
		a := &Action{ID: d.ID, Kind: d.Kind, Name: d.Name, Path: d.Path, Desired: d, Preset: d.Origin.Preset}
		if d.Origin.File != "" {
			pos := d.Origin.Position
			a.Origin = &pos
		}
		o := p.storedFor(st, d.ID)
		a.Stored = o
		in := policyInput{d: d, o: o, now: p.Now, rot: p.rot.views[d.ID]}
		if d.Shape.Issuer != "" {
			in.issuer = p.CA(d.Shape.Issuer)
		}
		chain := certPolicies
		switch {
		case d.Kind == KindKeyPair:
			chain = keyPairPolicies
		case d.Kind == KindCA && d.CA.Spec.Import != nil:
			chain = importedPolicies
		case d.Kind == KindKubeconfig:
			chain = kubeconfigPolicies(p, t)
		case d.Kind == KindMergedKubeconfig:
			chain = mergedPolicies(p)
		}
		if c := p.rotationChain(d); c != nil {
			chain = c
		}
		var off *offlineDecision
		if p.OfflineIssued(d) {
			var ferr *topology.FieldError
			if off, ferr = p.planOffline(d, o, p.Now); ferr != nil {
				errs = append(errs, ferr)
				continue
			}
			chain = offlineKept
		}
		if off != nil {
			a.Action, a.Rekeys, a.Reasons = off.action, off.newKey, off.reasons
		} else {
			a.Action, a.Rekeys, a.Reasons = evaluate(chain, in)
			p.waitBehind(a)
		}
		if o != nil {
			if !o.NotAfter.IsZero() {
				na := o.NotAfter.UTC()
				a.Before = &na
			}
			if a.Keeps() && d.Kind == KindCA {
				// Kept CAs sign, verify and fill bundles; kept leafs are never parsed.
				a.Cert = o.Cert()
			}
			if o.Path != d.Path {
				a.OldPath = o.Path
			}
			if old, ok := storedShape(o); ok && a.Action == ActionReissue {
				a.subjectChanged = old.CommonName != d.Shape.CommonName || !equalStrings(old.Organizations, d.Shape.Organizations) ||
					!equalStrings(old.OrgUnits, d.Shape.OrgUnits)
			}
		}
		if a.NewCert() {
			a.After = p.expectedNotAfter(d)
		} else {
			a.After = a.Before
		}
		if c := imported[d.ID]; c != nil {
			// An imported CA is its file, whatever the run does to its record.
			a.Cert = c
			p.Warnings = append(p.Warnings, importWarnings(a, p.Now)...)
		}
		switch {
		case off != nil && off.cert != nil:
			// A certificate signed offline is known before the run: trust
			// files can name it.
			a.Cert = off.cert
			na := off.cert.NotAfter.UTC()
			a.After = &na
		case off == nil && p.OfflineIssued(d):
			p.Warnings = append(p.Warnings, p.offlineWarnings(a)...)
		}
		if a.Action == ActionKeep && d.Copy != nil && copyStale(st, d, p.Recipients) {
			a.Action = ActionReencrypt
			a.Reasons = append(a.Reasons, Reason{Code: ReasonMoved, Detail: "delivered copy " + d.Copy.Path + " missing or stale"})
		}
		if r := p.rot.byID[d.ID]; r != nil {
			a.Rotation = r.status()
			a.Notes = append(a.Notes, p.rotationNotes(r)...)
		}
		p.Objects = append(p.Objects, a)
		p.byID[a.ID] = a
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}

// unverifiedWarning names the records changed outside gitca that no one could
// open to check (apply.Verify without an identity): a plan in a pull request
// trusts their public parts; the reconciler's run checks them.
func unverifiedWarning(st *state.State) string {
	var paths []string
	for _, path := range st.Unvouched {
		if o := st.At(path); o != nil && !o.Verified {
			paths = append(paths, path)
		}
	}
	if len(paths) == 0 {
		return ""
	}
	return fmt.Sprintf("%d record(s) changed outside gitca, not verified without an age identity (SOPS MAC, key matching certificate); a run with one checks them: %s", len(paths), listSome(paths, 5))
}

// listSome joins up to n items and counts the rest.
func listSome(items []string, n int) string {
	list := strings.Join(items[:min(len(items), n)], ", ")
	if len(items) > n {
		list += fmt.Sprintf(" and %d more", len(items)-n)
	}
	return list
}

// copyStale reports whether a CA's delivered copy is missing, elsewhere,
// damaged, or encrypted to the wrong recipients.
func copyStale(st *state.State, d *Desired, r Recipients) bool {
	c, ok := st.Copies[d.Copy.Path]
	if !ok {
		return true
	}
	if len(c.Problems) > 0 {
		return true
	}
	if damage, extra := recordContent(c, d, true); len(damage)+len(extra) > 0 {
		return true
	}
	want := r.ForCluster(d.Copy.Cluster)
	return len(c.Recipients) > 0 && len(want) > 0 && !equalStrings(c.Recipients, want)
}

// expectedNotAfter is now + validity, clamped to the issuer's (expected) notAfter.
func (p *Plan) expectedNotAfter(d *Desired) *time.Time {
	v := d.Validity()
	if v == 0 {
		return nil
	}
	na := p.Now.Add(v)
	if d.Shape.Issuer != "" {
		if ia := p.CA(d.Shape.Issuer); ia != nil && ia.After != nil && ia.After.Before(na) {
			na = *ia.After
		}
	}
	return &na
}

func (p *Plan) planDeletes(st *state.State) {
	var ids []string
	for id := range st.Primary {
		if _, ok := p.byID[id]; !ok && !p.isRotationClaimed(id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := st.Primary[id]
		a := &Action{ID: id, Path: o.Path, Action: ActionDelete, Stored: o,
			Reasons: []Reason{{Code: ReasonOrphaned, Detail: "no longer in the topology"}}}
		a.Kind, a.Name = splitID(id)
		if rs := p.rotationDelete(id); rs != nil {
			a.Reasons, a.retiring = rs, true
		}
		if !o.NotAfter.IsZero() {
			na := o.NotAfter.UTC()
			a.Before = &na
			if a.Kind == KindKubeconfig || a.Kind == KindCert {
				// Deleting a Secret does not revoke what was copied out of it.
				a.Notes = append(a.Notes, fmt.Sprintf("its certificate stays valid until %s; revoke its RBAC to disarm copies", na.Format(time.RFC3339)))
			}
		}
		p.Objects = append(p.Objects, a)
		p.byID[id] = a
	}
}

func splitID(id string) (ObjectKind, string) {
	kind, name, _ := strings.Cut(id, "/")
	return ObjectKind(kind), name
}

// importedCert is an imported CA's certificate, from the topology repo.
func importedCert(root, file string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	certs, err := sign.ParseCertsPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return certs[0], nil
}

// importedIssuersValid refuses to plan a signature by an imported CA that is
// not valid now: the signer refuses an expired one at render time, after the
// plan has been approved, and what a CA not valid yet signs does not verify
// until then.
func (p *Plan) importedIssuersValid() error {
	for _, a := range p.Objects {
		if !a.NewCert() || a.Desired.Shape.Issuer == "" {
			continue
		}
		ca := p.CA(a.Desired.Shape.Issuer)
		if ca == nil || ca.Desired.CA == nil || ca.Desired.CA.Spec.Import == nil || ca.Cert == nil {
			continue
		}
		c, file := ca.Cert, ca.Desired.CA.Spec.Import.Certificate
		var why string
		switch {
		case !c.NotAfter.After(p.Now.Add(-sign.Backdate)):
			why = "expired at " + c.NotAfter.UTC().Format(time.RFC3339)
		case c.NotBefore.After(p.Now):
			why = "is not valid before " + c.NotBefore.UTC().Format(time.RFC3339)
		default:
			continue
		}
		pos := ca.Desired.CA.Origin.At("spec.import.certificate")
		return fmt.Errorf("%s:%d:%d: %s: spec.import.certificate: %s %s, so it cannot sign %s (import the CA that replaces it)",
			pos.File, pos.Line, pos.Col, ca.ID, file, why, a.ID)
	}
	return nil
}

// importedPolicies: gitca cannot renew what it did not make; expiry becomes a warning.
var importedPolicies = []policy{
	{ReasonMissing, ActionCreate, missing},
	{ReasonDamaged, ActionRekey, damaged},
	{ReasonSpecDrift, ActionRekey, specDrift},
	{ReasonMoved, ActionReencrypt, moved},
	{ReasonRecipients, ActionReencrypt, recipientsChanged},
	{ReasonUnexpected, ActionReencrypt, unexpectedContent},
}

func importWarnings(a *Action, now time.Time) []string {
	c := a.Cert
	if c == nil || a.Desired.RenewBefore <= 0 {
		return nil
	}
	if !c.NotAfter.After(now.Add(a.Desired.RenewBefore)) {
		return []string{fmt.Sprintf("%s: the imported CA expires %s; gitca cannot renew an imported CA, import a new one", a.ID, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}

// kubeconfigPolicies adds the kubeconfig's own rule to the certificate chain:
// a changed target (server, CA bundle, contexts) rewrites the kubeconfig without re-signing.
func kubeconfigPolicies(p *Plan, t *topology.Topology) []policy {
	return append(append([]policy(nil), certPolicies...), policy{ReasonTargetChanged, ActionUpdateChain, func(in policyInput) []Reason {
		if in.o == nil {
			return nil
		}
		var out []Reason
		if old := in.o.Annotations[AnnotationTarget]; old != targetJSON(in.d.Kubeconfig) {
			out = append(out, Reason{Code: ReasonTargetChanged, Detail: targetDiff(old, in.d.Kubeconfig)})
		}
		ca := in.d.Kubeconfig.Spec.Target.CA
		if ta := p.CA(ca); ta != nil && ta.NewCert() {
			out = append(out, Reason{Code: ReasonTargetChanged, Detail: "CA data: " + ca + " gets a new certificate"})
		}
		out = append(out, bundleTargetChanged(p, t, in)...)
		return out
	}})
}

// AnnotationTarget holds a kubeconfig's target and contexts, so a change is seen without decrypting.
const AnnotationTarget = "gitca.dev/target"

type kubeconfigTarget struct {
	Target   topology.KubeconfigTarget `json:"target"`
	Contexts []topology.ContextSpec    `json:"contexts"`
}

func targetJSON(k *topology.Kubeconfig) string {
	b, _ := json.Marshal(kubeconfigTarget{k.Spec.Target, k.Spec.Contexts})
	return string(b)
}

// targetDiff names what changed in a kubeconfig's target: a reviewer must see
// a server moving to another address, not "target changed".
func targetDiff(oldJSON string, k *topology.Kubeconfig) string {
	var old kubeconfigTarget
	if json.Unmarshal([]byte(oldJSON), &old) != nil {
		return "server, CA or contexts changed"
	}
	var diffs []string
	field := func(name, a, b string) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s %s → %s", name, orNone(a), orNone(b)))
		}
	}
	nt := k.Spec.Target
	field("server", old.Target.Server, nt.Server)
	field("CA", old.Target.CA, nt.CA)
	field("tlsServerName", old.Target.TLSServerName, nt.TLSServerName)
	field("cluster name", old.Target.Name, nt.Name)
	ctxNames := func(cs []topology.ContextSpec) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Name+"="+c.Path+"/"+c.Namespace)
		}
		return strings.Join(s, ",")
	}
	field("contexts", ctxNames(old.Contexts), ctxNames(k.Spec.Contexts))
	if len(diffs) == 0 {
		return "server, CA or contexts changed"
	}
	return strings.Join(diffs, "; ")
}

// RecordAnnotations are the plain, MAC-covered fields of an object's record
// that planning reads back: what made it (spec, spec hash, target), who
// issued it, and a digest of its public content. cert is nil for key pairs,
// whose public key pub stands for their content.
func RecordAnnotations(d *Desired, role string, cert *x509.Certificate, chain []*x509.Certificate, pub []byte) map[string]string {
	ann := maps.Clone(d.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[state.AnnotationObject] = d.ID
	ann[state.AnnotationRole] = role
	ann[state.AnnotationSpec] = d.Shape.JSON()
	ann[state.AnnotationSpecHash] = d.Hash()
	if d.Shape.Issuer != "" {
		ann[state.AnnotationIssuer] = d.Shape.Issuer
	}
	switch {
	case cert != nil:
		ann[state.AnnotationNotAfter] = cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z")
		// Public content only: workloads roll when the certificate or its chain
		// changes, never because ciphertext was re-randomised.
		parts := [][]byte{[]byte(d.Shape.JSON()), cert.Raw}
		for _, c := range chain {
			parts = append(parts, c.Raw)
		}
		ann[AnnotationContentHash] = ContentHash(parts...)
	case pub != nil:
		ann[AnnotationContentHash] = ContentHash([]byte(d.Shape.JSON()), pub)
	}
	if d.Kubeconfig != nil {
		ann[AnnotationTarget] = targetJSON(d.Kubeconfig)
	}
	return ann
}
