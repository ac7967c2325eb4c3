package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// fakeKubelet serves the part of the kubelet API the apiserver calls for
// `kubectl logs`, the way a kubelet configured from a gitca export does: its
// serving certificate is the node's kubelet/pki/kubelet.crt|key, and it
// requires a client certificate from the cluster CA (kubeadm's
// authentication.x509.clientCAFile, the CA kubelet.conf names).
type fakeKubelet struct {
	Addr string // host:port
	Port int
	node string

	mu      sync.Mutex
	clients []string // subjects of the client certificates it served
}

func startFakeKubelet(t *testing.T, node, ip, certFile, keyFile string, clientCAs *x509.CertPool) *fakeKubelet {
	t.Helper()
	mustLoopback(t, ip)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKubelet{Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port, node: node}
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, r *http.Request) {
		k.served(r)
		fmt.Fprintf(w, "log line from the kubelet of %s: %s\n", node, r.URL.Path)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		k.served(r)
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    clientCAs,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
		// The refused handshakes the tests provoke are expected, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return k
}

func (k *fakeKubelet) served(r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clients = append(k.clients, r.TLS.PeerCertificates[0].Subject.String())
}

// Clients lists the subjects of the client certificates that got an answer.
func (k *fakeKubelet) Clients() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.clients...)
}

// kubeconfigCAPool is the CA a kubeconfig's current context trusts.
func kubeconfigCAPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok || cfg.Clusters[ctx.Cluster] == nil {
		t.Fatalf("%s: no cluster for the current context %q", path, cfg.CurrentContext)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.Clusters[ctx.Cluster].CertificateAuthorityData) {
		t.Fatalf("%s: no certificate-authority-data", path)
	}
	return pool
}

// kubeconfigServer is the server URL of a kubeconfig's current context.
func kubeconfigServer(t *testing.T, path string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok || cfg.Clusters[ctx.Cluster] == nil {
		t.Fatalf("%s: no cluster for the current context %q", path, cfg.CurrentContext)
	}
	return cfg.Clusters[ctx.Cluster].Server
}

// kubeletGet calls a kubelet as the apiserver does: with a client
// certificate, verifying the kubelet's serving certificate against roots
// under serverName (empty: the address it dials).
func kubeletGet(addr, serverName string, roots *x509.CertPool, client *tls.Certificate) (string, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// registerNode creates the Node object with the node's own kubelet.conf, as a
// kubelet registers itself, pointing the apiserver at a kubelet listening on
// ip:port. The Node authorizer and NodeRestriction let a node create only itself.
func registerNode(t *testing.T, api *APIServer, kubeletConf, node, ip string, port int) {
	t.Helper()
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": node},
		"status": map[string]any{
			"addresses":       []map[string]string{{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": node}},
			"daemonEndpoints": map[string]any{"kubeletEndpoint": map[string]int{"Port": port}},
		},
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "node-"+node+".json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Kubectl(kubeletConf, "create", "-f", f); err != nil {
		t.Fatalf("registering node %s with its kubelet.conf: %v", node, err)
	}
}

// createPodOn creates a pod bound to node (no scheduler runs here) in ns,
// with the namespace's default ServiceAccount created by hand (no
// controller-manager runs either).
func createPodOn(t *testing.T, api *APIServer, admin, ns, pod, node string) {
	t.Helper()
	if _, err := api.Kubectl(admin, "get", "namespace", ns); err != nil {
		for _, args := range [][]string{{"create", "namespace", ns}, {"create", "serviceaccount", "default", "-n", ns}} {
			if _, err := api.Kubectl(admin, args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": pod, "namespace": ns},
		"spec": map[string]any{
			"nodeName":                     node,
			"automountServiceAccountToken": false,
			"containers":                   []map[string]string{{"name": "main", "image": "registry.invalid/none"}},
		},
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), pod+".json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Kubectl(admin, "create", "-f", f); err != nil {
		t.Fatal(err)
	}
}

// portFree reports whether ip:port can be listened on right now.
func portFree(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// isCertError reports whether err is a TLS verification failure on either side.
func isCertError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	if errors.As(err, &unknown) || errors.As(err, &host) {
		return true
	}
	// The server's refusal reaches the client as an alert, not a typed error.
	return err != nil && (strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "tls:"))
}
