package e2e

// The Flux half of the harness: the real source-controller and
// kustomize-controller (built by hack/build-flux.sh) as processes against a
// kube-apiserver started with StartAPIServer, and a smart-HTTP git server on
// loopback for them to pull a state repository from.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// FluxVersion is the release of source-controller and kustomize-controller
// that hack/build-flux.sh builds.
const FluxVersion = "v1.9.6"

// FluxNamespace is where the controllers "run" (RUNTIME_NAMESPACE) and where
// a user keeps the GitRepository, the Kustomizations and the sops-age Secret.
const FluxNamespace = "flux-system"

// FluxSkipHint is what a test says when the Flux controllers are missing.
const FluxSkipHint = "run `make e2e` (hack/build-flux.sh builds source-controller and kustomize-controller " + FluxVersion + ", ~10 min)"

// FluxReadyTimeout bounds a controller's start (informer caches synced, probes green).
const FluxReadyTimeout = 60 * time.Second

// FluxBinaries are the two controllers and the directory of their CRDs:
// $GITCA_SOURCE_CONTROLLER, $GITCA_KUSTOMIZE_CONTROLLER and $GITCA_FLUX_CRDS,
// else the cache dir (bin/<controller>-v1.9.6, flux-v1.9.6/crd), else PATH.
type FluxBinaries struct {
	SourceController    string
	KustomizeController string
	CRDDir              string
}

// RequireFluxBinaries returns the controllers and CRDs or skips (fails under
// GITCA_E2E_STRICT=1) like RequireBinaries.
func RequireFluxBinaries(t testing.TB) FluxBinaries {
	t.Helper()
	var b FluxBinaries
	requireBinaries(t, "Flux controllers", FluxSkipHint, []binSpec{
		{&b.SourceController, "GITCA_SOURCE_CONTROLLER", "source-controller-" + FluxVersion, []string{"source-controller"}},
		{&b.KustomizeController, "GITCA_KUSTOMIZE_CONTROLLER", "kustomize-controller-" + FluxVersion, []string{"kustomize-controller"}},
	})
	b.CRDDir = os.Getenv("GITCA_FLUX_CRDS")
	if b.CRDDir == "" {
		b.CRDDir = filepath.Join(CacheDir(), "flux-"+FluxVersion, "crd")
	}
	crds, _ := filepath.Glob(filepath.Join(b.CRDDir, "*.yaml"))
	if len(crds) == 0 {
		msg := fmt.Sprintf("no Flux CRDs in %s (set GITCA_FLUX_CRDS)\n%s", b.CRDDir, FluxSkipHint)
		if os.Getenv("GITCA_E2E_STRICT") == "1" || os.Getenv("GITCA_FLUX_CRDS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return b
}

// KubeconfigFor writes a copy of kubeconfig whose clusters all point at
// server, for programs that cannot be given --server (the controllers): the
// exported files name the control-plane endpoint, not the test's free port.
// The copy holds a private key, so it is written 0600 into dir.
func KubeconfigFor(kubeconfig, server, dir string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", err
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	out := filepath.Join(dir, filepath.Base(kubeconfig))
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		return "", err
	}
	return out, os.Chmod(out, 0o600)
}

// Flux is a running source-controller and kustomize-controller.
type Flux struct {
	Source, Kustomize *Process
	// StorageURL is where source-controller serves artifacts and what it
	// advertises in their URLs, so kustomize-controller downloads from it.
	StorageURL string
}

// StartFlux does what `flux install` does, against api with the admin
// kubeconfig: installs the CRDs and the flux-system namespace, then starts
// both controllers as processes (leader election off, probes, metrics and
// artifact storage on free loopback ports) and waits until they are ready.
// They run as admin: RBAC for Flux's own service accounts is not what this
// harness tests.
func StartFlux(t testing.TB, api *APIServer, admin string, bins FluxBinaries) *Flux {
	t.Helper()
	if _, err := api.Kubectl(admin, "apply", "--server-side", "-f", bins.CRDDir); err != nil {
		t.Fatalf("install the Flux CRDs: %v", err)
	}
	// A CRD serves its kind only once it is Established.
	if _, err := api.Kubectl(admin, "wait", "--for=condition=Established", "--timeout=60s", "-f", bins.CRDDir); err != nil {
		t.Fatalf("Flux CRDs not established: %v", err)
	}
	if _, err := api.Kubectl(admin, "create", "namespace", FluxNamespace); err != nil {
		t.Fatalf("create namespace %s: %v", FluxNamespace, err)
	}

	dir := t.TempDir()
	kubeconfig, err := KubeconfigFor(admin, api.URL, dir)
	if err != nil {
		t.Fatalf("controller kubeconfig: %v", err)
	}
	env := func(name string) []string {
		home := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
			t.Fatal(err)
		}
		return []string{
			"KUBECONFIG=" + kubeconfig,
			"RUNTIME_NAMESPACE=" + FluxNamespace,
			"HOME=" + home,
			"TMPDIR=" + filepath.Join(home, "tmp"),
			// Everything here is loopback; a proxy in the environment must not see it.
			"NO_PROXY=127.0.0.0/8,localhost", "no_proxy=127.0.0.0/8,localhost",
		}
	}
	const ip = "127.0.0.1"
	addr := func() string { return net.JoinHostPort(ip, strconv.Itoa(FreePort(t, ip))) }
	common := func() (args []string, health string) {
		health = addr()
		return []string{
			"--metrics-addr=" + addr(),
			"--health-addr=" + health,
			"--enable-leader-election=false",
			"--log-encoding=console",
			"--events-addr=",
		}, health
	}

	f := &Flux{}
	// source-controller refuses a storage path that does not exist yet.
	storagePath := filepath.Join(dir, "storage")
	if err := os.Mkdir(storagePath, 0o700); err != nil {
		t.Fatal(err)
	}
	storage := addr()
	f.StorageURL = "http://" + storage
	srcArgs, srcHealth := common()
	srcArgs = append(srcArgs,
		"--storage-path="+storagePath,
		"--storage-addr="+storage,
		"--storage-adv-addr="+storage,
	)
	f.Source = StartProcess(t, "source-controller", bins.SourceController, srcArgs, env("source-controller"))

	kusArgs, kusHealth := common()
	// The state repo has no remote bases; refusing them keeps the test hermetic.
	kusArgs = append(kusArgs, "--no-remote-bases=true")
	f.Kustomize = StartProcess(t, "kustomize-controller", bins.KustomizeController, kusArgs, env("kustomize-controller"))

	for _, c := range []struct {
		p      *Process
		health string
	}{{f.Source, srcHealth}, {f.Kustomize, kusHealth}} {
		if err := waitFor(c.p, FluxReadyTimeout, 250*time.Millisecond, func() error {
			return httpOK("http://" + c.health + "/readyz")
		}); err != nil {
			t.Fatalf("%s: %v", c.p.Name, err)
		}
	}
	// The artifact server starts once the manager is elected (at once
	// without leader election), a moment after /readyz.
	if err := waitFor(f.Source, FluxReadyTimeout, 250*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", storage, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("source-controller artifact server: %v", err)
	}
	return f
}

func httpOK(url string) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Flux objects, read the way `flux get` shows them

// FluxObject is the part of a Flux object's status the tests wait on.
type FluxObject struct {
	Metadata struct {
		Name       string `json:"name"`
		Namespace  string `json:"namespace"`
		Generation int64  `json:"generation"`
	} `json:"metadata"`
	Spec   map[string]any `json:"spec"`
	Status struct {
		ObservedGeneration     int64       `json:"observedGeneration"`
		Conditions             []Condition `json:"conditions"`
		LastAppliedRevision    string      `json:"lastAppliedRevision"`
		LastAttemptedRevision  string      `json:"lastAttemptedRevision"`
		LastHandledReconcileAt string      `json:"lastHandledReconcileAt"`
		Artifact               *struct {
			Revision string `json:"revision"`
			URL      string `json:"url"`
		} `json:"artifact"`
	} `json:"status"`
}

// Condition is a metav1.Condition.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Ready is the object's Ready condition (Status "Unknown" if it has none yet).
func (o *FluxObject) Ready() Condition {
	for _, c := range o.Status.Conditions {
		if c.Type == "Ready" {
			return c
		}
	}
	return Condition{Type: "Ready", Status: "Unknown", Reason: "NoCondition", Message: "no Ready condition yet"}
}

func (o *FluxObject) String() string {
	r := o.Ready()
	return fmt.Sprintf("%s/%s Ready=%s %s: %s", o.Metadata.Namespace, o.Metadata.Name, r.Status, r.Reason, r.Message)
}

// GetFluxObject reads one object, e.g. ("gitrepository.source.toolkit.fluxcd.io", ns, name).
func GetFluxObject(api *APIServer, admin, resource, ns, name string) (*FluxObject, error) {
	out, err := api.Kubectl(admin, "get", resource, name, "--namespace="+ns, "-o", "json")
	if err != nil {
		return nil, err
	}
	var o FluxObject
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", resource, ns, name, err)
	}
	return &o, nil
}

// RequestReconcile is `flux reconcile --with-source=false`: it asks the
// controller to reconcile now rather than at its next interval, and returns
// the token the controller echoes in status.lastHandledReconcileAt once done.
func RequestReconcile(api *APIServer, admin, resource, ns, name string) (string, error) {
	token := time.Now().UTC().Format(time.RFC3339Nano)
	_, err := api.Kubectl(admin, "annotate", "--overwrite", "--namespace="+ns, resource, name,
		"reconcile.fluxcd.io/requestedAt="+token)
	return token, err
}

// WaitFluxRevision polls resource ns/name until its Ready condition is True
// for the given revision (Kustomization: lastAppliedRevision; source:
// artifact revision), a controller exits, or timeout passes. The error holds
// the object's last Ready condition: Flux's own words for what went wrong.
//
// A Kustomization that failed on this very revision is asked once to try
// again (a transient error passes); failing a second time ends the wait, as
// nothing the test does would change Flux's verdict before its retry interval.
func WaitFluxRevision(api *APIServer, admin string, f *Flux, resource, ns, name, revision string, timeout time.Duration) (*FluxObject, error) {
	var last *FluxObject
	retried := ""
	deadline := time.Now().Add(timeout)
	for {
		o, err := GetFluxObject(api, admin, resource, ns, name)
		if err == nil {
			last = o
			got := o.Status.LastAppliedRevision
			if o.Status.Artifact != nil && got == "" {
				got = o.Status.Artifact.Revision
			}
			current := o.Status.ObservedGeneration == o.Metadata.Generation
			ready := o.Ready()
			if ready.Status == "True" && got == revision && current {
				return o, nil
			}
			// No current here: Flux moves observedGeneration only on success.
			if ready.Status == "False" && ready.Reason != "Progressing" && o.Status.LastAttemptedRevision == revision {
				switch {
				case retried == "":
					if retried, err = RequestReconcile(api, admin, resource, ns, name); err != nil {
						return o, err
					}
				case o.Status.LastHandledReconcileAt == retried:
					return o, fmt.Errorf("%s %s (failed twice at revision %s)", resource, o, revision)
				}
			}
		}
		for _, p := range []*Process{f.Source, f.Kustomize} {
			if done, perr := p.Exited(); done {
				return last, fmt.Errorf("%s exited (%v) while waiting for %s %s/%s", p.Name, perr, resource, ns, name)
			}
		}
		if time.Now().After(deadline) {
			if last == nil {
				return nil, fmt.Errorf("%s %s/%s: %w", resource, ns, name, err)
			}
			return last, fmt.Errorf("%s %s not at revision %s after %s (last attempted %q, applied %q)",
				resource, last, revision, timeout, last.Status.LastAttemptedRevision, last.Status.LastAppliedRevision)
		}
		time.Sleep(time.Second)
	}
}

// ---------------------------------------------------------------------------
// git over smart HTTP

// GitServer serves every repository under Root read-only over git's smart
// HTTP protocol (the real `git http-backend`, as CGI) on loopback: what a
// Git host is to Flux, without one.
type GitServer struct {
	Root string
	URL  string // http://127.0.0.1:port; a repository is URL + "/" + its path under Root

	srv  *http.Server
	mu   sync.Mutex
	reqs []string
}

// StartGitServer serves root until the test ends; on failure it prints the
// requests it answered.
func StartGitServer(t testing.TB, root string) *GitServer {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git http-backend: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Dir:  root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			// The machine's git configuration is no part of the test.
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + root,
		},
		Stderr: &stderr,
	}
	g := &GitServer{Root: root, URL: "http://" + ln.Addr().String()}
	g.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			backend.ServeHTTP(rec, r)
			g.mu.Lock()
			g.reqs = append(g.reqs, fmt.Sprintf("%s %s?%s -> %d", r.Method, r.URL.Path, r.URL.RawQuery, rec.code))
			g.mu.Unlock()
		}),
	}
	go func() { _ = g.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.srv.Shutdown(ctx)
		if t.Failed() {
			g.mu.Lock()
			defer g.mu.Unlock()
			t.Logf("---- git http-backend: %d requests ----\n%s\n%s", len(g.reqs),
				tail(strings.Join(g.reqs, "\n"), 40), tail(stderr.String(), 20))
		}
	})
	return g
}

// RepoURL is the clone URL of the repository at path (relative to Root).
func (g *GitServer) RepoURL(path string) string { return g.URL + "/" + filepath.ToSlash(path) }

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets http-backend's streamed pack reach the client as it is written.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Git runs git in dir with the machine's configuration shut out and a fixed
// identity, and returns its trimmed stdout.
func Git(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@localhost",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@localhost",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}
