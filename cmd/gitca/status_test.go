package main

import (
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/metrics"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// renderedAt is when the examples' states are rendered for the status tests.
var renderedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// renderExample renders a topology directory into a fresh state directory
// at the given time, in process, with a throwaway age recipient.
func renderExample(t *testing.T, topoDir string, at time.Time) string {
	t.Helper()
	topo, err := topology.Load(topoDir)
	require.NoError(t, err)
	_, recipient, err := secrets.GenerateAgeKey(at)
	require.NoError(t, err)
	dir := t.TempDir()
	st, err := plan.ReadState(dir)
	require.NoError(t, err)
	opt := render.Options{Options: plan.Options{Now: at, Recipients: plan.ResolveRecipients(topo, []string{recipient})}}
	res, err := render.Render(t.Context(), topo, st, opt, nil, rand.Reader)
	require.NoError(t, err)
	require.NoError(t, emit.Write(dir, res.Tree))
	return dir
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./cmd/gitca -run %s -update", t.Name())
	assert.Equal(t, string(want), got, "golden %s (refresh with -update)", p)
}

// TestStatusGolden: the text and JSON status of both examples as of one date,
// with and without the topology, and the exit code of --warn-within on three
// dates: nothing due, a renewal overdue, something about to expire.
func TestStatusGolden(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		example string
		at      time.Time
		// warn are three dates and the exit code --warn-within 30d gives on each.
		warn []struct {
			at   string
			code int
		}
	}{
		{"kubeadm", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), []struct {
			at   string
			code int
		}{
			{"2026-03-01T00:00:00Z", 0}, // leaves renew on Sep 1, expire Jan 1
			{"2026-10-01T00:00:00Z", 3}, // a month past the renewal time: no reconciler ran
			{"2026-12-15T00:00:00Z", 3}, // expiring in 17 days
		}},
		{"kcp", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), []struct {
			at   string
			code int
		}{
			{"2026-01-15T00:00:00Z", 0}, // the 90-day certificates expire on Apr 1, renew from Mar 25
			{"2026-03-05T00:00:00Z", 3}, // they expire within 30 days
			{"2026-04-02T00:00:00Z", 3}, // they have expired
		}},
	}
	for _, tc := range cases {
		t.Run(tc.example, func(t *testing.T) {
			topoDir := filepath.Join("..", "..", "examples", tc.example)
			state := renderExample(t, topoDir, renderedAt)
			now := rfc3339(tc.at)
			withTopo := e.mustRun(t, "status", "--state", state, "--topology", topoDir, "--now", now)
			golden(t, "status/"+tc.example+".txt", withTopo.stdout)
			js := e.mustRun(t, "status", "--state", state, "--topology", topoDir, "--now", now, "-o", "json")
			golden(t, "status/"+tc.example+".json", js.stdout)
			bare := e.mustRun(t, "status", "--state", state, "--now", now)
			golden(t, "status/"+tc.example+"-no-topology.txt", bare.stdout)

			r := e.run(t, "status", "--state", state, "--now", tc.warn[2].at, "--warn-within", "30d", "--log-format", "json")
			assert.Equal(t, 3, r.code)
			for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				assert.Regexp(t, `^\{"time":".*","level":"WARN","msg":"needs attention","object":"[A-Za-z]+/[a-z0-9-]+",.*"why":".*"\}$`, line, "with --log-format json every stderr line is a JSON record")
			}

			for _, w := range tc.warn {
				r := e.run(t, "status", "--state", state, "--topology", topoDir, "--now", w.at, "--warn-within", "30d")
				assert.Equal(t, w.code, r.code, "--warn-within 30d at %s\nstderr:\n%s", w.at, r.stderr)
				if w.code == 3 {
					assert.Contains(t, r.stderr, "warning: ")
				} else {
					assert.Empty(t, r.stderr)
				}
			}
		})
	}
}

// TestStatusPrometheusTextfile: -o prometheus is what node-exporter's
// textfile collector parses, one series of each gauge per certificate with
// the values of the text report.
func TestStatusPrometheusTextfile(t *testing.T) {
	e := newEnv(t)
	topoDir := filepath.Join("..", "..", "examples", "kubeadm")
	state := renderExample(t, topoDir, renderedAt)
	out := e.mustRun(t, "status", "--state", state, "--topology", topoDir, "-o", "prometheus").stdout
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(out))
	require.NoError(t, err)
	st, err := plan.ReadState(state)
	require.NoError(t, err)
	certs := 0
	for _, o := range st.Primary {
		if o.HasCert() {
			certs++
		}
	}
	for _, name := range []string{metrics.CertificateExpiration, metrics.CertificateNotBefore, metrics.CertificateRenewal} {
		require.Contains(t, families, name)
		assert.Len(t, families[name].GetMetric(), certs, name)
	}
	for _, m := range families[metrics.CertificateExpiration].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		o := st.Primary[labels["kind"]+"/"+labels["name"]]
		require.NotNil(t, o, "%v", labels)
		assert.Equal(t, float64(o.NotAfter.Unix()), m.GetGauge().GetValue(), "%v", labels)
	}
}

func TestStatusRepoAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"./state": false, "/srv/state": false, "state": false,
		"file:///srv/state.git": true, "ssh://git@host/x.git": true, "git@github.com:org/state.git": true,
		"/srv/pki.git//state": true, "/srv/state.git#main": true, `dir\with:colon`: false,
	} {
		assert.Equal(t, want, gitsync.IsRemote(s), s)
	}
	bare := newBare(t, "state")
	assert.True(t, gitsync.IsRemote(bare), "a bare repository on disk")
	assert.False(t, gitsync.IsRemote(t.TempDir()))
}

// TestStatusFromRepository reads the state straight from a repository with
// reconcile's clone code, and finds the same rows as in the directory.
func TestStatusFromRepository(t *testing.T) {
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	e := newEnv(t)
	e.mustRun(t, reconcileArgs(topo.bare, state, t.TempDir(), t0)...)
	fromRepo := e.mustRun(t, "status", "--state", state, "--cache-dir", t.TempDir(), "--now", rfc3339(t0), "-o", "json").stdout
	fromDir := e.mustRun(t, "status", "--state", checkout(t, state, "main"), "--now", rfc3339(t0), "-o", "json").stdout
	assert.Equal(t, fromDir, fromRepo)
	assert.Contains(t, fromRepo, `"id": "CertificateAuthority/root"`)
}
