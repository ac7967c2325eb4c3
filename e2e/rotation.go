package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// LoadBalancer is a loopback TCP proxy in front of several apiservers, as a
// load balancer with health checks would be: it sends each connection to a
// backend marked up, trying the next one when a dial is refused. TLS passes
// through, so clients verify the apiservers themselves.
type LoadBalancer struct {
	Addr string

	ln       net.Listener
	mu       sync.Mutex
	backends []string
	up       map[string]bool
	next     int
	refused  int // dials that failed and went to the next backend
	wg       sync.WaitGroup
}

// Refused counts the connections a backend refused and another took.
func (lb *LoadBalancer) Refused() int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.refused
}

// StartLoadBalancer listens on ip (loopback) and sends connections to backends (host:port).
func StartLoadBalancer(t testing.TB, ip string, backends ...string) *LoadBalancer {
	t.Helper()
	mustLoopback(t, ip)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	lb := &LoadBalancer{Addr: ln.Addr().String(), ln: ln, backends: backends, up: map[string]bool{}}
	for _, b := range backends {
		lb.up[b] = true
	}
	lb.wg.Add(1)
	go lb.serve()
	t.Cleanup(func() { ln.Close(); lb.wg.Wait() })
	return lb
}

// Replace restarts one backend as a rollout does: stopped while the load
// balancer still sends to it (its health check notices a moment later;
// meanwhile refused connections go to another backend), started, and put
// back once start returns, which waits until it is ready.
func (lb *LoadBalancer) Replace(backend string, stop, start func()) {
	stop()
	time.Sleep(300 * time.Millisecond)
	lb.SetUp(backend, false)
	start()
	lb.SetUp(backend, true)
}

// SetUp marks a backend up or down, as a health check would.
func (lb *LoadBalancer) SetUp(backend string, up bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.up[backend] = up
}

func (lb *LoadBalancer) serve() {
	defer lb.wg.Done()
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		lb.wg.Add(1)
		go func() {
			defer lb.wg.Done()
			lb.handle(c)
		}()
	}
}

// candidates are the backends to try for one connection, up ones first,
// starting from the next in turn.
func (lb *LoadBalancer) candidates() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var up, down []string
	for i := range lb.backends {
		b := lb.backends[(lb.next+i)%len(lb.backends)]
		if lb.up[b] {
			up = append(up, b)
		} else {
			down = append(down, b)
		}
	}
	lb.next++
	return append(up, down...)
}

func (lb *LoadBalancer) handle(c net.Conn) {
	defer c.Close()
	var backend net.Conn
	for _, b := range lb.candidates() {
		conn, err := net.DialTimeout("tcp", b, time.Second)
		if err == nil {
			backend = conn
			break
		}
		lb.mu.Lock()
		lb.refused++
		lb.mu.Unlock()
	}
	if backend == nil {
		return // the client sees the connection close, as with no backend at all
	}
	defer backend.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, c); closeWrite(backend); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, backend); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// Outcome is what became of one request.
type Outcome string

const (
	OutcomeOK Outcome = "ok"
	// Trust failures: what a rotation must never cause.
	OutcomeX509      Outcome = "x509"
	OutcomeHandshake Outcome = "tls-handshake"
	Outcome401       Outcome = "http-401"
	Outcome403       Outcome = "http-403"
	// OutcomeUnavailable: no apiserver answered after the retries (both restarting).
	OutcomeUnavailable Outcome = "unavailable"
	OutcomeOther       Outcome = "other"
)

// IsTrustFailure reports whether an outcome is a failure of trust.
func (o Outcome) IsTrustFailure() bool {
	switch o {
	case OutcomeX509, OutcomeHandshake, Outcome401, Outcome403:
		return true
	}
	return false
}

// classify names an error or status the way the rotation test counts it.
func classify(status int, err error) Outcome {
	switch {
	case err == nil && status == http.StatusUnauthorized:
		return Outcome401
	case err == nil && status == http.StatusForbidden:
		return Outcome403
	case err == nil && status >= 200 && status < 300:
		return OutcomeOK
	case err == nil:
		return OutcomeOther
	}
	var uae x509.UnknownAuthorityError
	var cie x509.CertificateInvalidError
	var hne x509.HostnameError
	var tve *tls.CertificateVerificationError
	var ae tls.AlertError
	msg := err.Error()
	switch {
	case errors.As(err, &uae), errors.As(err, &cie), errors.As(err, &hne), errors.As(err, &tve), strings.Contains(msg, "x509:"):
		return OutcomeX509
	case errors.As(err, &ae), strings.Contains(msg, "tls:"), strings.Contains(msg, "handshake"):
		return OutcomeHandshake
	}
	return OutcomeOther
}

// transient reports whether a failed attempt is a restart's doing, to be
// retried: a refused or reset connection, or one closed before an answer.
func transient(status int, err error) bool {
	if err == nil {
		return status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection refused")
}

// ClientFiles says where a client reads its credentials from, as exported:
// a kubeconfig (CA data, client certificate and key), or separate PEM files.
type ClientFiles struct {
	Kubeconfig string
	// Context is the kubeconfig's context to use; "" is its current one.
	Context           string
	CAFile            string
	CertFile, KeyFile string
	// Headers are sent with every request (a front-proxy's X-Remote-User).
	Headers map[string]string
}

// loadTLS reads the client's credentials; the digest tells a reload.
func (f ClientFiles) loadTLS() (*tls.Config, [32]byte, error) {
	var ca, cert, key []byte
	if f.Kubeconfig != "" {
		raw, err := os.ReadFile(f.Kubeconfig)
		if err != nil {
			return nil, [32]byte{}, err
		}
		cfg, err := clientcmd.Load(raw)
		if err != nil {
			return nil, [32]byte{}, err
		}
		ctx := cfg.Contexts[cmp.Or(f.Context, cfg.CurrentContext)]
		if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
			return nil, [32]byte{}, fmt.Errorf("%s: no context %q with a cluster and a user", f.Kubeconfig, cmp.Or(f.Context, cfg.CurrentContext))
		}
		ca = cfg.Clusters[ctx.Cluster].CertificateAuthorityData
		cert, key = cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData, cfg.AuthInfos[ctx.AuthInfo].ClientKeyData
	} else {
		var err error
		if ca, err = os.ReadFile(f.CAFile); err != nil {
			return nil, [32]byte{}, err
		}
		if cert, err = os.ReadFile(f.CertFile); err != nil {
			return nil, [32]byte{}, err
		}
		if key, err = os.ReadFile(f.KeyFile); err != nil {
			return nil, [32]byte{}, err
		}
	}
	sum := sha256.Sum256(bytes.Join([][]byte{ca, cert, key}, []byte{0}))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, sum, fmt.Errorf("no CA certificate")
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, sum, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, sum, nil
}

// Tally counts outcomes by phase.
type Tally struct {
	mu       sync.Mutex
	phase    string
	phases   []string
	counts   map[string]map[Outcome]int
	retries  map[string]int
	reloads  map[string]int
	failures map[string][]string // the first few trust failures of each phase, for the log
}

func newTally(phase string) *Tally {
	t := &Tally{counts: map[string]map[Outcome]int{}, retries: map[string]int{}, reloads: map[string]int{}, failures: map[string][]string{}}
	t.SetPhase(phase)
	return t
}

// SetPhase starts counting under a new phase name.
func (t *Tally) SetPhase(p string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase = p
	if t.counts[p] == nil {
		t.counts[p] = map[Outcome]int{}
		t.phases = append(t.phases, p)
	}
}

func (t *Tally) add(o Outcome, retries int, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[t.phase][o]++
	t.retries[t.phase] += retries
	if o != OutcomeOK && len(t.failures[t.phase]) < 5 {
		t.failures[t.phase] = append(t.failures[t.phase], string(o)+": "+detail)
	}
}

func (t *Tally) reloaded() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reloads[t.phase]++
}

// PhaseCounts is a copy of one phase's counts.
func (t *Tally) PhaseCounts(p string) (counts map[Outcome]int, retries, reloads int, failures []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	counts = map[Outcome]int{}
	for k, v := range t.counts[p] {
		counts[k] = v
	}
	return counts, t.retries[p], t.reloads[p], append([]string(nil), t.failures[p]...)
}

// Phases lists the phases in the order they started.
func (t *Tally) Phases() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.phases...)
}

// Summary is one line per phase: requests, outcomes, retries, reloads.
func (t *Tally) Summary() string {
	var b strings.Builder
	for _, p := range t.Phases() {
		counts, retries, reloads, _ := t.PhaseCounts(p)
		total := 0
		var parts []string
		for o, n := range counts {
			total += n
			parts = append(parts, fmt.Sprintf("%s=%d", o, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(&b, "%-18s %4d requests: %s; %d retried attempts; %d credential reloads\n", p, total, strings.Join(parts, " "), retries, reloads)
	}
	return b.String()
}

// Require fails tb for every phase in which a request failed for trust, none
// succeeded, or one found no server or failed otherwise, and for every phase
// mustReload names in which no client reloaded its credentials.
func (t *Tally) Require(tb testing.TB, mustReload func(phase string) bool) {
	tb.Helper()
	for _, p := range t.Phases() {
		counts, _, reloads, failures := t.PhaseCounts(p)
		for o, n := range counts {
			if o.IsTrustFailure() && n > 0 {
				tb.Errorf("%s: %d request(s) failed for trust (%s); first: %v", p, n, o, failures)
			}
		}
		if counts[OutcomeOK] == 0 {
			tb.Errorf("%s: no request succeeded", p)
		}
		if counts[OutcomeUnavailable] > 0 || counts[OutcomeOther] > 0 {
			tb.Errorf("%s: %d request(s) found no server, %d failed otherwise: %v", p, counts[OutcomeUnavailable], counts[OutcomeOther], failures)
		}
		if mustReload(p) && reloads == 0 {
			tb.Errorf("%s: the clients never reloaded their credentials", p)
		}
	}
}

// RotationClient sends a request every interval through url, reloading its
// credentials whenever their files change, and counts what happens.
type RotationClient struct {
	Name  string
	Tally *Tally

	url      string
	files    ClientFiles
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartRotationClient starts a client of server (https://host:port) for path.
func StartRotationClient(t testing.TB, name, server, path string, files ClientFiles, tally *Tally, interval time.Duration) *RotationClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &RotationClient{Name: name, Tally: tally, url: server + path, files: files, interval: interval, cancel: cancel, done: make(chan struct{})}
	cfg, sum, err := files.loadTLS()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go c.run(ctx, cfg, sum)
	t.Cleanup(c.Stop)
	return c
}

// Stop ends the client and waits for it.
func (c *RotationClient) Stop() {
	c.cancel()
	<-c.done
}

func (c *RotationClient) run(ctx context.Context, cfg *tls.Config, sum [32]byte) {
	defer close(c.done)
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Reload whenever the files change; a half-written set keeps the
		// previous credentials, as a client that fails to reload would.
		if next, nsum, err := c.files.loadTLS(); err == nil && nsum != sum {
			cfg, sum = next, nsum
			c.Tally.reloaded()
		}
		var out Outcome
		var detail string
		retries := 0
		for attempt := 0; ; attempt++ {
			status, err := c.once(ctx, cfg)
			if ctx.Err() != nil {
				return
			}
			if transient(status, err) && attempt < 20 {
				retries++
				time.Sleep(50 * time.Millisecond)
				continue
			}
			out = classify(status, err)
			if transient(status, err) {
				out = OutcomeUnavailable
			}
			if err != nil {
				detail = err.Error()
			} else {
				detail = fmt.Sprintf("HTTP %d", status)
			}
			break
		}
		c.Tally.add(out, retries, c.Name+": "+detail)
	}
}

// once sends one request on a connection of its own: every request is a
// new TLS handshake, so it tests the trust of that moment.
func (c *RotationClient) once(ctx context.Context, cfg *tls.Config) (int, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, Proxy: nil, TLSHandshakeTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range c.files.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}
