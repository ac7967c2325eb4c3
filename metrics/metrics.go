// Package metrics exposes gitca to Prometheus: the expiry gauges of every
// certificate in the state (named after cert-manager's certmanager_certificate_*
// so dashboards and alerts carry over), how the reconcile loop is doing, and
// the /healthz and /readyz probes of a long-running reconciler.
package metrics

import (
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/gitca-dev/gitca/status"
)

// Metric names. The certificate gauges mirror cert-manager's
// certmanager_certificate_{expiration,not_before,renewal}_timestamp_seconds.
const (
	CertificateExpiration = "gitca_certificate_expiration_timestamp_seconds"
	CertificateNotBefore  = "gitca_certificate_not_before_timestamp_seconds"
	CertificateRenewal    = "gitca_certificate_renewal_timestamp_seconds"
	ReconcileDuration     = "gitca_reconcile_duration_seconds"
	ReconcileLastSuccess  = "gitca_reconcile_last_success_timestamp_seconds"
	ReconcileErrors       = "gitca_reconcile_errors_total"
	PlanActions           = "gitca_plan_actions"
	// RotationPhaseStart is when the phase (add, switch) of a rotation in
	// flight started, per CA or key pair (labels name, phase); no series
	// when nothing rotates, so an alert can fire on a phase stuck past its soak.
	RotationPhaseStart = "gitca_rotation_phase_start_timestamp_seconds"
)

// CertificateLabels are the labels of the per-object gauges, in order.
var CertificateLabels = []string{"name", "kind", "cluster", "namespace", "issuer"}

var (
	expirationDesc = prometheus.NewDesc(CertificateExpiration,
		"The date after which the certificate expires (its notAfter), as a Unix timestamp.", CertificateLabels, nil)
	notBeforeDesc = prometheus.NewDesc(CertificateNotBefore,
		"The date before which the certificate is not valid (its notBefore), as a Unix timestamp.", CertificateLabels, nil)
	rotationDesc = prometheus.NewDesc(RotationPhaseStart,
		"When the current phase of a CA or key pair rotation started, as a Unix timestamp.", []string{"name", "phase"}, nil)
	renewalDesc = prometheus.NewDesc(CertificateRenewal,
		"The date after which gitca renews the certificate (notAfter minus renewBefore), as a Unix timestamp; for an imported CA, when a new one must be imported.", CertificateLabels, nil)
)

// Certificates is a collector of the three per-object gauges of the last
// status report it was given. Each scrape reports exactly that report, so a
// deleted certificate's series disappear with it.
type Certificates struct {
	mu   sync.Mutex
	rows []status.Row
}

// Set replaces the report the gauges show.
func (c *Certificates) Set(r *status.Report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = nil
	if r != nil {
		c.rows = r.Rows()
	}
}

// Describe implements prometheus.Collector.
func (c *Certificates) Describe(ch chan<- *prometheus.Desc) {
	ch <- expirationDesc
	ch <- notBeforeDesc
	ch <- renewalDesc
	ch <- rotationDesc
}

// Collect implements prometheus.Collector.
func (c *Certificates) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rows := c.rows
	c.mu.Unlock()
	for _, row := range rows {
		if row.Phase != "" && row.PhaseSince != nil {
			ch <- prometheus.MustNewConstMetric(rotationDesc, prometheus.GaugeValue, unix(*row.PhaseSince), row.Name, row.Phase)
		}
		if row.NotAfter == nil {
			continue // key pairs, and what is declared but not made yet
		}
		labels := []string{row.Name, string(row.Kind), row.Cluster, row.Namespace, row.Issuer}
		ch <- prometheus.MustNewConstMetric(expirationDesc, prometheus.GaugeValue, unix(*row.NotAfter), labels...)
		ch <- prometheus.MustNewConstMetric(notBeforeDesc, prometheus.GaugeValue, unix(*row.NotBefore), labels...)
		if row.RenewsAt != nil {
			ch <- prometheus.MustNewConstMetric(renewalDesc, prometheus.GaugeValue, unix(*row.RenewsAt), labels...)
		}
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// WriteTextfile writes the certificate gauges of r in the Prometheus text
// format, for node-exporter's textfile collector.
func WriteTextfile(w io.Writer, r *status.Report) error {
	reg := prometheus.NewPedanticRegistry()
	c := &Certificates{}
	c.Set(r)
	if err := reg.Register(c); err != nil {
		return err
	}
	return write(w, reg)
}

func write(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
