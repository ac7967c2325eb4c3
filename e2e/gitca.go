package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Topology and cluster the e2e tests render: examples/kubeadm declares
// cluster demo with control-plane nodes cp-0, cp-1 and cp-2 advertising
// 127.0.0.1, 127.0.0.2 and 127.0.0.3.
const (
	ExampleTopology = "examples/kubeadm"
	ExampleCluster  = "demo"
)

// NodeIP is the advertise address examples/kubeadm gives each node.
var NodeIP = map[string]string{"cp-0": "127.0.0.1", "cp-1": "127.0.0.2", "cp-2": "127.0.0.3"}

// RequireE2E skips unless GITCA_E2E=1 (make e2e sets it): these tests build
// gitca and start servers, which `make test` (go test -race ./...) should not.
func RequireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv("GITCA_E2E") != "1" {
		t.Skip("end-to-end test: set GITCA_E2E=1 or " + SkipHint)
	}
}

// RepoRoot is the directory of the gitca module's go.mod, found upward from
// the working directory (go test runs in e2e/).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == "github.com/gitca-dev/gitca" {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("gitca module root (go.mod of github.com/gitca-dev/gitca) not found above the working directory")
		}
		dir = parent
	}
}

// modulePath is the module path a go.mod declares.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// goTool is the go command: $GO if set, else go on PATH.
func goTool() string {
	if p := os.Getenv("GO"); p != "" {
		return p
	}
	return "go"
}

// BuildGitca builds ./cmd/gitca from the repository root into dir.
func BuildGitca(root, dir string) (string, error) {
	out := filepath.Join(dir, "gitca")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", out, "./cmd/gitca")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gitca: %w\n%s", err, b)
	}
	return out, nil
}

// KubeadmExport is a rendered state and the kubeadm layouts exported from it.
type KubeadmExport struct {
	Gitca      string            // the gitca binary
	StateDir   string            // the rendered state tree
	AgeKeyFile string            // the age identity that decrypts it
	Nodes      map[string]string // node name -> exported directory (like /etc/kubernetes)
}

// NodeDir is the exported directory of node, failing the test if it was not exported.
func (e *KubeadmExport) NodeDir(t testing.TB, node string) string {
	t.Helper()
	d, ok := e.Nodes[node]
	if !ok {
		t.Fatalf("node %s was not exported", node)
	}
	return d
}

// gitcaRun runs the gitca CLI from the repository root with a bounded time.
func gitcaRun(root, gitca string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitca, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), append([]string{"SOPS_DISABLE_VERSION_CHECK=1"}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("gitca %s: %w\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	// Whatever gitca prints, it never prints a key: every line of every
	// end-to-end run is checked (export writes keys to files, not to stdout).
	for _, out := range []string{stdout.String(), stderr.String()} {
		if keyInOutput.MatchString(out) {
			return "", fmt.Errorf("gitca %s printed key material", strings.Join(args, " "))
		}
	}
	return stdout.String(), nil
}

// keyInOutput is a PEM private key, its base64 form, or an age identity.
var keyInOutput = regexp.MustCompile(`PRIVATE KEY-----|LS0tLS1CRUdJTi|AGE-SECRET-KEY-`)

// RenderAndExport does what an operator does: builds gitca, makes an age
// identity (gitca keygen), renders the topology (a path relative to root, or
// absolute) into a fresh state (gitca render, sealed to that identity) and
// exports the kubeadm layout of each node (gitca export kubeadm) into dir/<node>.
func RenderAndExport(root, topology, dir string, nodes ...string) (*KubeadmExport, error) {
	gitca, err := BuildGitca(root, dir)
	if err != nil {
		return nil, err
	}
	e := &KubeadmExport{
		Gitca:      gitca,
		StateDir:   filepath.Join(dir, "state"),
		AgeKeyFile: filepath.Join(dir, "age.key"),
		Nodes:      map[string]string{},
	}
	out, err := gitcaRun(root, gitca, nil, "keygen", "--out", e.AgeKeyFile)
	if err != nil {
		return nil, err
	}
	recipient := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "age1") {
			recipient = f
		}
	}
	if recipient == "" {
		return nil, fmt.Errorf("gitca keygen printed no age recipient: %q", out)
	}
	if _, err := gitcaRun(root, gitca, []string{"SOPS_AGE_RECIPIENTS=" + recipient},
		"render", "--topology", topology, "--state", e.StateDir); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		nd := filepath.Join(dir, n)
		if _, err := gitcaRun(root, gitca, []string{"SOPS_AGE_KEY_FILE=" + e.AgeKeyFile},
			"export", "kubeadm", "--state", e.StateDir, "--node", n, "--out", nd); err != nil {
			return nil, err
		}
		e.Nodes[n] = nd
	}
	return e, nil
}

var shared struct {
	once sync.Once
	exp  *KubeadmExport
	err  error
}

// sharedDir holds what SharedExport makes; TestMain removes it.
var sharedDir string

// SharedExport renders and exports cp-0 and cp-1 once per test binary.
//
// GITCA_E2E_EXPORT_DIR=<dir> instead uses <dir>/cp-0, <dir>/cp-1 as they are
// (for debugging the harness against any kubeadm layout, e.g. one written by
// kubeadm itself); no gitca binary is built then, and StateDir is empty.
func SharedExport(t testing.TB) *KubeadmExport {
	t.Helper()
	root := RepoRoot(t)
	shared.once.Do(func() {
		if d := os.Getenv("GITCA_E2E_EXPORT_DIR"); d != "" {
			shared.exp = &KubeadmExport{Nodes: map[string]string{}}
			for _, n := range []string{"cp-0", "cp-1"} {
				shared.exp.Nodes[n] = filepath.Join(d, n)
			}
			return
		}
		var err error
		sharedDir, err = os.MkdirTemp("", "gitca-e2e-")
		if err != nil {
			shared.err = err
			return
		}
		shared.exp, shared.err = RenderAndExport(root, ExampleTopology, sharedDir, "cp-0", "cp-1")
	})
	if shared.err != nil {
		t.Fatalf("render and export with gitca: %v", shared.err)
	}
	return shared.exp
}

// ClusterRoleBindingManifests are the plain (unencrypted) manifests in the
// state tree that declare a ClusterRoleBinding, e.g.
// clusters/demo/rbac/clusterrolebinding-*.yaml.
func (e *KubeadmExport) ClusterRoleBindingManifests() ([]string, error) {
	if e.StateDir == "" {
		return nil, nil
	}
	var found []string
	err := filepath.WalkDir(e.StateDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "kind: ClusterRoleBinding" {
				found = append(found, p)
				break
			}
		}
		return nil
	})
	return found, err
}
