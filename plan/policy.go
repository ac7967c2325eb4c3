package plan

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/state"
)

// Reason codes. Each is produced by exactly one policy function below, so a
// reason in a plan can be traced to the rule that raised it.
const (
	ReasonMissing           = "missing"
	ReasonSpecDrift         = "spec-drift"
	ReasonRenewalWindow     = "renewal-window"
	ReasonExpired           = "expired"
	ReasonIssuerRekeyed     = "issuer-rekeyed"
	ReasonIssuerReissued    = "issuer-reissued"
	ReasonIssuerRenewed     = "issuer-renewed"
	ReasonRotation          = "rotation-policy"
	ReasonRecipients        = "recipients-changed"
	ReasonMoved             = "moved"
	ReasonDamaged           = "damaged"
	ReasonOrphaned          = "orphaned"
	ReasonTargetChanged     = "target-changed"
	ReasonUnknownRecipients = "recipients-unknown"
	ReasonMemberChanged     = "member-changed"
	ReasonUnexpected        = "unexpected-content"

	// Reasons a derived file (not a record) changes.
	ReasonCASigned       = "ca-signed"       // a CA it holds gets a new certificate in this run
	ReasonBundleChanged  = "bundle-changed"  // certificates enter or leave
	ReasonRBACChanged    = "rbac-changed"    // a grant is added, changed or revoked
	ReasonOverlayChanged = "overlay-changed" // an overlay gains or loses resources
	ReasonContentChanged = "content-changed" // other bytes: edited outside gitca, or produced differently
	ReasonIndex          = "index"           // the state index follows its records
)

// Reason is one named cause for an action, with a human detail.
type Reason struct {
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

func (r Reason) String() string {
	if r.Detail == "" {
		return r.Code
	}
	return r.Code + " (" + r.Detail + ")"
}

// policyInput is what every policy function sees: the desired object, what the
// state holds for it (nil if nothing), the time of the run, and what the plan
// already decided for the object's issuer.
type policyInput struct {
	d      *Desired
	o      *state.Object
	now    time.Time
	issuer *Action       // nil for roots and key pairs
	rot    *rotationView // nil when no rotation concerns the object
}

// A policy inspects one object and returns the reasons it raises, with the
// action those reasons call for. Policies never look at private values.
type policy struct {
	name string
	kind ActionKind
	fn   func(policyInput) []Reason
}

// certPolicies is evaluated for every certificate-bearing object, in order;
// the strongest action wins (see ActionKind.strength), all reasons are kept.
var certPolicies = []policy{
	{ReasonMissing, ActionCreate, missing},
	{ReasonDamaged, ActionRekey, damaged},
	{ReasonSpecDrift, ActionReissue, specDrift},
	{ReasonIssuerRekeyed, ActionReissue, issuerRekeyed},
	{ReasonIssuerReissued, ActionReissue, issuerReissued},
	{ReasonExpired, ActionRenew, expired},
	{ReasonRenewalWindow, ActionRenew, inRenewalWindow},
	{ReasonIssuerRenewed, ActionUpdateChain, issuerRenewed},
	{ReasonMoved, ActionReencrypt, moved},
	{ReasonRecipients, ActionReencrypt, recipientsChanged},
	{ReasonUnexpected, ActionReencrypt, unexpectedContent},
	rotationPolicies[0], rotationPolicies[1], rotationPolicies[2], rotationPolicies[3], rotationPolicies[4],
}

// keyPairPolicies apply to bare key pairs: they have no certificate to expire.
var keyPairPolicies = []policy{
	{ReasonMissing, ActionCreate, missing},
	{ReasonDamaged, ActionRekey, damaged},
	{ReasonSpecDrift, ActionRekey, keyDrift},
	{ReasonMoved, ActionReencrypt, moved},
	{ReasonRecipients, ActionReencrypt, recipientsChanged},
	{ReasonUnexpected, ActionReencrypt, unexpectedContent},
	rotationPolicies[0], rotationPolicies[1], rotationPolicies[3], rotationPolicies[4],
	{ReasonVerifyList, ActionUpdateChain, rotationVerifyList},
}

func missing(in policyInput) []Reason {
	if in.o == nil {
		return []Reason{{Code: ReasonMissing}}
	}
	return nil
}

// damaged covers records whose public parts cannot be trusted: unparseable
// certificates, unsealed files, certificates that no longer chain to their issuer.
func damaged(in policyInput) []Reason {
	if in.o == nil {
		return nil
	}
	var out []Reason
	for _, p := range in.o.Problems {
		out = append(out, Reason{Code: ReasonDamaged, Detail: p})
	}
	if in.d.Kind != KindKeyPair && in.d.Kind != KindMergedKubeconfig && !in.o.HasCert() && len(in.o.Problems) == 0 {
		out = append(out, Reason{Code: ReasonDamaged, Detail: "no certificate in tls.crt"})
	}
	if in.o.Annotations[state.AnnotationSpec] == "" {
		out = append(out, Reason{Code: ReasonDamaged, Detail: "no readable " + state.AnnotationSpec + " annotation"})
	}
	damage, _ := recordContent(in.o, in.d, in.o.Role == state.RoleCopy)
	for _, d := range damage {
		out = append(out, Reason{Code: ReasonDamaged, Detail: d})
	}
	// A chain that no longer verifies shows as an authority key id that is not the
	// issuer's: issuerRekeyed names it. Comparing key ids rather than verifying
	// signatures keeps a no-op plan over ten thousand certificates cheap.
	return out
}

// unexpectedContent: what gitca does not write — a value under another
// stringData key, a data: map, labels or annotations the topology does not
// declare, sops keys other than age (another recipient), another type — is
// rewritten away, the key and certificate kept.
func unexpectedContent(in policyInput) []Reason {
	if in.o == nil {
		return nil
	}
	_, extra := recordContent(in.o, in.d, false)
	if len(extra) == 0 {
		return nil
	}
	return []Reason{{Code: ReasonUnexpected, Detail: listSome(extra, 5)}}
}

// gitcaAnnotations are the annotations RecordAnnotations writes; any other
// must be the topology object's own.
var gitcaAnnotations = []string{state.AnnotationObject, state.AnnotationRole, state.AnnotationSpec, state.AnnotationSpecHash,
	state.AnnotationIssuer, state.AnnotationNotAfter, AnnotationContentHash, AnnotationTarget, AnnotationMembers,
	AnnotationGeneration, AnnotationRotationPhase, AnnotationRotationSince, AnnotationRotationRole, AnnotationRotationOther, AnnotationRetiredAt,
	AnnotationCRL}

// recordContent compares a record's Secret with what gitca writes for d (its
// delivered copy with copy): damage is what makes its key or certificate
// unusable or the record another's (a missing key, another Secret's name),
// extra is what a rewrite removes or restores.
func recordContent(o *state.Object, d *Desired, copy bool) (damage, extra []string) {
	name, ns := d.Secret.Name, d.Secret.Namespace
	switch {
	case copy && d.Copy != nil:
		name, ns = d.Copy.Name, d.Copy.Namespace
	case d.Kind == KindCA:
		name, ns = d.Name, ""
	}
	sameName := o.Name == name
	if d.Kind == KindCA && !copy {
		// A CA's generation records change places through a rotation (the
		// next generation's record becomes the signing one) and keep their
		// Secret's name: any generation of the same CA is its own.
		sameName = generationBase(o.Name) == generationBase(name)
	}
	if !sameName || o.Namespace != ns {
		damage = append(damage, fmt.Sprintf("it is Secret %s, not %s: another object's record, or two records for one Secret", nsName(o.Namespace, o.Name), nsName(ns, name)))
	}
	typ, keys := "kubernetes.io/tls", []string{"ca.crt", "tls.crt", "tls.key"}
	var optional []string // written only in some phases
	switch d.Kind {
	case KindKeyPair:
		typ, keys = "Opaque", []string{"tls.key", "tls.pub"}
		optional = []string{KeyVerifyList, KeyJWKS, KeyNext, KeyPrevious, KeyRetired}
	case KindKubeconfig:
		typ, keys = "Opaque", []string{"ca.crt", "kubeconfig", "tls.crt"}
	case KindMergedKubeconfig:
		typ, keys = "Opaque", []string{"kubeconfig"}
	case KindCA:
		// planCRL and planOffline decide the list and the request.
		optional = []string{KeyCRL, KeyCSR}
		if d.CA != nil && d.CA.Spec.Import != nil && d.CA.Spec.Import.Key == "" {
			keys = []string{"ca.crt", "tls.crt"} // an offline root, recorded for trust only
		}
	}
	if o.Type != typ {
		extra = append(extra, fmt.Sprintf("type %s (not %s)", orNone(o.Type), typ))
	}
	for _, k := range keys {
		if slices.Contains(o.Keys, k) {
			continue
		}
		if k == "tls.key" || k == "kubeconfig" {
			damage = append(damage, "no stringData."+k+": the private key is gone")
		} else if k != "tls.crt" { // damaged says "no certificate in tls.crt"
			extra = append(extra, "no stringData."+k)
		}
	}
	for _, k := range o.Keys {
		if !slices.Contains(keys, k) && !slices.Contains(optional, k) {
			extra = append(extra, "stringData."+k)
		}
	}
	for k, v := range o.Annotations {
		if slices.Contains(gitcaAnnotations, k) {
			continue
		}
		if want, ok := d.Annotations[k]; !ok || want != v {
			extra = append(extra, "annotation "+k)
		}
	}
	for k := range d.Annotations {
		// gitca's own (a rotation's phase) come and go with the plan's steps.
		if _, ok := o.Annotations[k]; !ok && !slices.Contains(gitcaAnnotations, k) {
			extra = append(extra, "no annotation "+k)
		}
	}
	extra = append(extra, o.Unexpected...)
	sort.Strings(extra)
	return damage, extra
}

// generationBase is a CA generation record's Secret name without its
// generation suffix (demo-ca@next → demo-ca).
func generationBase(name string) string {
	base, _, _ := strings.Cut(name, "@")
	return base
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// specDrift compares the stored normalized spec field by field and names each difference.
func specDrift(in policyInput) []Reason {
	if in.o == nil {
		return nil
	}
	// The common case, nothing changed, costs one string comparison.
	if in.o.Annotations[state.AnnotationSpecHash] == in.d.Hash() {
		return nil
	}
	old, ok := storedShape(in.o)
	if !ok {
		if in.o.Annotations[state.AnnotationSpec] == "" {
			return nil // damaged says so
		}
		return []Reason{{Code: ReasonSpecDrift, Detail: "stored spec unreadable"}}
	}
	if old.Hash() == in.d.Hash() {
		return nil
	}
	var diffs []string
	cmp := func(field, a, b string) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s %s → %s", field, orNone(a), orNone(b)))
		}
	}
	cmp("issuer", old.Issuer, in.d.Shape.Issuer)
	cmp("commonName", old.CommonName, in.d.Shape.CommonName)
	cmp("organizations", strings.Join(old.Organizations, ","), strings.Join(in.d.Shape.Organizations, ","))
	cmp("organizationalUnits", strings.Join(old.OrgUnits, ","), strings.Join(in.d.Shape.OrgUnits, ","))
	cmp("countries", strings.Join(old.Countries, ","), strings.Join(in.d.Shape.Countries, ","))
	cmp("localities", strings.Join(old.Localities, ","), strings.Join(in.d.Shape.Localities, ","))
	cmp("profile", old.Profile, in.d.Shape.Profile)
	cmp("dnsNames", strings.Join(old.DNSNames, ","), strings.Join(in.d.Shape.DNSNames, ","))
	cmp("ipAddresses", strings.Join(old.IPAddresses, ","), strings.Join(in.d.Shape.IPAddresses, ","))
	cmp("uris", strings.Join(old.URIs, ","), strings.Join(in.d.Shape.URIs, ","))
	cmp("keyAlgorithm", old.KeyAlgorithm, in.d.Shape.KeyAlgorithm)
	cmp("validity", old.Validity, in.d.Shape.Validity)
	cmp("pathLen", intText(old.PathLen), intText(in.d.Shape.PathLen))
	cmp("imported", old.Imported, in.d.Shape.Imported)
	if len(diffs) == 0 {
		diffs = append(diffs, "spec changed")
	}
	out := make([]Reason, len(diffs))
	for i, d := range diffs {
		out[i] = Reason{Code: ReasonSpecDrift, Detail: d}
	}
	return out
}

// keyDrift is spec drift for key pairs: only the algorithm matters.
func keyDrift(in policyInput) []Reason {
	if in.o == nil {
		return nil
	}
	old, ok := storedShape(in.o)
	if !ok || old.KeyAlgorithm == in.d.Shape.KeyAlgorithm {
		return nil
	}
	return []Reason{{Code: ReasonSpecDrift, Detail: fmt.Sprintf("keyAlgorithm %s → %s", old.KeyAlgorithm, in.d.Shape.KeyAlgorithm)}}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func intText(p *int) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

// issuerRekeyed: the issuer gets a new key in this run, or the stored certificate
// was signed by a key the issuer no longer has.
func issuerRekeyed(in policyInput) []Reason {
	if in.o == nil || in.issuer == nil {
		return nil
	}
	if in.issuer.NewKey() {
		return []Reason{{Code: ReasonIssuerRekeyed, Detail: in.d.Shape.Issuer + " gets a new key"}}
	}
	if ski := in.issuer.ski(); len(in.o.AKI) > 0 && len(ski) > 0 && !bytes.Equal(in.o.AKI, ski) {
		return []Reason{{Code: ReasonIssuerRekeyed, Detail: "signed by an older key of " + in.d.Shape.Issuer}}
	}
	return nil
}

// issuerReissued: the issuer's subject changes in this run (same key), so the
// issuer name in every certificate below it must change too.
func issuerReissued(in policyInput) []Reason {
	if in.o == nil || in.issuer == nil || in.issuer.NewKey() {
		return nil
	}
	if in.issuer.Action == ActionReissue && in.issuer.subjectChanged {
		return []Reason{{Code: ReasonIssuerReissued, Detail: in.d.Shape.Issuer + " subject changes"}}
	}
	return nil
}

func expired(in policyInput) []Reason {
	if in.o == nil || in.o.NotAfter.IsZero() || in.now.Before(in.o.NotAfter) {
		return nil
	}
	return []Reason{{Code: ReasonExpired, Detail: "expired " + in.o.NotAfter.UTC().Format(time.RFC3339)}}
}

// inRenewalWindow follows cert-manager: renew once now ≥ notAfter − renewBefore.
func inRenewalWindow(in policyInput) []Reason {
	if in.o == nil || in.o.NotAfter.IsZero() || !in.now.Before(in.o.NotAfter) || in.d.RenewBefore <= 0 {
		return nil
	}
	at := in.o.NotAfter.Add(-in.d.RenewBefore)
	if in.now.Before(at) {
		return nil
	}
	return []Reason{{Code: ReasonRenewalWindow, Detail: "renew from " + at.UTC().Format(time.RFC3339)}}
}

// issuerRenewed: the issuer keeps its key but gets a new certificate, or its
// own chain changes (a CA above it was renewed); this certificate still
// verifies, only the chain stored beside it changes. Without the second case
// only a renewed CA's direct children would follow, and the rest of the tree
// would keep a mixed chain until each renews.
func issuerRenewed(in policyInput) []Reason {
	if in.o == nil || in.issuer == nil || in.issuer.NewKey() {
		return nil
	}
	switch {
	case in.issuer.NewCert():
		return []Reason{{Code: ReasonIssuerRenewed, Detail: in.d.Shape.Issuer + " renewed, chain update only"}}
	case in.issuer.Action == ActionUpdateChain && !in.issuer.rotationOnly():
		return []Reason{{Code: ReasonIssuerRenewed, Detail: in.d.Shape.Issuer + "'s chain changes, chain update only"}}
	}
	return nil
}

func moved(in policyInput) []Reason {
	if in.o == nil || in.o.Path == in.d.Path {
		return nil
	}
	return []Reason{{Code: ReasonMoved, Detail: in.o.Path + " → " + in.d.Path}}
}

// recipientsChanged compares who can open the file; unknown desired recipients
// (no Config and no SOPS_AGE_RECIPIENTS at plan time) are not a change.
func recipientsChanged(in policyInput) []Reason {
	if in.o == nil || len(in.d.Recipients) == 0 || len(in.o.Recipients) == 0 {
		return nil
	}
	if equalStrings(in.o.Recipients, in.d.Recipients) {
		return nil
	}
	return []Reason{{Code: ReasonRecipients, Detail: fmt.Sprintf("%d → %d age recipients", len(in.o.Recipients), len(in.d.Recipients))}}
}

func equalStrings(a, b []string) bool {
	a, b = sortedCopy(a), sortedCopy(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// evaluate runs a policy chain and folds the result into one action and
// whether that action makes a new private key.
func evaluate(chain []policy, in policyInput) (ActionKind, bool, []Reason) {
	kind := ActionKeep
	var reasons []Reason
	for _, p := range chain {
		rs := p.fn(in)
		if len(rs) == 0 {
			continue
		}
		if p.kind.strength() > kind.strength() {
			kind = p.kind
		}
		reasons = append(reasons, rs...)
		if p.kind == ActionCreate {
			break // nothing else can be said about an object that does not exist
		}
	}
	newKey := kind == ActionCreate || kind == ActionRekey
	// A changed key algorithm always needs a new key.
	if kind == ActionReissue && in.o != nil {
		if old, ok := storedShape(in.o); ok && old.KeyAlgorithm != in.d.Shape.KeyAlgorithm {
			kind, newKey = ActionRekey, true
		}
	}
	// A renewal or reissue under rotationPolicy Always makes a new key too.
	if r := rotation(in, kind); r != nil {
		if kind == ActionRenew {
			kind = ActionRekey
		}
		newKey = true
		reasons = append(reasons, *r)
	}
	return kind, newKey, reasons
}

// rotation is the key rotation policy: Always makes a new key whenever a
// certificate is renewed or reissued, Never keeps the key.
func rotation(in policyInput, kind ActionKind) *Reason {
	if (kind == ActionRenew || kind == ActionReissue) && in.d.Rotation == "Always" {
		return &Reason{Code: ReasonRotation, Detail: "rotationPolicy Always: new private key"}
	}
	return nil
}
