package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	gstate "github.com/gitca-dev/gitca/state"
)

// TestReconcileCommitsOnceThenNothingThenRenewals is the life of a state
// repository: the first run lands one commit, the second none, and a run a
// year later one commit touching only what expired.
func TestReconcileCommitsOnceThenNothingThenRenewals(t *testing.T) {
	topo := newTopology(t, copyDir(t, filepath.Join("..", "..", "render", "testdata", "basic")))
	topoHead := tip(t, topo.bare, "main")
	state := newBare(t, "state")
	e := newEnv(t)
	cache := t.TempDir()

	first := e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
	assert.Contains(t, first.stdout, "committed ")
	assert.Equal(t, "1", git(t, state, "rev-list", "--count", "main"))
	msg := git(t, state, "log", "-1", "--format=%B", "main")
	lines := strings.Split(msg, "\n")
	assert.Equal(t, "gitca: 8 create; 17 file(s) written", lines[0])
	// One line per file, the same list as the plan: records, the bundle,
	// the binding, the overlay and its Namespace, its Flux objects,
	// .sops.yaml and the index.
	for path, id := range map[string]string{"ca/root.yaml": "CertificateAuthority/root", "ca/issuing.yaml": "CertificateAuthority/issuing",
		"ca/other.yaml": "CertificateAuthority/other", "clusters/prod/pki/secret-web.yaml": "Certificate/web",
		"clusters/prod/pki/secret-client.yaml": "Certificate/client", "clusters/prod/pki/secret-db-peer.yaml": "Certificate/db-peer",
		"clusters/prod/pki/secret-sa.yaml": "KeyPair/sa", "clusters/prod/pki/secret-ops.yaml": "Kubeconfig/ops"} {
		assert.Contains(t, lines, "create "+path+": create ("+id+"); missing")
	}
	assert.Contains(t, msg, "create clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml: rbac-changed (grants ClusterRole view to Group kubeconfig:ops)")
	assert.Len(t, lines, 1+1+17+1+1, "summary, blank, 17 files, blank, trailer")
	assert.Equal(t, topoHead, git(t, state, "log", "-1", "--format=%(trailers:key=Gitca-Topology-Commit,valueonly)", "main"))
	assert.Equal(t, fmt.Sprintf("gitca <gitca@localhost>|gitca <gitca@localhost>|%d", t0.Unix()),
		git(t, state, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%at", "main"))
	tree := checkout(t, state, "main")
	findings, err := gstate.ScanPlaintextKeys(tree)
	require.NoError(t, err)
	assert.Empty(t, findings)
	requireCacheClean(t, cache)

	second := e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0.Add(time.Hour))...)
	assert.Contains(t, second.stdout, "no changes")
	assert.Equal(t, "1", git(t, state, "rev-list", "--count", "main"))

	// A year on, the four leafs (90, 30, 365 and 30 days) have expired; the
	// CAs (5 and 10 years), the key pair and every derived file stay.
	later := t0.AddDate(1, 0, 1)
	before := readState(t, state, "main")
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, later)...)
	assert.Equal(t, "2", git(t, state, "rev-list", "--count", "main"))
	assert.Equal(t, "gitca: 4 rekey, 4 keep; 5 file(s) written", git(t, state, "log", "-1", "--format=%s", "main"))
	changed := strings.Split(git(t, state, "show", "--format=", "--name-only", "main"), "\n")
	assert.Equal(t, []string{
		plan.IndexPath,
		"clusters/prod/pki/secret-client.yaml",
		"clusters/prod/pki/secret-db-peer.yaml",
		"clusters/prod/pki/secret-ops.yaml",
		"clusters/prod/pki/secret-web.yaml",
	}, changed)
	after := readState(t, state, "main")
	for id, obj := range before.Primary {
		if !obj.HasCert() {
			continue
		}
		renewed := slices.Contains(changed, obj.Path)
		if renewed {
			// Signed at the run's injected time, less the renderer's backdating.
			nb := after.Primary[id].Cert().NotBefore.UTC()
			assert.WithinRange(t, nb, later.Add(-10*time.Minute), later, "%s renewed at the run's time", id)
		} else {
			assert.Equal(t, obj.Cert().Raw, after.Primary[id].Cert().Raw, "%s kept", id)
		}
	}
	requireCacheClean(t, cache)
}

// TestReconcilePushBranch proposes instead of applying: the state branch
// stays, the proposal branch carries the commit, and the plan is on disk for
// the pull request; a second proposal replaces the first.
func TestReconcilePushBranch(t *testing.T) {
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	e := newEnv(t)
	cache := t.TempDir()
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
	mainTip := tip(t, state, "main")
	require.NotEmpty(t, mainTip)

	topo.push(t, "add web", map[string]string{"web.yaml": leafDoc("web")})
	planFile := filepath.Join(t.TempDir(), "plan.md")
	out := e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0, "--push-branch", "gitca/proposal", "--plan-file", planFile)...)
	assert.Contains(t, out.stdout, "branch gitca/proposal")
	assert.Equal(t, mainTip, tip(t, state, "main"), "the state branch is untouched")
	proposal := tip(t, state, "gitca/proposal")
	require.NotEmpty(t, proposal)
	assert.Equal(t, mainTip, git(t, state, "rev-parse", proposal+"^"), "the proposal builds on the state branch")
	assert.Equal(t, []string{plan.IndexPath, "clusters/prod/kustomization.yaml", "clusters/prod/pki/secret-web.yaml"},
		strings.Split(git(t, state, "show", "--format=", "--name-only", proposal), "\n"))
	md, err := os.ReadFile(planFile)
	require.NoError(t, err)
	assert.Contains(t, string(md), "### gitca plan")
	assert.Contains(t, string(md), "| `Certificate/web` | create |")
	requireCacheClean(t, cache)

	// The same proposal again, for the same topology and state, a minute
	// later (a CI job re-run): nothing is signed and nothing is pushed, so
	// the pull request under review does not change under its reviewer.
	require.NoError(t, os.Remove(planFile))
	again := e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0.Add(time.Minute), "--push-branch", "gitca/proposal", "--plan-file", planFile)...)
	assert.Contains(t, again.stdout, "branch gitca/proposal is up to date")
	assert.Equal(t, proposal, tip(t, state, "gitca/proposal"), "no second push")
	assert.Equal(t, "2", git(t, state, "rev-list", "--count", "gitca/proposal"), "one proposal commit on the state branch's one")
	md, err = os.ReadFile(planFile)
	require.NoError(t, err)
	assert.Contains(t, string(md), "| `Certificate/web` | create |", "the plan is still written for the pull request")
	requireCacheClean(t, cache)

	// The topology moves on before the pull request merges: the next run
	// replaces the proposal rather than failing on a non-fast-forward.
	topo.push(t, "add api", map[string]string{"api.yaml": leafDoc("api")})
	moved := e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0, "--push-branch", "gitca/proposal", "--plan-file", planFile)...)
	assert.Regexp(t, `rebuilding proposal branch gitca/proposal: topology [0-9a-f]{40} → [0-9a-f]{40}`, moved.stdout, "it says what moved")
	assert.Equal(t, mainTip, tip(t, state, "main"))
	second := tip(t, state, "gitca/proposal")
	assert.NotEqual(t, proposal, second)
	assert.Equal(t, mainTip, git(t, state, "rev-parse", second+"^"))
	md, err = os.ReadFile(planFile)
	require.NoError(t, err)
	assert.Contains(t, string(md), "`Certificate/api`")
	assert.Contains(t, string(md), "`Certificate/web`")
}

// TestReconcileSameRepository keeps topology and state on two branches of
// one repository, the layout of a small team.
func TestReconcileSameRepository(t *testing.T) {
	topo := newTopology(t, smallTopology(t))
	e := newEnv(t)
	cache := t.TempDir()
	args := reconcileArgs(topo.bare+"#main", topo.bare+"#state", cache, t0)
	e.mustRun(t, args...)
	assert.Contains(t, files(t, topo.bare, "state"), "ca/root.yaml")
	assert.NotContains(t, files(t, topo.bare, "main"), "ca/root.yaml")
	assert.Contains(t, e.mustRun(t, args...).stdout, "no changes")

	// And two directories of one branch.
	args = reconcileArgs(topo.bare+"//topology#both", topo.bare+"//state#both", cache, t0)
	topo.push(t, "move into a directory", map[string]string{
		"topology/config.yaml": smallTopology(t)["config.yaml"], "topology/cas.yaml": smallTopology(t)["cas.yaml"],
	})
	git(t, topo.work, "push", "-q", "origin", "HEAD:both")
	e.mustRun(t, args...)
	got := files(t, topo.bare, "both")
	assert.Contains(t, got, "state/ca/root.yaml")
	assert.Contains(t, got, "topology/cas.yaml")
	assert.Contains(t, e.mustRun(t, args...).stdout, "no changes")
}

// TestReconcileRefusesPlaintextKey: a private key in plain text anywhere in
// the tree (here committed by hand) stops the run before it commits.
func TestReconcileRefusesPlaintextKey(t *testing.T) {
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	e := newEnv(t)
	cache := t.TempDir()
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)

	// Someone commits a key next to the sealed files.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	work := filepath.Join(t.TempDir(), "state-work")
	git(t, filepath.Dir(work), "clone", "-q", state, work)
	require.NoError(t, os.MkdirAll(filepath.Join(work, "notes"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "notes", "debug.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "oops")
	git(t, work, "push", "-q", "origin", "HEAD:main")
	leaked := tip(t, state, "main")

	topo.push(t, "add web", map[string]string{"web.yaml": leafDoc("web")})
	r := e.run(t, reconcileArgs(topo.bare, state, cache, t0)...)
	assert.Equal(t, 1, r.code)
	// Reading the state refuses it before anything is planned.
	assert.Contains(t, r.stderr, "1 private key(s) in plain text in the state")
	assert.Contains(t, r.stderr, "notes/debug.pem:1: ")
	assert.NotContains(t, r.stderr, base64.StdEncoding.EncodeToString(der)[:40], "the key itself is never quoted")
	assert.Equal(t, leaked, tip(t, state, "main"), "the remote is untouched")
	requireCacheClean(t, cache)
}

// TestReconcileAuthFailure: a remote that refuses our credentials fails the
// run with a message naming what was tried, exit 1, remote and cache as
// they were.
func TestReconcileAuthFailure(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git for git http-backend")
	}
	execPath := strings.TrimSpace(git(t, ".", "--exec-path"))
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	e := newEnv(t)
	seedCache := t.TempDir()
	e.mustRun(t, reconcileArgs(topo.bare, state, seedCache, t0)...)
	before := tip(t, state, "main")
	topo.push(t, "add web", map[string]string{"web.yaml": leafDoc("web")})

	// A real smart-HTTP git server (git http-backend) that lets anyone
	// fetch and refuses every push, like a read-only deploy token.
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(state), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	refusePush := func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return true
		}
		return false
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !refusePush(w, r) {
			backend.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	// Trust the test server the standard way (SSL_CERT_FILE), not through
	// an insecure switch gitca does not have.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	e.vars = append(e.vars, "SSL_CERT_FILE="+caFile, "GITCA_GIT_TOKEN=read-only-token")
	stateURL := srv.URL + "/" + filepath.Base(state)

	cases := []struct {
		name, stateAddr string
		extra           []string
		want            []string
	}{
		{
			name:      "https push refused",
			stateAddr: stateURL,
			want:      []string{"authentication failed", "push to " + stateURL, "https basic auth as \"git\" with the token from env GITCA_GIT_TOKEN", "the remote is unchanged"},
		},
		{
			name:      "ssh without known_hosts",
			stateAddr: "ssh://git@127.0.0.1:1/state.git",
			extra:     []string{"--ssh-key-file", e.keyFile},
			want:      []string{"needs a known_hosts file", "never accepted unverified"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			r := e.run(t, reconcileArgs(topo.bare, tc.stateAddr, cache, t0, tc.extra...)...)
			assert.Equal(t, 1, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
			assert.NotContains(t, r.stderr, "read-only-token")
			assert.Equal(t, before, tip(t, state, "main"), "the remote is untouched")
			assert.Equal(t, "1", git(t, state, "rev-list", "--all", "--count"), "no objects reachable from new refs")
			if clones := cacheClones(t, cache); len(clones) > 0 {
				requireCacheClean(t, cache)
			}
		})
	}

	// The server really serves: a fetch-only use of the same URL works, so
	// the failure above was the push being refused, not a broken setup.
	resp, err := srv.Client().Get(stateURL + "/info/refs?service=git-upload-pack")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestReconcileFlagErrors: configuration mistakes fail before any clone.
func TestReconcileFlagErrors(t *testing.T) {
	e := newEnv(t)
	repo := newBare(t, "repo")
	noKey := &env{vars: append(append([]string{}, e.vars...), "SOPS_AGE_KEY_FILE=")}
	cases := []struct {
		name string
		env  *env
		args []string
		want string
	}{
		{"same source", e, []string{"--topology", repo, "--state", repo}, "give them different branches"},
		{"push to the state branch", e, []string{"--topology", repo + "#topo", "--state", repo, "--push-branch", "main"}, "is the state branch itself"},
		{"no retries", e, []string{"--topology", repo + "#topo", "--state", repo, "--max-retries", "0"}, "--max-retries 0"},
		{"bad now", e, []string{"--topology", repo + "#topo", "--state", repo, "--now", "tomorrow"}, "want RFC3339"},
		{"plain http", e, []string{"--topology", "http://example.com/topo.git", "--state", repo}, "plain http is refused"},
		{"plan file without a directory", e, []string{"--topology", repo + "#topo", "--state", repo, "--plan-file", filepath.Join(repo, "no", "plan.md")}, "its directory does not exist"},
		{"no identity", noKey, []string{"--topology", repo + "#topo", "--state", repo}, "needs the reconciler's age identity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			r := tc.env.run(t, append([]string{"reconcile", "--cache-dir", cache}, tc.args...)...)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.NoDirExists(t, cache, "nothing was cloned")
		})
	}
}

// TestReconcileIntervalStopsOnSIGTERM: the long-running mode reconciles on
// each tick, picks up topology changes, and exits 0 on SIGTERM.
func TestReconcileIntervalStopsOnSIGTERM(t *testing.T) {
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	e := newEnv(t)
	cache := t.TempDir()
	cmd, stdout, stderr := e.command(t.Context(), reconcileArgs(topo.bare, state, cache, t0, "--interval", "100ms")...)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	waitFor(t, func() bool { return tip(t, state, "main") != "" })
	first := tip(t, state, "main")
	topo.push(t, "add web", map[string]string{"web.yaml": leafDoc("web")})
	waitFor(t, func() bool { return tip(t, state, "main") != first })
	assert.Contains(t, files(t, state, "main"), "clusters/prod/pki/secret-web.yaml")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("gitca did not stop within 30s of SIGTERM")
	}
	assert.Contains(t, stderr.String(), "shutting down")
	assert.Equal(t, "2", git(t, state, "rev-list", "--count", "main"))
	requireCacheClean(t, cache)
	// The lock went with the process: another run gets the cache at once.
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
}

// TestReconcileIntervalRecovers: in the long-running mode a failing run
// (here an invalid topology) is reported and the loop goes on; once the
// topology is fixed the next tick commits.
func TestReconcileIntervalRecovers(t *testing.T) {
	broken := smallTopology(t)
	broken["web.yaml"] = strings.Replace(leafDoc("web"), "issuer: issuing", "issuer: nowhere", 1)
	topo := newTopology(t, broken)
	state := newBare(t, "state")
	e := newEnv(t)
	cmd, stdout, stderr := e.command(t.Context(), reconcileArgs(topo.bare, state, t.TempDir(), t0, "--interval", "100ms")...)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	waitFor(t, func() bool { return strings.Count(stderr.String(), "run failed") >= 2 })
	assert.Contains(t, stderr.String(), "nowhere")
	assert.Empty(t, tip(t, state, "main"))

	topo.push(t, "fix the issuer", map[string]string{"web.yaml": leafDoc("web")})
	waitFor(t, func() bool { return tip(t, state, "main") != "" })
	assert.Contains(t, files(t, state, "main"), "clusters/prod/pki/secret-web.yaml")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "stdout:\n%s\nstderr:\n%s", stdout, stderr)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
