package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/state"
)

// A CA with spec.crl keeps its revocation list in its own record: the
// signed list as the plain value ca.crl (so its delivered copy and
// export carry it), and what the list holds as a plain, MAC-covered
// annotation, so a plan knows without decrypting or parsing which serials
// it lists, until when, and when it must be signed again.
const (
	KeyCRL        = "ca.crl"
	AnnotationCRL = "gitca.dev/crl"
)

// Reasons a CA's record changes for its revocation list; each comes from
// planCRL.
const (
	ReasonCRLMissing  = "crl-missing"  // spec.crl is declared, the record holds no list yet
	ReasonCRLRevoked  = "crl-revoked"  // a certificate the CA issued left the topology while still valid
	ReasonCRLPruned   = "crl-pruned"   // listed certificates expired: nothing accepts them any more
	ReasonCRLRenewal  = "crl-renewal"  // the list's nextUpdate comes within renewBefore
	ReasonCRLDisabled = "crl-disabled" // spec.crl was removed: the list leaves the record
)

// CRL is a revocation list as the plan decides it; apply signs exactly this.
type CRL struct {
	Number     int64      `json:"number"`
	ThisUpdate time.Time  `json:"thisUpdate"`
	NextUpdate time.Time  `json:"nextUpdate"`
	Revoked    []CRLEntry `json:"revoked"`
}

// CRLEntry is one revoked certificate: its serial, the object it was
// issued for (for a reviewer), when it was revoked and when it expires, after
// which it leaves the list.
type CRLEntry struct {
	Serial    string    `json:"serial"` // lower-case hex, as openssl prints it without colons
	Object    string    `json:"object"`
	RevokedAt time.Time `json:"revokedAt"`
	NotAfter  time.Time `json:"notAfter"`
}

// SerialNumber is the entry's serial as a number.
func (e CRLEntry) SerialNumber() (*big.Int, bool) { return new(big.Int).SetString(e.Serial, 16) }

// CRLWork is what a run does with a CA's list when it writes the CA's
// record: sign Sign anew, or carry the stored list (Keep) when the record is
// written for another reason with the same key and subject.
type CRLWork struct {
	Sign *CRL
	Keep string
}

// CRLWork is the list work of a CA's record, nil when it publishes none.
func (p *Plan) CRLWork(id string) *CRLWork { return p.crls[id] }

// storedCRL reads the list a record holds; false when it holds none or
// its annotation cannot be read (a hand edit: the list is signed anew).
func storedCRL(o *state.Object) (CRL, string, bool) {
	if o == nil {
		return CRL{}, "", false
	}
	raw, pem := o.Annotations[AnnotationCRL], o.PlainValues()[KeyCRL]
	var c CRL
	if raw == "" || pem == "" || json.Unmarshal([]byte(raw), &c) != nil {
		return CRL{}, pem, false
	}
	return c, pem, true
}

// revokedThisRun are the certificates the run deletes while they are still
// valid, by the CA that issued them: what its list gains. A generation
// record retired by a rotation is no certificate leaving.
func (p *Plan) revokedThisRun() map[string][]CRLEntry {
	out := map[string][]CRLEntry{}
	for _, a := range p.Objects {
		if a.Action != ActionDelete || a.Stored == nil || a.retiring {
			continue
		}
		switch a.Kind {
		case KindCert, KindKubeconfig, KindCA:
		default:
			continue
		}
		ca := a.Stored.Annotations[state.AnnotationIssuer]
		c := a.Stored.Cert()
		if ca == "" || c == nil || !p.Now.Before(c.NotAfter) {
			continue
		}
		out[ca] = append(out[ca], CRLEntry{Serial: c.SerialNumber.Text(16), Object: a.ID, RevokedAt: p.Now, NotAfter: c.NotAfter.UTC()})
	}
	return out
}

// planCRLs decides, once every object and deletion is planned, each CA's
// revocation list. A list that changes rewrites the CA's record (an
// update-chain that is no chain change: nothing below it follows).
func (p *Plan) planCRLs(st *state.State) {
	revoked := p.revokedThisRun()
	p.crls = map[string]*CRLWork{}
	for _, a := range p.Objects {
		d := a.Desired
		if a.Kind != KindCA || d == nil || d.CA == nil || a.Action == ActionDelete || a.Action == ActionWait || p.GenerationRole(a.ID) != "" {
			continue
		}
		p.planCRL(a, st.Primary[a.ID], revoked[d.Name])
	}
}

// planCRL decides one CA's list. before is the CA's signing record before
// the run: at a rotation's Switch the record is made from another one, and
// the list carries over to the generation that signs from then on.
func (p *Plan) planCRL(a *Action, before *state.Object, revoked []CRLEntry) {
	d := a.Desired
	prev, prevPEM, ok := storedCRL(before)
	policy := d.CA.Spec.CRL
	if policy == nil {
		if prevPEM != "" || (before != nil && before.Annotations[AnnotationCRL] != "") {
			a.addCRLReasons(Reason{Code: ReasonCRLDisabled, Detail: "spec.crl is not declared: " + KeyCRL + " leaves the record"})
		}
		return
	}
	validity, renewBefore := policy.Get()
	var reasons []Reason
	if !ok && before != nil && a.Action != ActionCreate {
		reasons = append(reasons, Reason{Code: ReasonCRLMissing, Detail: "spec.crl: the CA publishes its first revocation list"})
	}
	var want []CRLEntry
	var pruned []string
	for _, e := range prev.Revoked {
		if p.Now.Before(e.NotAfter) {
			want = append(want, e)
		} else {
			pruned = append(pruned, e.Object)
		}
	}
	for _, e := range revoked {
		if slices.ContainsFunc(want, func(w CRLEntry) bool { return w.Serial == e.Serial }) {
			continue
		}
		want = append(want, e)
		reasons = append(reasons, Reason{Code: ReasonCRLRevoked, Detail: fmt.Sprintf("%s (serial %s) left the topology; listed until it expires %s",
			e.Object, shortSerial(e.Serial), e.NotAfter.Format(time.RFC3339))})
	}
	if len(pruned) > 0 {
		reasons = append(reasons, Reason{Code: ReasonCRLPruned, Detail: fmt.Sprintf("%d expired certificate(s) leave the list: %s", len(pruned), listSome(pruned, 3))})
	}
	if ok {
		if at := prev.NextUpdate.Add(-renewBefore); !p.Now.Before(at) {
			reasons = append(reasons, Reason{Code: ReasonCRLRenewal, Detail: fmt.Sprintf("nextUpdate %s; signed anew from %s", prev.NextUpdate.Format(time.RFC3339), at.Format(time.RFC3339))})
		}
	}
	slices.SortFunc(want, func(x, y CRLEntry) int { return strings.Compare(x.Serial, y.Serial) })
	// A new key or certificate (a rotation's Switch included) signs a list
	// that no longer verifies against the stored one's issuer.
	resign := len(reasons) > 0 || a.NewCert() || a.NewKey() || a.Stored != before || a.Action == ActionRequest
	switch {
	case resign:
		a.addCRLReasons(reasons...)
		crl := &CRL{Number: prev.Number + 1, ThisUpdate: p.Now, NextUpdate: p.Now.Add(validity), Revoked: want}
		if crl.Revoked == nil {
			crl.Revoked = []CRLEntry{}
		}
		p.crls[a.ID] = &CRLWork{Sign: crl}
		d.setAnnotation(AnnotationCRL, mustJSON(crl))
	case ok:
		p.crls[a.ID] = &CRLWork{Keep: prevPEM}
		d.setAnnotation(AnnotationCRL, before.Annotations[AnnotationCRL])
	}
}

// addCRLReasons records why a CA's record is written for its list; a kept
// record becomes an update-chain, which moves nothing below it.
func (a *Action) addCRLReasons(rs ...Reason) {
	if len(rs) == 0 {
		return
	}
	if a.Action == ActionKeep {
		a.Action = ActionUpdateChain
	}
	a.Reasons = append(a.Reasons, rs...)
}

// setAnnotation sets one annotation of the desired record, on a copy: the
// map may be the topology object's own.
func (d *Desired) setAnnotation(k, v string) {
	ann := maps.Clone(d.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[k] = v
	d.Annotations = ann
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings, numbers and times always marshal
	}
	return string(b)
}

// shortSerial keeps a 40-digit serial readable in a plan line.
func shortSerial(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:16] + "…"
}
