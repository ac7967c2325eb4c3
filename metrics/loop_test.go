package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/reconcile"
	"github.com/gitca-dev/gitca/status"
)

// TestReadiness: ready only once a run succeeded, and while the last success
// is no older than two intervals; failures in between are tolerated.
func TestReadiness(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLoop(time.Hour, func() time.Time { return now })
	ready := func() int {
		rec := httptest.NewRecorder()
		l.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	assert.Equal(t, http.StatusServiceUnavailable, ready(), "before the first run")
	l.Observe(reconcile.Run{Err: errors.New("remote unreachable")})
	assert.Equal(t, http.StatusServiceUnavailable, ready(), "no run has succeeded")
	l.Observe(reconcile.Run{End: now, Plan: &plan.Plan{}})
	assert.Equal(t, http.StatusOK, ready())
	now = now.Add(90 * time.Minute)
	l.Observe(reconcile.Run{Err: errors.New("remote unreachable")})
	assert.Equal(t, http.StatusOK, ready(), "one failed run is tolerated")
	now = now.Add(31 * time.Minute)
	assert.Equal(t, http.StatusServiceUnavailable, ready(), "two intervals without success")
	ok, msg := l.Ready()
	assert.False(t, ok)
	assert.Contains(t, msg, "last error: remote unreachable")

	rec := httptest.NewRecorder()
	l.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, http.StatusOK, rec.Code, "alive whatever the runs do")
}

// TestObserve: errors by reason, the last plan's actions, the last success.
func TestObserve(t *testing.T) {
	l := NewLoop(time.Minute, nil)
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.Observe(reconcile.Run{End: end, Duration: 2 * time.Second, Plan: &plan.Plan{Objects: []*plan.Action{
		{ID: "Certificate/a", Action: plan.ActionCreate}, {ID: "Certificate/b", Action: plan.ActionKeep}, {ID: "Certificate/c", Action: plan.ActionKeep},
	}}})
	l.Observe(reconcile.Run{Duration: time.Second, Err: errors.New("plain")})
	assert.Equal(t, float64(end.Unix()), testutil.ToFloat64(l.success))
	assert.Equal(t, 1.0, testutil.ToFloat64(l.errors.WithLabelValues(reconcile.ReasonOther)))
	assert.Equal(t, 0.0, testutil.ToFloat64(l.errors.WithLabelValues(reconcile.ReasonAuth)))
	assert.Equal(t, 2.0, testutil.ToFloat64(l.actions.WithLabelValues("keep")))
	assert.Equal(t, 1.0, testutil.ToFloat64(l.actions.WithLabelValues("create")))
	assert.Equal(t, 0.0, testutil.ToFloat64(l.actions.WithLabelValues("delete")))
	assert.NoError(t, testutil.GatherAndCompare(l.Registry, strings.NewReader(`
# HELP gitca_reconcile_duration_seconds How long a reconcile run took, from fetching to pushing, failed runs included.
# TYPE gitca_reconcile_duration_seconds histogram
gitca_reconcile_duration_seconds_bucket{le="0.1"} 0
gitca_reconcile_duration_seconds_bucket{le="0.2"} 0
gitca_reconcile_duration_seconds_bucket{le="0.4"} 0
gitca_reconcile_duration_seconds_bucket{le="0.8"} 0
gitca_reconcile_duration_seconds_bucket{le="1.6"} 1
gitca_reconcile_duration_seconds_bucket{le="3.2"} 2
gitca_reconcile_duration_seconds_bucket{le="6.4"} 2
gitca_reconcile_duration_seconds_bucket{le="12.8"} 2
gitca_reconcile_duration_seconds_bucket{le="25.6"} 2
gitca_reconcile_duration_seconds_bucket{le="51.2"} 2
gitca_reconcile_duration_seconds_bucket{le="102.4"} 2
gitca_reconcile_duration_seconds_bucket{le="204.8"} 2
gitca_reconcile_duration_seconds_bucket{le="409.6"} 2
gitca_reconcile_duration_seconds_bucket{le="+Inf"} 2
gitca_reconcile_duration_seconds_sum 3
gitca_reconcile_duration_seconds_count 2
`), ReconcileDuration))
}

// TestRotationPhaseGauge: a CA or key pair rotating shows when its phase
// started, labelled with the phase; nothing else gets a series.
func TestRotationPhaseGauge(t *testing.T) {
	since := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	na := since.AddDate(10, 0, 0)
	var c Certificates
	c.Set(&status.Report{
		CertificateAuthorities: []status.Row{
			{ID: "CertificateAuthority/root", Name: "root", Kind: "CertificateAuthority", NotBefore: &since, NotAfter: &na, Phase: "switch", PhaseSince: &since},
			{ID: "CertificateAuthority/other", Name: "other", Kind: "CertificateAuthority", NotBefore: &since, NotAfter: &na},
		},
		KeyPairs: []status.Row{{ID: "KeyPair/sa", Name: "sa", Kind: "KeyPair", Phase: "add", PhaseSince: &since}},
	})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(&c))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != RotationPhaseStart {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["name"]+"/"+labels["phase"]] = m.GetGauge().GetValue()
		}
	}
	want := float64(since.Unix())
	assert.Equal(t, map[string]float64{"root/switch": want, "sa/add": want}, got)
}
