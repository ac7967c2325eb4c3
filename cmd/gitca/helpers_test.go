package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
)

// execEnv makes the test binary behave as the gitca binary, so tests run the
// real command in its own process (signals, exit codes, SIGKILL) without a
// separate build.
const execEnv = "GITCA_TEST_EXEC_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		main()
		return
	}
	code := m.Run()
	if plainBin != "" {
		os.RemoveAll(filepath.Dir(plainBin))
	}
	os.Exit(code)
}

// t0 is the injected clock of every test run.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// gitEnv keeps the user's and the system's git configuration out.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.test",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.test",
	)
}

// git runs the git CLI in dir (a worktree, or a bare repository) and returns
// its trimmed stdout.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), stderr.String())
	return strings.TrimSpace(string(out))
}

// newBare makes an empty bare repository whose default branch is main.
func newBare(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name+".git")
	cmd := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return dir
}

// tip is a branch's commit in a bare repository, "" when it does not exist.
func tip(t testing.TB, bare, branch string) string {
	t.Helper()
	cmd := exec.Command("git", "-C", bare, "rev-parse", "--verify", "-q", "refs/heads/"+branch)
	cmd.Env = gitEnv()
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}

// topoRepo is a topology repository: a bare remote and the worktree the test
// edits and pushes from, as a platform engineer would.
type topoRepo struct {
	bare, work string
}

func newTopology(t testing.TB, files map[string]string) *topoRepo {
	t.Helper()
	r := &topoRepo{bare: newBare(t, "topology"), work: filepath.Join(t.TempDir(), "topology-work")}
	cmd := exec.Command("git", "init", "-q", "-b", "main", r.work)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	git(t, r.work, "remote", "add", "origin", r.bare)
	r.push(t, "initial topology", files)
	return r
}

// push writes files (relative paths; "" content deletes) and pushes one commit.
func (r *topoRepo) push(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if content == "" {
			require.NoError(t, os.Remove(p))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	git(t, r.work, "add", "-A")
	git(t, r.work, "commit", "-q", "-m", msg)
	git(t, r.work, "push", "-q", "origin", "HEAD:main")
	return git(t, r.work, "rev-parse", "HEAD")
}

// copyDir reads every file of a directory (e.g. render/testdata/basic) into
// the map topoRepo.push takes.
func copyDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			out[e.Name()] = string(b)
		}
	}
	return out
}

// leafDoc is a small server certificate issued by the basic topology's
// "issuing" CA, delivered to the prod cluster.
func leafDoc(name string) string {
	return fmt.Sprintf(`apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: %[1]s
spec:
  issuer: issuing
  profile: server
  dnsNames: [%[1]s.example.com]
  validity: 2160h
  secret:
    cluster: prod
`, name)
}

// smallTopology is a root CA, an intermediate, a second intermediate and no
// leafs: the tests that run many reconciles add leafs as they go.
func smallTopology(t testing.TB) map[string]string {
	t.Helper()
	all := copyDir(t, filepath.Join("..", "..", "render", "testdata", "basic"))
	return map[string]string{"config.yaml": all["config.yaml"], "cas.yaml": all["cas.yaml"]}
}

// env is a reconciler's environment: a fresh age identity and nothing else
// from the caller's sops configuration.
type env struct {
	keyFile string
	vars    []string
	bin     string // the gitca binary; "" is this test binary
}

var (
	plainBinOnce sync.Once
	plainBin     string
	plainBinErr  error
)

// usePlainBinary makes e run a gitca built without the race detector. The
// race and crash tests start hundreds of processes, and an instrumented
// process costs several times the CPU; the code they run is the same, and
// the other tests run it instrumented.
func (e *env) usePlainBinary(t testing.TB) {
	t.Helper()
	plainBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gitca-test-bin-")
		if err != nil {
			plainBinErr = err
			return
		}
		plainBin = filepath.Join(dir, "gitca")
		cmd := exec.Command("go", "build", "-o", plainBin, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			plainBinErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if plainBinErr != nil {
		t.Logf("running the test binary instead of a plain build: %v", plainBinErr)
		return
	}
	e.bin = plainBin
}

func newEnv(t testing.TB) *env {
	t.Helper()
	id, _, err := secrets.GenerateAgeKey(time.Now())
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "age.key")
	require.NoError(t, os.WriteFile(keyFile, id, 0o600))
	var vars []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_RECIPIENTS", "XDG_CONFIG_HOME", execEnv:
			continue
		}
		vars = append(vars, kv)
	}
	vars = append(vars,
		execEnv+"=1",
		"SOPS_AGE_KEY_FILE="+keyFile,
		"SOPS_DISABLE_VERSION_CHECK=1",
		// Nothing may fall back to a real user's sops keys or cache.
		"XDG_CONFIG_HOME="+t.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
	)
	return &env{keyFile: keyFile, vars: vars}
}

// syncBuffer collects a running process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// command is gitca with args, ready to start.
func (e *env) command(ctx context.Context, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	bin := e.bin
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.vars
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// result is a finished gitca process.
type result struct {
	code           int
	stdout, stderr string
}

func (e *env) run(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, stdout, stderr := e.command(ctx, args...)
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		require.NoError(t, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs gitca and requires exit 0.
func (e *env) mustRun(t testing.TB, args ...string) result {
	t.Helper()
	r := e.run(t, args...)
	require.Equal(t, 0, r.code, "gitca %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// reconcileArgs is the command line of one run against the two repositories.
func reconcileArgs(topology, state, cache string, now time.Time, extra ...string) []string {
	return append([]string{"reconcile", "--topology", topology, "--state", state, "--cache-dir", cache, "--now", rfc3339(now)}, extra...)
}

// checkout extracts a commit of a bare repository into a new directory.
func checkout(t testing.TB, bare, rev string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", bare, rev, dir)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return dir
}

// files lists the files of a commit of a bare repository, sorted.
func files(t testing.TB, bare, rev string) []string {
	t.Helper()
	out := git(t, bare, "ls-tree", "-r", "--name-only", rev)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// readState reads the public material of a commit.
func readState(t testing.TB, bare, rev string) *state.State {
	t.Helper()
	st, err := plan.ReadState(checkout(t, bare, rev))
	require.NoError(t, err)
	return st
}

// cacheClones lists the clone directories gitsync made in a cache dir.
func cacheClones(t testing.TB, cache string) []string {
	t.Helper()
	ents, err := os.ReadDir(cache)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(cache, e.Name()))
		}
	}
	return out
}

// requireCacheClean asserts every clone in the cache is exactly at its
// remote-tracking branch with a clean worktree: what a failed run must leave.
func requireCacheClean(t testing.TB, cache string) {
	t.Helper()
	clones := cacheClones(t, cache)
	require.NotEmpty(t, clones)
	for _, c := range clones {
		require.Empty(t, git(t, c, "status", "--porcelain", "--ignored", "--untracked-files=all"), "clone %s has leftovers", c)
		head := tryGit(c, "rev-parse", "--verify", "-q", "HEAD")
		tracking := tryGit(c, "rev-parse", "--verify", "-q", "refs/remotes/origin/main")
		require.Equal(t, tracking, head, "clone %s: HEAD is not the remote's tip", c)
	}
}

func tryGit(dir string, args ...string) string {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv()
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}
