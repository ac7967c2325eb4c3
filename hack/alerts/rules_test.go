package alerts

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

const root = "../.."

// The metric families gitca serves; the rotation gauge is declared without series.
var gitcaMetrics = []string{
	"gitca_certificate_expiration_timestamp_seconds",
	"gitca_certificate_not_before_timestamp_seconds",
	"gitca_certificate_renewal_timestamp_seconds",
	"gitca_reconcile_duration_seconds",
	"gitca_reconcile_last_success_timestamp_seconds",
	"gitca_reconcile_errors_total",
	"gitca_plan_actions",
	"gitca_rotation_phase_start_timestamp_seconds",
}

// rules parses the PrometheusRule's spec with Prometheus' own rule file
// parser, strictly: an unknown field, a bad expression or template fails.
func rules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "examples", "deploy", "prometheusrule.yaml"))
	require.NoError(t, err)
	var obj struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       map[string]any `json:"spec"`
	}
	require.NoError(t, yaml.UnmarshalStrict(b, &obj))
	require.Equal(t, "monitoring.coreos.com/v1", obj.APIVersion)
	require.Equal(t, "PrometheusRule", obj.Kind)
	spec, err := yaml.Marshal(obj.Spec)
	require.NoError(t, err)
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	var out []rulefmt.Rule
	for _, g := range groups.Groups {
		for _, n := range g.Rules {
			out = append(out, n)
		}
	}
	return out
}

// TestRulesParse: every alert the runbook documents is there, each names
// only metrics gitca serves, and each links its runbook section.
func TestRulesParse(t *testing.T) {
	var names []string
	runbook, err := os.ReadFile(filepath.Join(root, "docs", "runbook.md"))
	require.NoError(t, err)
	for _, r := range rules(t) {
		require.NotEmpty(t, r.Alert, "only alerts, no recording rules")
		names = append(names, r.Alert)
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
		require.NoError(t, err)
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				assert.Contains(t, gitcaMetrics, vs.Name, "%s uses a metric gitca does not serve", r.Alert)
			}
			return nil
		})
		anchor := strings.ToLower(r.Alert)
		assert.Equal(t, "https://github.com/gitca-dev/gitca/blob/main/docs/runbook.md#"+anchor, r.Annotations["runbook_url"], r.Alert)
		assert.Contains(t, string(runbook), "### "+r.Alert, "docs/runbook.md has a section for %s", r.Alert)
		assert.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], r.Alert)
	}
	assert.ElementsMatch(t, []string{"GitcaCertificateExpiresIn21Days", "GitcaCertificateExpiresIn7Days", "GitcaCertificateRenewalOverdue",
		"GitcaReconcileFailing", "GitcaReconcileStale", "GitcaReconcilerAbsent", "GitcaRotationPhaseStuck"}, names)
}

// snapshot runs gitca's loop test (a real `gitca reconcile --interval`
// serving /metrics against local repositories) and returns its first scrape
// and when it was taken.
func snapshot(t *testing.T) (time.Time, map[string]*dto.MetricFamily) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "metrics.txt")
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestReconcileLoopMetrics$", "./cmd/gitca")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GITCA_METRICS_SNAPSHOT="+out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	r := bufio.NewReader(f)
	first, err := r.ReadString('\n')
	require.NoError(t, err)
	ms, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(first, "# scraped at ")), 10, 64)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	require.NoError(t, err)
	return time.UnixMilli(ms), families
}

// appendFamilies stores every sample of a scrape at ts, as Prometheus
// stores a scrape: classic histograms as _bucket, _sum and _count series.
func appendFamilies(t *testing.T, s *teststorage.TestStorage, ts time.Time, families map[string]*dto.MetricFamily, extra map[string]string) {
	t.Helper()
	app := s.Appender(context.Background())
	add := func(name string, m *dto.Metric, v float64, more ...string) {
		b := labels.NewBuilder(labels.EmptyLabels())
		b.Set(labels.MetricName, name)
		for _, l := range m.GetLabel() {
			b.Set(l.GetName(), l.GetValue())
		}
		for k, v := range extra {
			b.Set(k, v)
		}
		for i := 0; i+1 < len(more); i += 2 {
			b.Set(more[i], more[i+1])
		}
		_, err := app.Append(0, b.Labels(), ts.UnixMilli(), v)
		require.NoError(t, err)
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue())
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, bk := range h.GetBucket() {
					add(name+"_bucket", m, float64(bk.GetCumulativeCount()), "le", strconv.FormatFloat(bk.GetUpperBound(), 'g', -1, 64))
				}
				add(name+"_bucket", m, float64(h.GetSampleCount()), "le", "+Inf")
				add(name+"_sum", m, h.GetSampleSum())
				add(name+"_count", m, float64(h.GetSampleCount()))
			case dto.MetricType_UNTYPED:
				add(name, m, m.GetUntyped().GetValue())
			}
		}
	}
	require.NoError(t, app.Commit())
}

// firing evaluates each alert's expression at ts and returns, by alert, the
// series it returns: what would fire once its "for" has passed.
func firing(t *testing.T, s *teststorage.TestStorage, ts time.Time) map[string][]string {
	t.Helper()
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	out := map[string][]string{}
	for _, r := range rules(t) {
		q, err := engine.NewInstantQuery(context.Background(), s, nil, r.Expr, ts)
		require.NoError(t, err, r.Alert)
		res := q.Exec(context.Background())
		require.NoError(t, res.Err, r.Alert)
		vec, err := res.Vector()
		require.NoError(t, err, r.Alert)
		for _, smp := range vec {
			out[r.Alert] = append(out[r.Alert], smp.Metric.Get("name")+smp.Metric.Get("reason"))
		}
		slices.Sort(out[r.Alert])
		q.Close()
	}
	return out
}

// TestRulesOnARealRun evaluates every alert on the metrics of a real loop
// run, as scraped: only "expires within 21 days" fires, on the 20-day
// certificate the loop test declares. Then the same scrape, repeated as if
// the reconciler had stopped renewing for 16 days and a run had started
// failing, fires the others.
func TestRulesOnARealRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gitca's loop test")
	}
	at, families := snapshot(t)
	for _, name := range gitcaMetrics {
		if name != "gitca_rotation_phase_start_timestamp_seconds" {
			require.Contains(t, families, name)
		}
	}
	s := teststorage.New(t)
	extra := map[string]string{"namespace": "gitca", "pod": "gitca-reconcile-0"} // what the scrape adds
	appendFamilies(t, s, at, families, extra)
	assert.Equal(t, map[string][]string{"GitcaCertificateExpiresIn21Days": {"short"}}, firing(t, s, at))

	// 16 days on: the short certificate (20 days, renewBefore 5 days) is
	// past its renewal time and within 7 days of expiry, the last success is
	// 16 days old, the runs fail, and a rotation phase has been stuck.
	later := at.Add(16 * 24 * time.Hour)
	for i, ts := range []time.Time{later.Add(-2 * time.Hour), later} {
		fails := float64(i * 3)
		setCounter(families["gitca_reconcile_errors_total"], "state-fetch", fails)
		appendFamilies(t, s, ts, families, extra)
	}
	app := s.Appender(context.Background())
	_, err := app.Append(0, labels.FromStrings(labels.MetricName, "gitca_rotation_phase_start_timestamp_seconds", "name", "root", "phase", "distribute"),
		later.UnixMilli(), float64(later.Add(-15*24*time.Hour).Unix()))
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	got := firing(t, s, later)
	assert.Equal(t, []string{"short"}, got["GitcaCertificateExpiresIn7Days"])
	assert.Equal(t, []string{"short"}, got["GitcaCertificateRenewalOverdue"])
	assert.Equal(t, []string{"state-fetch"}, got["GitcaReconcileFailing"])
	assert.Len(t, got["GitcaReconcileStale"], 1)
	assert.Equal(t, []string{"root"}, got["GitcaRotationPhaseStuck"])
	assert.Empty(t, got["GitcaReconcilerAbsent"])
	assert.NotContains(t, got["GitcaCertificateExpiresIn21Days"], "web", "the 90-day certificate still has 70 days")
}

func setCounter(f *dto.MetricFamily, reason string, v float64) {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" && l.GetValue() == reason {
				m.Counter.Value = &v
			}
		}
	}
}
