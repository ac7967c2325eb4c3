// Package e2e boots a real control plane (etcd and kube-apiserver) from a PKI
// exported in kubeadm's on-disk layout, to prove that what gitca renders is
// what Kubernetes accepts.
//
// The helpers here are reusable from any test: StartEtcd, StartAPIServer and
// the processes they start are stopped by t.Cleanup; their logs go to files
// under t.TempDir() and are printed when the test fails. Everything listens on
// the loopback range (127.0.0.0/8) only, on free ports unless told otherwise.
//
// Running: `make e2e` does everything (tools, the cached kube-apiserver and
// kubectl build, GITCA_E2E=1 go test ./e2e/...). By hand:
//
//	hack/install-tools.sh && hack/build-kube-apiserver.sh
//	GITCA_E2E=1 go test -count=1 -v ./e2e/
//
// Without GITCA_E2E=1 every test here skips (so `go test ./...` stays fast);
// without the binaries they skip with SkipHint, or fail under
// GITCA_E2E_STRICT=1. Binaries: $GITCA_KUBE_APISERVER, $KUBECTL, $ETCD,
// $ETCDCTL, else ${GITCA_CACHE_DIR:-~/.cache/gitca}/bin/{kube-apiserver,kubectl}-v1.37.2,
// else PATH. GITCA_E2E_EXPORT_DIR=<dir> runs the tests against <dir>/cp-0 and
// <dir>/cp-1 instead of a fresh gitca render and export (debugging only).
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KubeVersion is the Kubernetes release hack/build-kube-apiserver.sh builds.
const KubeVersion = "v1.37.2"

// SkipHint is what a test says when the control-plane binaries are missing.
const SkipHint = "run `make e2e` (hack/build-kube-apiserver.sh builds it, ~15 min)"

// Default bounds for waits; all of them are finite.
const (
	EtcdReadyTimeout      = 30 * time.Second
	APIServerReadyTimeout = 60 * time.Second
	commandTimeout        = 30 * time.Second
)

// Binaries are the programs the harness runs.
type Binaries struct {
	Etcd          string
	Etcdctl       string
	KubeAPIServer string
	Kubectl       string
}

// CacheDir is where hack/build-kube-apiserver.sh leaves its binaries (under bin/).
func CacheDir() string {
	if d := os.Getenv("GITCA_CACHE_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "gitca-cache")
	}
	return filepath.Join(home, ".cache", "gitca")
}

// lookBinary finds a program: the path in envVar if set (it must then
// exist), else the cache dir's bin/cached (if cached is not empty), else
// names on PATH.
func lookBinary(envVar, cached string, names ...string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if err := isExecutable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", envVar, p, err)
		}
		return p, nil
	}
	if cached != "" {
		p := filepath.Join(CacheDir(), "bin", cached)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	where := "PATH"
	if cached != "" {
		where = filepath.Join(CacheDir(), "bin", cached) + " or PATH"
	}
	return "", fmt.Errorf("%s not found (set %s, or put it in %s)", strings.Join(names, "/"), envVar, where)
}

func isExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// errBadEnv marks a binary whose env override points nowhere: a mistake to
// report, not a reason to skip.
var errBadEnv = errors.New("bad binary override")

// A binSpec says where one binary comes from: $env, else the cache dir
// (cached), else PATH (names).
type binSpec struct {
	dst         *string
	env, cached string
	names       []string
}

// findBinaries fills every spec's dst, or names what is missing.
func findBinaries(specs []binSpec) error {
	var errs []error
	for _, x := range specs {
		p, err := lookBinary(x.env, x.cached, x.names...)
		if err != nil {
			if os.Getenv(x.env) != "" {
				err = fmt.Errorf("%w: %w", errBadEnv, err)
			}
			errs = append(errs, err)
			continue
		}
		*x.dst = p
	}
	return errors.Join(errs...)
}

// requireBinaries finds the binaries or skips the test with hint; a binary
// override ($ETCD, ...) that points nowhere fails the test instead, and so
// does any missing binary under GITCA_E2E_STRICT=1 (.ci/run sets it, so that
// CI cannot pass by skipping).
func requireBinaries(t testing.TB, what, hint string, specs []binSpec) {
	t.Helper()
	err := findBinaries(specs)
	if errors.Is(err, errBadEnv) || (err != nil && os.Getenv("GITCA_E2E_STRICT") == "1") {
		t.Fatalf("%s: %v\n%s", what, err, hint)
	}
	if err != nil {
		t.Skipf("%v\n%s", err, hint)
	}
}

func (b *Binaries) specs() []binSpec {
	return []binSpec{
		{&b.KubeAPIServer, "GITCA_KUBE_APISERVER", "kube-apiserver-" + KubeVersion, []string{"kube-apiserver"}},
		{&b.Kubectl, "KUBECTL", "kubectl-" + KubeVersion, []string{"kubectl"}},
		{&b.Etcd, "ETCD", "", []string{"etcd"}},
		{&b.Etcdctl, "ETCDCTL", "", []string{"etcdctl"}},
	}
}

// FindBinaries locates etcd, etcdctl, kube-apiserver and kubectl:
// $ETCD, $ETCDCTL, $GITCA_KUBE_APISERVER, $KUBECTL; else the cache dir
// (kube-apiserver-v1.37.2, kubectl-v1.37.2); else PATH.
func FindBinaries() (Binaries, error) {
	var b Binaries
	err := findBinaries(b.specs())
	return b, err
}

// RequireBinaries returns the control-plane binaries or skips the test with
// SkipHint (see requireBinaries).
func RequireBinaries(t testing.TB) Binaries {
	t.Helper()
	var b Binaries
	requireBinaries(t, "control-plane binaries", SkipHint, b.specs())
	return b
}

// FreePort returns a TCP port that is free on ip (a loopback address) right now.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	mustLoopback(t, ip)
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mustLoopback refuses any address outside 127.0.0.0/8: the harness never
// listens on or connects to anything else.
func mustLoopback(t testing.TB, ip string) {
	t.Helper()
	a := net.ParseIP(ip)
	if a == nil || a.To4() == nil || !a.IsLoopback() {
		t.Fatalf("e2e harness uses 127.0.0.0/8 only, not %q", ip)
	}
}

// Process is a started program whose output goes to LogPath.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error // set when done is closed
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Log returns the process's output so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (p *Process) Stop() {
	if done, _ := p.Exited(); done {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// StartProcess runs bin with args in its own process group, output to a log
// file in t.TempDir(). t.Cleanup stops it and, if the test failed, prints the
// end of its log: a process lives as long as the t it was started with, so
// start what later subtests need on the parent test.
func StartProcess(t testing.TB, name, bin string, args []string, env []string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(f, "$ %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("---- %s log (%s), last 60 lines ----\n%s", name, logPath, tail(p.Log(), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunCommand runs a short-lived program with a bounded time and returns its
// stdout; the error includes stderr.
func RunCommand(bin string, args []string, env []string) (string, error) {
	stdout, _, err := runCommand(bin, args, env)
	return stdout, err
}

func runCommand(bin string, args []string, env []string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("%s %s: %w\nstdout: %s\nstderr: %s",
			filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), nil
}

// waitFor polls check every interval until it returns nil, the process p
// exits, or timeout passes; it returns the last error.
func waitFor(p *Process, timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if done, perr := p.Exited(); done {
			return fmt.Errorf("%s exited (%v) before it was ready; last check: %w", p.Name, perr, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", p.Name, timeout, err)
		}
		time.Sleep(interval)
	}
}

// ---------------------------------------------------------------------------
// etcd

// EtcdConfig describes one etcd member started from a kubeadm layout.
type EtcdConfig struct {
	Name string // member name, e.g. the node name cp-0
	// PKIDir is the node's exported pki directory (with etcd/ca.crt,
	// etcd/server.*, etcd/peer.*, etcd/healthcheck-client.*).
	PKIDir string
	IP     string // loopback address the member listens on; 127.0.0.1 if empty
	// ClientPort and PeerPort: 0 picks free ports.
	ClientPort, PeerPort int
	// InitialCluster is name=peerURL,...; empty means a one-member cluster.
	InitialCluster string
	// ClusterState is "new" (default) or "existing" (joining with member add).
	ClusterState string
	ReadyTimeout time.Duration // default EtcdReadyTimeout
	ExtraArgs    []string
}

// Etcd is a running etcd member.
type Etcd struct {
	*Process
	Config    EtcdConfig
	ClientURL string
	PeerURL   string
	DataDir   string
	etcdctl   string
}

// StartEtcd starts an etcd member with TLS and client-certificate auth on
// both the client and the peer side, using the node's exported etcd
// certificates, and waits until etcdctl (with the healthcheck-client
// certificate) reports it healthy.
func StartEtcd(t testing.TB, bins Binaries, cfg EtcdConfig) *Etcd {
	t.Helper()
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	mustLoopback(t, cfg.IP)
	if cfg.ClientPort == 0 {
		cfg.ClientPort = FreePort(t, cfg.IP)
	}
	if cfg.PeerPort == 0 {
		cfg.PeerPort = FreePort(t, cfg.IP)
	}
	if cfg.ClusterState == "" {
		cfg.ClusterState = "new"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = EtcdReadyTimeout
	}
	e := &Etcd{
		Config:    cfg,
		ClientURL: "https://" + net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.ClientPort)),
		PeerURL:   "https://" + net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.PeerPort)),
		DataDir:   filepath.Join(t.TempDir(), cfg.Name+".etcd"),
		etcdctl:   bins.Etcdctl,
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.Name + "=" + e.PeerURL
		e.Config.InitialCluster = cfg.InitialCluster
	}
	pki := func(f string) string { return filepath.Join(cfg.PKIDir, "etcd", f) }
	args := []string{
		"--name=" + cfg.Name,
		"--data-dir=" + e.DataDir,
		"--listen-client-urls=" + e.ClientURL,
		"--advertise-client-urls=" + e.ClientURL,
		"--listen-peer-urls=" + e.PeerURL,
		"--initial-advertise-peer-urls=" + e.PeerURL,
		"--initial-cluster=" + cfg.InitialCluster,
		"--initial-cluster-state=" + cfg.ClusterState,
		"--initial-cluster-token=gitca-e2e",
		"--client-cert-auth=true",
		"--trusted-ca-file=" + pki("ca.crt"),
		"--cert-file=" + pki("server.crt"),
		"--key-file=" + pki("server.key"),
		"--peer-client-cert-auth=true",
		"--peer-trusted-ca-file=" + pki("ca.crt"),
		"--peer-cert-file=" + pki("peer.crt"),
		"--peer-key-file=" + pki("peer.key"),
		"--snapshot-count=10000",
		"--logger=zap",
		"--log-outputs=stderr",
	}
	args = append(args, cfg.ExtraArgs...)
	// Debian's etcd 3.4 warns on non-amd64/arm64; the variable is harmless elsewhere.
	e.Process = StartProcess(t, "etcd-"+cfg.Name, bins.Etcd, args, []string{"ETCD_UNSUPPORTED_ARCH=" + runtime.GOARCH})
	err := waitFor(e.Process, cfg.ReadyTimeout, 250*time.Millisecond, func() error {
		_, err := e.Ctl("endpoint", "health")
		return err
	})
	if err != nil {
		t.Fatalf("etcd %s: %v", cfg.Name, err)
	}
	return e
}

// Ctl runs etcdctl (API v3) against this member, authenticated with the
// node's healthcheck-client certificate, and returns its stdout followed by
// its stderr (etcdctl 3.4 prints endpoint health on stderr).
func (e *Etcd) Ctl(args ...string) (string, error) {
	pki := func(f string) string { return filepath.Join(e.Config.PKIDir, "etcd", f) }
	full := append([]string{
		"--endpoints=" + e.ClientURL,
		"--cacert=" + pki("ca.crt"),
		"--cert=" + pki("healthcheck-client.crt"),
		"--key=" + pki("healthcheck-client.key"),
		"--dial-timeout=3s",
		"--command-timeout=10s",
	}, args...)
	stdout, stderr, err := runCommand(e.etcdctl, full, []string{"ETCDCTL_API=3"})
	return stdout + stderr, err
}

// AddMember announces a new member (etcdctl member add) and returns the
// initial-cluster string to start it with --initial-cluster-state=existing.
func (e *Etcd) AddMember(name, peerURL string) (string, error) {
	out, err := e.Ctl("member", "add", name, "--peer-urls="+peerURL)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ETCD_INITIAL_CLUSTER="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("etcdctl member add printed no ETCD_INITIAL_CLUSTER:\n%s", out)
}

// ---------------------------------------------------------------------------
// kube-apiserver

// APIServerConfig describes a kube-apiserver started from a kubeadm layout.
type APIServerConfig struct {
	// Dir is the exported directory (with pki/ and the *.conf kubeconfigs).
	Dir string
	// IP is the advertise and bind address; 127.0.0.1 if empty.
	IP string
	// Port is the secure port; 0 picks a free one.
	Port int
	// EtcdServers are the etcd client URLs.
	EtcdServers  []string
	ReadyTimeout time.Duration // default APIServerReadyTimeout
	ExtraArgs    []string
}

// APIServer is a running kube-apiserver.
type APIServer struct {
	*Process
	Config  APIServerConfig
	URL     string // https://IP:Port
	kubectl string
	caPool  *x509.CertPool
	home    string
}

// StartAPIServer starts the real kube-apiserver with the exported CA,
// serving certificate, etcd client, kubelet client, front-proxy
// (requestheader) and service-account files, --authorization-mode=Node,RBAC,
// and waits until /readyz says ok.
func StartAPIServer(t testing.TB, bins Binaries, cfg APIServerConfig) *APIServer {
	t.Helper()
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	mustLoopback(t, cfg.IP)
	if cfg.Port == 0 {
		cfg.Port = FreePort(t, cfg.IP)
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = APIServerReadyTimeout
	}
	if len(cfg.EtcdServers) == 0 {
		t.Fatal("StartAPIServer: no etcd servers")
	}
	for _, u := range cfg.EtcdServers {
		host, _, err := net.SplitHostPort(strings.TrimPrefix(u, "https://"))
		if err != nil {
			t.Fatalf("etcd server %q: %v", u, err)
		}
		mustLoopback(t, host)
	}
	pki := func(f string) string { return filepath.Join(cfg.Dir, "pki", f) }
	caPEM, err := os.ReadFile(pki("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s: no certificate", pki("ca.crt"))
	}
	a := &APIServer{
		Config:  cfg,
		URL:     "https://" + net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port)),
		kubectl: bins.Kubectl,
		caPool:  pool,
		home:    t.TempDir(),
	}
	// The flags kubeadm puts in its static pod manifest, minus what needs a node.
	args := []string{
		"--advertise-address=" + cfg.IP,
		"--bind-address=" + cfg.IP,
		"--secure-port=" + strconv.Itoa(cfg.Port),
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--client-ca-file=" + pki("ca.crt"),
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true",
		"--etcd-cafile=" + pki("etcd/ca.crt"),
		"--etcd-certfile=" + pki("apiserver-etcd-client.crt"),
		"--etcd-keyfile=" + pki("apiserver-etcd-client.key"),
		"--etcd-servers=" + strings.Join(cfg.EtcdServers, ","),
		"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--proxy-client-cert-file=" + pki("front-proxy-client.crt"),
		"--proxy-client-key-file=" + pki("front-proxy-client.key"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-client-ca-file=" + pki("front-proxy-ca.crt"),
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki("sa.pub"),
		"--service-account-signing-key-file=" + pki("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/12",
		"--tls-cert-file=" + pki("apiserver.crt"),
		"--tls-private-key-file=" + pki("apiserver.key"),
		// A loopback advertise address is not a valid Endpoints IP; there is no
		// Service traffic here anyway.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(a.home, "certs"),
	}
	args = append(args, cfg.ExtraArgs...)
	a.Process = StartProcess(t, "kube-apiserver", bins.KubeAPIServer, args, nil)
	err = waitFor(a.Process, cfg.ReadyTimeout, 500*time.Millisecond, func() error {
		code, body, err := a.Get("/readyz", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("/readyz: %d %s", code, strings.TrimSpace(body))
		}
		return nil
	})
	if err != nil {
		if _, body, verr := a.Get("/readyz?verbose", nil); verr == nil {
			t.Logf("/readyz?verbose:\n%s", body)
		}
		t.Fatalf("kube-apiserver: %v", err)
	}
	return a
}

// Get requests path over TLS, verifying the server against the exported
// ca.crt. clientCert, if not nil, is always presented, whether or not the
// server names its issuer as acceptable.
func (a *APIServer) Get(path string, clientCert *tls.Certificate) (int, string, error) {
	return a.Do(http.MethodGet, path, "", clientCert, nil)
}

// Do sends one request (JSON body if not empty, extra headers) like Get.
func (a *APIServer) Do(method, path, body string, clientCert *tls.Certificate, headers map[string]string) (int, string, error) {
	tlsCfg := &tls.Config{RootCAs: a.caPool, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return clientCert, nil
		}
	}
	c := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil},
	}
	defer c.CloseIdleConnections()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// Kubectl runs kubectl with the given kubeconfig against this server (its
// server: is overridden with --server, the files are left as exported) and
// returns stdout.
func (a *APIServer) Kubectl(kubeconfig string, args ...string) (string, error) {
	full := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--server=" + a.URL,
		"--cache-dir=" + filepath.Join(a.home, "kube-cache"),
		"--request-timeout=20s",
	}, args...)
	return RunCommand(a.kubectl, full, []string{
		"HOME=" + a.home,
		"KUBERC=off",
		"NO_PROXY=127.0.0.0/8", "no_proxy=127.0.0.0/8",
	})
}
