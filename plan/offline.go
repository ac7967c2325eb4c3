package plan

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// A CA below an offline issuer (a CA imported without its key) cannot be
// signed here. gitca makes its key and a certificate signing request on
// request (gitca csr), keeps the key sealed in the CA's record beside the
// request, and writes the request as ca/<name>.csr for the pull request; a
// person signs it with the offline key and commits the certificate to the
// topology (spec.signedCertificate). Until then the CA, and everything that
// needs it, waits.
const (
	// ActionRequest makes a key (or takes the stored one) and a certificate
	// signing request; nothing is signed.
	ActionRequest ActionKind = "request"
	// ActionWait: nothing can be done before someone signs a request; the
	// object and its files stay as they are.
	ActionWait ActionKind = "wait"
)

// Reasons of a CA signed offline, and of what waits for it.
const (
	ReasonCSRPending   = "csr-pending"   // waits for a request (gitca csr) or for its signature
	ReasonCSRRequested = "csr-requested" // gitca csr: a key and a request are made
	ReasonCSRSigned    = "csr-signed"    // spec.signedCertificate fits the request: it becomes the CA's certificate
)

// KeyCSR is the request a record keeps beside its key while it waits for
// the certificate (plain, MAC-covered: the plan checks a signed certificate
// against its public key without decrypting anything).
const KeyCSR = "tls.csr"

// FileCSR is ca/<name>.csr, the request for a reviewer and the signer.
const FileCSR FileKind = "csr"

// CACSR is where a CA's certificate signing request is published.
func (l Layout) CACSR(name string) string { return caDir + "/" + name + ".csr" }

// offlinePlan is what the plan decided for CAs signed offline.
type offlinePlan struct {
	requested map[string]bool // CAs gitca csr asks a request for
	// keep are the request files that stay (a request still waiting).
	keep map[string]bool
	// signed are the certificates the run takes from spec.signedCertificate, by CA ID.
	signed map[string]*x509.Certificate
}

// OfflineIssued reports whether a desired record is a CA signed offline.
func (p *Plan) OfflineIssued(d *Desired) bool {
	return d != nil && d.Kind == KindCA && p.Topology.OfflineIssued(d.CA)
}

// SignedCertificate is the certificate a run installs for a CA signed
// offline (an action csr-signed), as the plan checked it; nil otherwise.
func (p *Plan) SignedCertificate(id string) *x509.Certificate { return p.off.signed[id] }

// offlineDecision is the plan of one CA signed offline.
type offlineDecision struct {
	action  ActionKind
	newKey  bool
	reasons []Reason
	cert    *x509.Certificate // its certificate after the run, when known
}

// planOffline decides a CA signed offline. o is its record (nil when none).
func (p *Plan) planOffline(d *Desired, o *state.Object, now time.Time) (*offlineDecision, *topology.FieldError) {
	name, issuer := d.Name, d.CA.Spec.Issuer
	csrPath := p.Layout.CACSR(name)
	spec := d.CA.Spec
	fail := func(field, msg, allowed string) *topology.FieldError {
		return &topology.FieldError{Pos: d.Origin.At(field), Field: field, Msg: d.ID + ": " + msg, Allowed: allowed}
	}
	var signed *x509.Certificate
	if f := spec.SignedCertificate; f != "" {
		c, err := importedCert(p.Topology.Root, f)
		if err != nil {
			return nil, fail("spec.signedCertificate", err.Error(), "a PEM certificate signed for "+csrPath)
		}
		signed = c
	}
	var stored *x509.Certificate
	var csr *x509.CertificateRequest
	if o != nil {
		stored = o.Cert()
		if raw := o.PlainValues()[KeyCSR]; raw != "" {
			c, err := sign.ParseCertificateRequestPEM([]byte(raw))
			if err != nil {
				return nil, fail("spec.signedCertificate", fmt.Sprintf("%s: %s: %v", o.Path, KeyCSR, err), "gitca csr "+name+" writes the request again")
			}
			csr = c
		}
		if len(o.Problems) > 0 {
			return nil, fail("spec.issuer", fmt.Sprintf("%s is damaged (%s): gitca cannot re-key a CA whose issuer is offline", o.Path, strings.Join(o.Problems, "; ")),
				"restore the record from git history, or delete it and run gitca csr "+name+" for a new key")
		}
	}
	fresh := signed != nil && (stored == nil || !bytes.Equal(signed.Raw, stored.Raw))
	if fresh {
		if p.off.requested[name] {
			return nil, fail("spec.signedCertificate", spec.SignedCertificate+" is not installed yet, and gitca csr asks for a new request",
				"render first to install it, or remove spec.signedCertificate")
		}
		var pub crypto.PublicKey
		switch {
		case csr != nil:
			pub = csr.PublicKey
		case stored != nil:
			pub = stored.PublicKey
		default:
			return nil, fail("spec.signedCertificate", fmt.Sprintf("%s: gitca holds no key for %s yet, so no certificate can be its", spec.SignedCertificate, name),
				"run gitca csr "+name+", have "+csrPath+" signed by "+issuer+", and commit that certificate")
		}
		root := p.CA(issuer)
		if root == nil || root.Cert == nil {
			return nil, fail("spec.issuer", "the offline issuer "+issuer+" has no certificate", "")
		}
		if problems := checkSigned(signed, root.Cert, pub, csr, d, now); len(problems) > 0 {
			return nil, fail("spec.signedCertificate", spec.SignedCertificate+": "+strings.Join(problems, "; "),
				"the certificate "+issuer+" signed for "+csrPath+", as the topology declares it")
		}
		p.off.signed[d.ID] = signed
		detail := fmt.Sprintf("%s, signed by %s (serial %s), valid until %s, becomes the certificate of the key in %s",
			spec.SignedCertificate, issuer, shortSerial(signed.SerialNumber.Text(16)), signed.NotAfter.UTC().Format(time.RFC3339), d.Path)
		return &offlineDecision{action: ActionReissue, reasons: []Reason{{Code: ReasonCSRSigned, Detail: detail}}, cert: signed}, nil
	}
	switch {
	case p.off.requested[name] && o == nil:
		return &offlineDecision{action: ActionRequest, newKey: true, reasons: []Reason{{Code: ReasonCSRRequested,
			Detail: fmt.Sprintf("a new key, and %s asks %s for its certificate", csrPath, issuer)}}}, nil
	case p.off.requested[name]:
		what := "the request for the key in " + d.Path + " is written again"
		if stored != nil {
			what = "a renewal request for the key in " + d.Path
		}
		return &offlineDecision{action: ActionRequest, reasons: []Reason{{Code: ReasonCSRRequested, Detail: what + " (" + csrPath + ")"}}, cert: stored}, nil
	case o == nil:
		return &offlineDecision{action: ActionWait, reasons: []Reason{{Code: ReasonCSRPending,
			Detail: fmt.Sprintf("no key yet: gitca csr %s makes one and a request for %s to sign", name, issuer)}}}, nil
	case stored == nil:
		p.off.keep[csrPath] = true
		return &offlineDecision{action: ActionWait, reasons: []Reason{{Code: ReasonCSRPending,
			Detail: fmt.Sprintf("%s waits for %s's signature: commit the certificate and set spec.signedCertificate", csrPath, issuer)}}}, nil
	}
	if csr != nil {
		p.off.keep[csrPath] = true // a renewal request still waiting
	}
	return nil, nil
}

// offlineKept is a CA signed offline that keeps its certificate: it can
// move and follow its recipients, never be re-keyed or renewed here.
var offlineKept = []policy{
	{ReasonMoved, ActionReencrypt, moved},
	{ReasonRecipients, ActionReencrypt, recipientsChanged},
}

// offlineWarnings say what a person must do for a CA signed offline that
// keeps its certificate: renew it in time, sign the request that waits, or
// replace a certificate that no longer fits the topology.
func (p *Plan) offlineWarnings(a *Action) []string {
	d, c := a.Desired, a.Cert
	if c == nil {
		return nil
	}
	var out []string
	if d.CA.Spec.SignedCertificate == "" {
		out = append(out, fmt.Sprintf("%s: spec.signedCertificate is not set; the certificate in %s stays", a.ID, d.Path))
	}
	if rb := d.RenewBefore; rb > 0 && !c.NotAfter.After(p.Now.Add(rb)) {
		out = append(out, fmt.Sprintf("%s: its certificate expires %s and its issuer %s is offline: gitca csr %s writes a renewal request for the same key",
			a.ID, c.NotAfter.UTC().Format(time.RFC3339), d.CA.Spec.Issuer, d.Name))
	}
	if root := p.CA(d.CA.Spec.Issuer); root != nil && root.Cert != nil {
		if problems := checkSigned(c, root.Cert, c.PublicKey, nil, d, p.Now); len(problems) > 0 {
			out = append(out, fmt.Sprintf("%s: its certificate no longer fits the topology (%s): gitca csr %s, and commit the certificate signed for it",
				a.ID, strings.Join(problems, "; "), d.Name))
		}
	}
	return out
}

// checkSigned says what is wrong with a certificate signed offline for a
// CA: every check a verifier or a child certificate would trip on later,
// each named, so the person who signed it knows what to sign again.
func checkSigned(c, root *x509.Certificate, pub crypto.PublicKey, csr *x509.CertificateRequest, d *Desired, now time.Time) []string {
	var out []string
	if !sign.SamePublicKey(c.PublicKey, pub) {
		out = append(out, "its public key is not the one gitca holds for "+d.Name+" (signed for another request?)")
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		out = append(out, "not a CA certificate: basicConstraints CA:TRUE is missing (sign it with basicConstraints=critical,CA:TRUE)")
	}
	if !bytes.Equal(c.RawIssuer, root.RawSubject) || c.CheckSignatureFrom(root) != nil {
		out = append(out, fmt.Sprintf("not signed by %s (spec.issuer, %s): its issuer is %s", d.CA.Spec.Issuer, root.Subject, c.Issuer))
	}
	if c.IsCA {
		want, got := intText(d.CA.Spec.PathLen), certPathLen(c)
		if want != got {
			out = append(out, fmt.Sprintf("pathLen %s, the topology asks for %s (spec.pathLen)", orNone(got), orNone(want)))
		}
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
			out = append(out, "keyUsage lacks keyCertSign: it could sign no certificate")
		}
	}
	switch {
	case !now.Before(c.NotAfter):
		out = append(out, "expired "+c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		out = append(out, "not valid before "+c.NotBefore.UTC().Format(time.RFC3339))
	}
	if c.NotBefore.Before(root.NotBefore) || c.NotAfter.After(root.NotAfter) {
		out = append(out, fmt.Sprintf("valid %s to %s, outside %s's validity (%s to %s)", day(c.NotBefore), day(c.NotAfter),
			d.CA.Spec.Issuer, day(root.NotBefore), day(root.NotAfter)))
	}
	if csr != nil && !bytes.Equal(c.RawSubject, csr.RawSubject) {
		out = append(out, fmt.Sprintf("subject %s, the request asked for %s", c.Subject, csr.Subject))
	}
	if len(out) > 0 {
		return out
	}
	// What the checks above do not name (the issuer's own pathLen, name
	// constraints, key usages) a verifier still would.
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		out = append(out, "does not verify against "+d.CA.Spec.Issuer+": "+err.Error())
	}
	return out
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// certPathLen is a CA certificate's path length constraint as the topology
// writes it: "" for none.
func certPathLen(c *x509.Certificate) string {
	if c.MaxPathLen < 0 || (c.MaxPathLen == 0 && !c.MaxPathLenZero) {
		return ""
	}
	return fmt.Sprint(c.MaxPathLen)
}

// waitBehind makes an object wait when what it needs waits: its issuer, a
// kubeconfig's target CA, or a merged kubeconfig's member.
func (p *Plan) waitBehind(a *Action) {
	d := a.Desired
	waits := func(id string) bool { return p.byID[id].waitsForCert() }
	on := ""
	switch {
	case d.Shape.Issuer != "" && waits(string(KindCA)+"/"+d.Shape.Issuer):
		on = string(KindCA) + "/" + d.Shape.Issuer
	case d.Kind == KindKubeconfig && waits(string(KindCA)+"/"+d.Kubeconfig.Spec.Target.CA):
		on = string(KindCA) + "/" + d.Kubeconfig.Spec.Target.CA
	case d.Kind == KindMergedKubeconfig:
		for _, m := range d.Members {
			if waits(m.ID) {
				on = m.ID
				break
			}
		}
	}
	if on == "" {
		return
	}
	a.Action, a.Rekeys, a.Cert = ActionWait, false, nil
	a.Reasons = []Reason{{Code: ReasonCSRPending, Detail: on + " waits for its certificate"}}
}

// waitsForCert reports whether an object has no certificate after the
// run because it waits for one signed offline: it waits, or its request is
// made in this run.
func (a *Action) waitsForCert() bool {
	return a != nil && (a.Action == ActionWait || a.Action == ActionRequest && a.Cert == nil)
}

// waitingCA reports whether a CA waits for its certificate: trust files
// leave it out until then.
func (p *Plan) waitingCA(name string) bool { return p.CA(name).waitsForCert() }

// planOfflineFiles lists the request files a run writes, deletes or keeps.
func (p *Plan) planOfflineFiles(st *state.State, wanted map[string]bool) {
	for path := range p.off.keep {
		wanted[path] = true
	}
	for _, a := range p.Objects {
		if !p.OfflineIssued(a.Desired) {
			continue
		}
		path := p.Layout.CACSR(a.Name)
		switch {
		case a.Action == ActionRequest:
			wanted[path] = true
			action := FileCreate
			if st.Has(path) {
				action = FileUpdate
			}
			p.addFile(&File{Path: path, Kind: FileCSR, Action: action, Owner: a.ID, Reasons: objectReasons(a)})
		case p.off.signed[a.ID] != nil && st.Has(path) && !wanted[path]:
			p.addFile(&File{Path: path, Kind: FileCSR, Action: FileDelete, Owner: a.ID,
				Reasons: []Reason{{Code: ReasonCSRSigned, Detail: "the request is answered by " + a.Desired.CA.Spec.SignedCertificate}}})
		}
	}
}

// checkRequests refuses gitca csr for a name that is not a CA signed offline.
func checkRequests(t *topology.Topology, names []string) error {
	for _, n := range names {
		ca := t.CA(n)
		switch {
		case ca == nil:
			return fmt.Errorf("gitca csr: no CertificateAuthority %q in the topology", n)
		case !t.OfflineIssued(ca):
			var offline []string
			for _, c := range t.CAs {
				if t.OfflineIssued(c) {
					offline = append(offline, c.Metadata.Name)
				}
			}
			slices.Sort(offline)
			return fmt.Errorf("gitca csr: CertificateAuthority %s is not signed by an offline CA (an imported CA without its key), so gitca signs it; CAs below an offline one: %s",
				n, orNone(strings.Join(offline, ", ")))
		}
	}
	return nil
}
