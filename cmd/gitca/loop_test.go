package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/metrics"
	"github.com/gitca-dev/gitca/reconcile"
)

// shortLeaf is a certificate that is always within 21 days of expiry but
// never due for renewal right after a run: the one series the "expiring
// within 21 days" alert fires on in the alert rule test.
const shortLeaf = `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: short
spec:
  issuer: issuing
  profile: server
  dnsNames: [short.example.com]
  validity: 480h
  renewBefore: 120h
  secret:
    cluster: prod
    namespace: edge
`

// metricsSnapshotEnv names a file the loop test writes its first scrape to,
// with the scrape time on the first line: hack/alerts evaluates the alert
// rules of examples/deploy on it.
const metricsSnapshotEnv = "GITCA_METRICS_SNAPSHOT"

// secretInLog is what must never appear in a log line: a PEM private key
// or an age identity.
var secretInLog = regexp.MustCompile(`PRIVATE KEY-----|AGE-SECRET-KEY-|LS0tLS1CRUdJTi`)

// TestReconcileLoopMetrics runs the built binary as a long-running
// reconciler serving metrics: every certificate gauge equals the state's
// certificate, the loop's own metrics say what it did, /readyz turns
// unready when the state remote is gone for two intervals and ready again
// once it is back, and no log line carries key material.
func TestReconcileLoopMetrics(t *testing.T) {
	files := smallTopology(t)
	files["web.yaml"] = leafDoc("web")
	files["short.yaml"] = shortLeaf
	topo := newTopology(t, files)
	state := newBare(t, "state")
	e := newEnv(t)
	e.usePlainBinary(t)
	const interval = time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, stderr := e.command(ctx, "reconcile", "--topology", topo.bare, "--state", state, "--cache-dir", t.TempDir(),
		"--interval", interval.String(), "--metrics-address", "127.0.0.1:0", "--log-format", "json")
	require.NoError(t, cmd.Start())
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	addr := waitForLog(t, stderr, "serving metrics and probes", "address")
	base := "http://" + addr
	waitStatus(t, base+"/readyz", http.StatusOK, "the first run succeeds")
	code, _ := get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)

	scrapedAt := time.Now()
	body := scrape(t, base)
	if out := os.Getenv(metricsSnapshotEnv); out != "" {
		require.NoError(t, os.WriteFile(out, []byte(fmt.Sprintf("# scraped at %d\n%s", scrapedAt.UnixMilli(), body)), 0o644))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)

	// Every certificate of the state, and nothing else, has its three gauges.
	st := readState(t, state, "main")
	renewBefore := map[string]time.Duration{"short": 120 * time.Hour}
	want := map[string]bool{}
	for id, o := range st.Primary {
		if !o.HasCert() {
			continue
		}
		want[id] = true
		kind, name, _ := strings.Cut(id, "/")
		exp := gauge(t, families, metrics.CertificateExpiration, kind, name)
		assert.Equal(t, float64(o.NotAfter.Unix()), exp.GetGauge().GetValue(), "%s expiration", id)
		nb := gauge(t, families, metrics.CertificateNotBefore, kind, name)
		assert.Equal(t, float64(o.NotBefore.Unix()), nb.GetGauge().GetValue(), "%s not before", id)
		before, ok := renewBefore[name]
		switch {
		case ok:
		case kind == "CertificateAuthority":
			before = 720 * time.Hour // topology.DefaultCARenewBefore
		default:
			before = o.NotAfter.Sub(o.NotBefore.Add(5*time.Minute)) / 3 // a third of the validity; NotBefore is backdated 5 minutes
		}
		rn := gauge(t, families, metrics.CertificateRenewal, kind, name)
		assert.Equal(t, float64(o.NotAfter.Add(-before).Unix()), rn.GetGauge().GetValue(), "%s renewal", id)
		l := labels(exp)
		assert.Equal(t, o.Annotations["gitca.dev/issuer"], l["issuer"], id)
		if kind != "CertificateAuthority" {
			assert.Equal(t, "prod", l["cluster"], id)
		}
	}
	assert.Equal(t, "edge", labels(gauge(t, families, metrics.CertificateExpiration, "Certificate", "short"))["namespace"])
	for _, name := range []string{metrics.CertificateExpiration, metrics.CertificateNotBefore, metrics.CertificateRenewal} {
		assert.Len(t, families[name].GetMetric(), len(want), name)
	}

	// The loop's own metrics.
	require.Contains(t, families, metrics.ReconcileLastSuccess)
	last := families[metrics.ReconcileLastSuccess].GetMetric()[0].GetGauge().GetValue()
	assert.InDelta(t, float64(scrapedAt.Unix()), last, 60)
	hist := families[metrics.ReconcileDuration].GetMetric()[0].GetHistogram()
	assert.GreaterOrEqual(t, hist.GetSampleCount(), uint64(1))
	for _, m := range families[metrics.ReconcileErrors].GetMetric() {
		assert.Zero(t, m.GetCounter().GetValue(), "%v", labels(m))
	}
	assert.Len(t, families[metrics.ReconcileErrors].GetMetric(), len(reconcile.Reasons), "every reason starts at 0")
	total := 0.0
	for _, m := range families[metrics.PlanActions].GetMetric() {
		total += m.GetGauge().GetValue()
	}
	assert.Equal(t, float64(len(st.Primary)), total, "the last plan has one action per object")

	// The state remote goes away: runs fail, and after two intervals
	// without success the reconciler says it is not ready.
	gone := state + ".gone"
	require.NoError(t, os.Rename(state, gone))
	msg := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "unready while the state remote is unreachable")
	assert.Contains(t, msg, "more than 2 intervals")
	failures := families2(t, base)[metrics.ReconcileErrors]
	assert.Positive(t, counter(failures, reconcile.ReasonStateFetch), "failures are counted as state-fetch")
	code, _ = get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code, "alive all the same")
	require.NoError(t, os.Rename(gone, state))
	waitStatus(t, base+"/readyz", http.StatusOK, "ready again once the remote is back")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "stderr:\n%s", stderr.String())
	stopped = true

	// Every log line is a JSON record; runs carry their id and commits; no
	// line carries a key.
	runs := map[string]bool{}
	finished := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		assert.NotRegexp(t, secretInLog, line)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not JSON: %s", line)
		switch rec["msg"] {
		case "run started":
			runs[rec["run"].(string)] = true
		case "run finished":
			finished++
			assert.Equal(t, topo.headOf(t), rec["topologyCommit"], line)
			assert.Regexp(t, `^[0-9a-f]{40}$`, rec["stateCommit"], line)
			assert.True(t, runs[rec["run"].(string)], "a finished run was started: %s", line)
		case "run failed":
			assert.Equal(t, reconcile.ReasonStateFetch, rec["reason"], line)
			assert.NotEmpty(t, rec["run"], line)
		}
	}
	assert.GreaterOrEqual(t, finished, 2)
	assert.NotRegexp(t, secretInLog, stdout.String())
}

func (r *topoRepo) headOf(t *testing.T) string { return tip(t, r.bare, "main") }

// waitForLog waits for a JSON log record with msg and returns its attribute key.
func waitForLog(t *testing.T, stderr *syncBuffer, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
				return fmt.Sprint(rec[key])
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no log line %q; stderr:\n%s", msg, stderr.String())
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls url until it answers code, and returns the body.
func waitStatus(t *testing.T, url string, code int, what string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var got int
	var body string
	for time.Now().Before(deadline) {
		if got, body = get(t, url); got == code {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s answered %d %q, want %d", what, url, got, body, code)
	return ""
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	return body
}

func families2(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	f, err := parser.TextToMetricFamilies(strings.NewReader(scrape(t, base)))
	require.NoError(t, err)
	return f
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// gauge finds the one series of a per-object gauge for kind/name.
func gauge(t *testing.T, families map[string]*dto.MetricFamily, family, kind, name string) *dto.Metric {
	t.Helper()
	require.Contains(t, families, family)
	var found *dto.Metric
	for _, m := range families[family].GetMetric() {
		l := labels(m)
		if l["kind"] == kind && l["name"] == name {
			require.Nil(t, found, "two series of %s for %s/%s", family, kind, name)
			found = m
		}
	}
	require.NotNil(t, found, "no %s for %s/%s", family, kind, name)
	return found
}

func counter(f *dto.MetricFamily, reason string) float64 {
	for _, m := range f.GetMetric() {
		if labels(m)["reason"] == reason {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
