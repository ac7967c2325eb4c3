// Package status answers "what expires when" from the public material of a
// state tree: one row per certificate, CA and key pair with its expiry and the
// time gitca renews it. It never decrypts and needs no key, so it runs in CI,
// on a laptop, or behind /metrics.
package status

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// Status is what a row needs from its owner, worst first in Worst.
type Status string

const (
	OK      Status = "ok"
	Overdue Status = "renewal-overdue" // past its renewal time and not renewed yet
	Expired Status = "expired"
	Missing Status = "missing" // declared in the topology, not in the state yet
	// CSRPending: a CA whose issuer is offline has a key and a request, and
	// waits for the certificate signed for it (gitca csr).
	CSRPending Status = "csr-pending"
)

// Where RenewsAt comes from. Records store their validity (gitca.dev/spec) but
// not their renewBefore, so without the topology the time is gitca's default.
const (
	FromTopology = "topology" // the topology's renewBefore, as the plan uses it
	FromDefault  = "default"  // the built-in default: 30 days for a CA, a third of the validity otherwise
)

// Row is one certificate, CA or key pair.
type Row struct {
	ID        string          `json:"id"`
	Kind      plan.ObjectKind `json:"kind"`
	Name      string          `json:"name"`
	Cluster   string          `json:"cluster,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
	// Issuer is the issuing CA's name; empty for a self-signed CA, a key pair
	// or an imported CA.
	Issuer   string `json:"issuer,omitempty"`
	Imported bool   `json:"imported,omitempty"`
	// Algorithm is the key algorithm the record was made with.
	Algorithm string     `json:"keyAlgorithm,omitempty"`
	NotBefore *time.Time `json:"notBefore,omitempty"`
	NotAfter  *time.Time `json:"notAfter,omitempty"`
	// RenewsAt is when the plan renews the certificate (notAfter −
	// renewBefore); for an imported CA, which gitca cannot renew, when it
	// starts warning that a new one must be imported.
	RenewsAt     *time.Time `json:"renewsAt,omitempty"`
	RenewBefore  string     `json:"renewBefore,omitempty"`
	RenewsAtFrom string     `json:"renewsAtFrom,omitempty"`
	Status       Status     `json:"status"`
	Path         string     `json:"path,omitempty"`
	// Phase is the step of a CA or key pair rotation in flight (add, switch),
	// and PhaseSince when it started; empty when none is.
	Phase      string     `json:"phase,omitempty"`
	PhaseSince *time.Time `json:"phaseSince,omitempty"`
}

// Report is the expiry status of a state tree at one instant.
type Report struct {
	Now time.Time `json:"now"`
	// Certificates are leaf certificates and kubeconfigs, CertificateAuthorities
	// the CAs, each sorted by expiry (soonest first), then ID; KeyPairs by ID.
	Certificates           []Row `json:"certificates"`
	CertificateAuthorities []Row `json:"certificateAuthorities"`
	KeyPairs               []Row `json:"keyPairs"`
	// Estimated is set when some RenewsAt is the default rather than the topology's.
	Estimated bool `json:"renewsAtEstimated,omitempty"`
}

// New builds the report of st at now. With t, renewal times come from its
// renewBefore and every declared object not yet in the state is listed as
// missing; t may be nil.
func New(st *state.State, t *topology.Topology, now time.Time) *Report {
	now = now.UTC()
	r := &Report{Now: now, Certificates: []Row{}, CertificateAuthorities: []Row{}, KeyPairs: []Row{}}
	declared := map[string]*plan.Desired{}
	var order []string
	if t != nil {
		for _, d := range plan.DesiredObjects(t, plan.Recipients{}) {
			declared[d.ID] = d
			order = append(order, d.ID)
		}
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range st.Primary {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range order {
		if st.Primary[id] == nil {
			ids = append(ids, id)
		}
	}
	copies := copiesByID(st)
	layout := plan.LayoutOf(cmp.Or(t, &topology.Topology{}))
	for _, id := range ids {
		row := r.row(layout, st.Primary[id], declared[id], copies[id])
		switch row.Kind {
		case plan.KindCA:
			r.CertificateAuthorities = append(r.CertificateAuthorities, row)
		case plan.KindKeyPair:
			r.KeyPairs = append(r.KeyPairs, row)
		case plan.KindCert, plan.KindKubeconfig:
			r.Certificates = append(r.Certificates, row)
		default:
			continue // a record of a kind this version does not know
		}
		if row.RenewsAtFrom == FromDefault {
			r.Estimated = true
		}
	}
	byExpiry := func(a, b Row) int {
		switch {
		case a.NotAfter == nil && b.NotAfter == nil:
		case a.NotAfter == nil:
			return 1
		case b.NotAfter == nil:
			return -1
		default:
			if c := a.NotAfter.Compare(*b.NotAfter); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.ID, b.ID)
	}
	slices.SortStableFunc(r.Certificates, byExpiry)
	slices.SortStableFunc(r.CertificateAuthorities, byExpiry)
	slices.SortStableFunc(r.KeyPairs, func(a, b Row) int { return cmp.Compare(a.ID, b.ID) })
	return r
}

// copiesByID is the first copy (by path) of each CA delivered into a cluster:
// a CA record lives under ca/, its copy says which cluster uses it.
func copiesByID(st *state.State) map[string]*state.Object {
	out := map[string]*state.Object{}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range st.Copies {
			if !yield(p) {
				return
			}
		}
	}) {
		o := st.Copies[p]
		if out[o.ID] == nil {
			out[o.ID] = o
		}
	}
	return out
}

func (r *Report) row(layout plan.Layout, o *state.Object, d *plan.Desired, copied *state.Object) Row {
	var row Row
	if d != nil {
		row = Row{ID: d.ID, Kind: d.Kind, Name: d.Name, Issuer: d.Shape.Issuer, Algorithm: d.Shape.KeyAlgorithm, Path: d.Path}
		row.Cluster, row.Namespace = d.Secret.Cluster, d.Secret.Namespace
		if d.Copy != nil {
			row.Cluster, row.Namespace = d.Copy.Cluster, d.Copy.Namespace
		} else if d.Kind == plan.KindCA {
			row.Cluster = d.Annotations[topology.AnnotationCluster]
		}
		row.Imported = d.CA != nil && d.CA.Spec.Import != nil
	} else {
		kind, name, _ := cutID(o.ID)
		row = Row{ID: o.ID, Kind: kind, Name: name, Issuer: o.Annotations[state.AnnotationIssuer], Path: o.Path}
		var sh plan.Shape
		if json.Unmarshal([]byte(o.Annotations[state.AnnotationSpec]), &sh) == nil {
			row.Algorithm, row.Imported = sh.KeyAlgorithm, sh.Imported != ""
		}
		where := o
		if copied != nil {
			where = copied
		}
		row.Cluster, row.Namespace = layout.ClusterOf(where.Path), namespaceOf(where.Raw)
		if copied == nil && kind == plan.KindCA {
			// ca/<name>.yaml is in no overlay; a preset still says whose CA it is.
			row.Cluster, row.Namespace = o.Annotations[topology.AnnotationCluster], ""
		}
	}
	if o == nil {
		row.Status = Missing
		return row
	}
	row.Path = o.Path
	if ph := o.Annotations[plan.AnnotationRotationPhase]; ph != "" {
		row.Phase = ph
		if since, err := time.Parse(time.RFC3339, o.Annotations[plan.AnnotationRotationSince]); err == nil {
			since = since.UTC()
			row.PhaseSince = &since
		}
	}
	if o.NotAfter.IsZero() {
		row.Status = OK // a key pair: nothing expires
		if row.Kind == plan.KindCA {
			row.Status = CSRPending
		}
		return row
	}
	nb, na := o.NotBefore.UTC(), o.NotAfter.UTC()
	row.NotBefore, row.NotAfter = &nb, &na
	before, from := time.Duration(0), FromTopology
	if d != nil {
		before = d.RenewBefore
	}
	if before <= 0 {
		before, from = defaultRenewBefore(row.Kind, o), FromDefault
	}
	at := na.Add(-before)
	row.RenewsAt, row.RenewBefore, row.RenewsAtFrom = &at, topology.Duration{Duration: before}.String(), from
	switch {
	case !r.Now.Before(na):
		row.Status = Expired
	case !r.Now.Before(at):
		row.Status = Overdue
	default:
		row.Status = OK
	}
	return row
}

func cutID(id string) (plan.ObjectKind, string, bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return plan.ObjectKind(id[:i]), id[i+1:], true
		}
	}
	return "", id, false
}

// defaultRenewBefore is the built-in renewBefore (topology.Default) of a
// record whose Config sets none: a CA's is thirty days when that fits in its
// validity, everything else's a third of its validity.
func defaultRenewBefore(kind plan.ObjectKind, o *state.Object) time.Duration {
	v := validityOf(o)
	if v <= 0 {
		v = o.NotAfter.Sub(o.NotBefore) // an imported CA: its own lifetime
	}
	if kind == plan.KindCA && topology.DefaultCARenewBefore < v {
		return topology.DefaultCARenewBefore
	}
	return v / 3
}

// validityOf is the validity a record was made with, from its stored spec.
func validityOf(o *state.Object) time.Duration {
	var sh plan.Shape
	if json.Unmarshal([]byte(o.Annotations[state.AnnotationSpec]), &sh) != nil || sh.Validity == "" {
		return 0
	}
	v, err := time.ParseDuration(sh.Validity)
	if err != nil {
		return 0
	}
	return v
}

// namespaceOf reads metadata.namespace of a record; the state reader keeps
// only annotations.
func namespaceOf(raw []byte) string {
	var doc struct {
		Metadata struct {
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
	}
	if yaml.Unmarshal(raw, &doc) != nil {
		return ""
	}
	return doc.Metadata.Namespace
}

// Rows is every row, certificates first, then CAs, then key pairs.
func (r *Report) Rows() []Row {
	return slices.Concat(r.Certificates, r.CertificateAuthorities, r.KeyPairs)
}

// Warning is a row that needs attention within a window, and why.
type Warning struct {
	Row
	Why string
}

// Warnings lists what expires within the window from Now, or is already past
// its renewal time: a reconciler that ran would have renewed it, so either
// none ran or its renewal fails. A missing object is not a warning: the next
// run creates it.
func (r *Report) Warnings(within time.Duration) []Warning {
	var out []Warning
	for _, row := range r.Rows() {
		switch {
		case row.NotAfter == nil:
		case !r.Now.Before(*row.NotAfter):
			out = append(out, Warning{row, "expired " + row.NotAfter.Format(time.RFC3339)})
		case !row.NotAfter.After(r.Now.Add(within)):
			out = append(out, Warning{row, "expires " + row.NotAfter.Format(time.RFC3339) + ", within " + topology.Duration{Duration: within}.String()})
		case row.Status == Overdue && row.Imported:
			out = append(out, Warning{row, "an imported CA: gitca cannot renew it, import a new one before " + row.NotAfter.Format(time.RFC3339)})
		case row.Status == Overdue:
			out = append(out, Warning{row, "renewal overdue since " + row.RenewsAt.Format(time.RFC3339)})
		}
	}
	return out
}
