package render

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/secrets"
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

	Desired *Desired        `json:"-"`
	Stored  *secrets.Object `json:"-"`
	// Cert is the object's certificate after the run: the stored one for
	// actions that keep it, the new one once Apply has signed.
	Cert *x509.Certificate `json:"-"`

	subjectChanged bool
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

// SKI is the subject key id of the object's certificate after the run, known
// without parsing for kept objects.
func (a *Action) SKI() []byte {
	if a.Cert != nil {
		return a.Cert.SubjectKeyId
	}
	if a.Keeps() && a.Stored != nil {
		return a.Stored.SKI
	}
	return nil
}

// Keeps reports whether the object's certificate stays as it is.
func (a *Action) Keeps() bool { return !a.NewCert() && a.Action != ActionDelete }

// Plan is everything one run would do, in a deterministic order: CAs in issuer
// order, then certificates, key pairs and kubeconfigs by name, then deletions.
type Plan struct {
	Now     time.Time `json:"now"`
	Actions []*Action `json:"actions"`
	// Warnings are for people: things gitca will not or cannot fix.
	Warnings []string `json:"warnings,omitempty"`

	byID       map[string]*Action
	recipients Recipients
}

// Action returns the action for an object ID, or nil.
func (p *Plan) Action(id string) *Action { return p.byID[id] }

// CA returns the action for a CA by name, or nil.
func (p *Plan) CA(name string) *Action { return p.byID[string(KindCA)+"/"+name] }

// Counts returns how many actions of each kind the plan holds.
func (p *Plan) Counts() map[ActionKind]int {
	m := map[ActionKind]int{}
	for _, a := range p.Actions {
		m[a.Action]++
	}
	return m
}

// Changes reports whether the plan writes anything.
func (p *Plan) Changes() bool {
	for _, a := range p.Actions {
		if a.Action != ActionKeep {
			return true
		}
	}
	return false
}

// Options are the inputs of a plan besides topology and state.
type Options struct {
	Now        time.Time
	Recipients Recipients
	// Verify makes Render open every record (VerifyState), not only those
	// changed outside gitca.
	Verify bool

	// skipOverlayCheck lets benchmarks measure a render without the kustomize
	// build, as issue 3's render target is defined; users always get the check.
	skipOverlayCheck bool
}

// NewPlan compares the topology with the state. It reads public material only.
func NewPlan(t *topology.Topology, st *secrets.State, opt Options) (*Plan, error) {
	p := &Plan{Now: opt.Now.UTC(), byID: map[string]*Action{}, recipients: opt.Recipients}
	desired := DesiredObjects(t, opt.Recipients)
	for _, d := range desired {
		if d.Kind == KindCA && d.CA.Spec.Import != nil {
			fp, err := importedFingerprint(t.Root, d.CA.Spec.Import.Certificate)
			if err != nil {
				return nil, fmt.Errorf("%s: spec.import.certificate: %w", d.ID, err)
			}
			d.Shape.Imported = fp
		}
	}
	for _, d := range desired {
		a := &Action{ID: d.ID, Kind: d.Kind, Name: d.Name, Path: d.Path, Desired: d, Preset: d.Origin.Preset}
		if d.Origin.File != "" {
			pos := d.Origin.Position
			a.Origin = &pos
		}
		o := st.Primary[d.ID]
		a.Stored = o
		in := policyInput{d: d, o: o, now: p.Now}
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
		}
		a.Action, a.Rekeys, a.Reasons = evaluate(chain, in)
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
		if d.Kind == KindCA && d.CA.Spec.Import != nil {
			p.Warnings = append(p.Warnings, importWarnings(a, p.Now)...)
		}
		if a.Action == ActionKeep && d.Copy != nil && copyStale(st, d, p.recipients) {
			a.Action = ActionReencrypt
			a.Reasons = append(a.Reasons, Reason{Code: ReasonMoved, Detail: "delivered copy " + d.Copy.Path + " missing or stale"})
		}
		p.Actions = append(p.Actions, a)
		p.byID[a.ID] = a
	}
	p.planDeletes(st)
	if w := unverifiedWarning(st); w != "" {
		p.Warnings = append(p.Warnings, w)
	}
	return p, nil
}

// unverifiedWarning names the records changed outside gitca that no one could
// open to check (VerifyState without an identity): a plan in a pull request
// trusts their public parts; the reconciler's run checks them.
func unverifiedWarning(st *secrets.State) string {
	var paths []string
	for _, path := range st.Unvouched {
		if o := st.At(path); o != nil && !o.Verified {
			paths = append(paths, path)
		}
	}
	if len(paths) == 0 {
		return ""
	}
	list := strings.Join(paths[:min(len(paths), 5)], ", ")
	if len(paths) > 5 {
		list += fmt.Sprintf(" and %d more", len(paths)-5)
	}
	return fmt.Sprintf("%d record(s) changed outside gitca, not verified without an age identity (SOPS MAC, key matching certificate); a run with one checks them: %s", len(paths), list)
}

// copyStale reports whether a CA's delivered copy is missing, elsewhere,
// damaged, or encrypted to the wrong recipients.
func copyStale(st *secrets.State, d *Desired, r Recipients) bool {
	c, ok := st.Copies[d.Copy.Path]
	if !ok {
		return true
	}
	if len(c.Problems) > 0 {
		return true
	}
	want := r.ForCluster(d.Copy.Cluster)
	return len(c.Recipients) > 0 && len(want) > 0 && !equalStrings(c.Recipients, want)
}

// expectedNotAfter is now + validity, clamped to the issuer's (expected) notAfter.
func (p *Plan) expectedNotAfter(d *Desired) *time.Time {
	v := d.validity()
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

func (p *Plan) planDeletes(st *secrets.State) {
	var ids []string
	for id := range st.Primary {
		if _, ok := p.byID[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := st.Primary[id]
		a := &Action{ID: id, Path: o.Path, Action: ActionDelete, Stored: o,
			Reasons: []Reason{{Code: ReasonOrphaned, Detail: "no longer in the topology"}}}
		a.Kind, a.Name = splitID(id)
		if !o.NotAfter.IsZero() {
			na := o.NotAfter.UTC()
			a.Before = &na
			if a.Kind == KindKubeconfig || a.Kind == KindCert {
				// Deleting a Secret does not revoke what was copied out of it.
				a.Notes = append(a.Notes, fmt.Sprintf("its certificate stays valid until %s; revoke its RBAC to disarm copies", na.Format(time.RFC3339)))
			}
		}
		p.Actions = append(p.Actions, a)
		p.byID[id] = a
	}
}

func splitID(id string) (ObjectKind, string) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return ObjectKind(id[:i]), id[i+1:]
		}
	}
	return "", id
}

func importedFingerprint(root, file string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return "", err
	}
	certs, err := secrets.ParseCertsPEM(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return Fingerprint(certs[0]), nil
}

// importedPolicies: gitca cannot renew what it did not make; expiry becomes a warning.
var importedPolicies = []policy{
	{ReasonMissing, ActionCreate, missing},
	{ReasonDamaged, ActionRekey, damaged},
	{ReasonSpecDrift, ActionRekey, specDrift},
	{ReasonMoved, ActionReencrypt, moved},
	{ReasonRecipients, ActionReencrypt, recipientsChanged},
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
		if in.o.Annotations[AnnotationTarget] != targetJSON(in.d.Kubeconfig) {
			out = append(out, Reason{Code: ReasonTargetChanged, Detail: "server, CA or contexts changed"})
		}
		ca := in.d.Kubeconfig.Spec.Target.CA
		if ta := p.CA(ca); ta != nil && ta.NewCert() {
			out = append(out, Reason{Code: ReasonTargetChanged, Detail: ca + " renewed"})
		}
		out = append(out, bundleTargetChanged(p, t, in)...)
		return out
	}})
}

// AnnotationTarget holds a kubeconfig's target and contexts, so a change is seen without decrypting.
const AnnotationTarget = "gitca.dev/target"

func targetJSON(k *topology.Kubeconfig) string {
	b, _ := json.Marshal(struct {
		Target   topology.KubeconfigTarget `json:"target"`
		Contexts []topology.ContextSpec    `json:"contexts"`
	}{k.Spec.Target, k.Spec.Contexts})
	return string(b)
}
