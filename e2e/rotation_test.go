package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// rotationRig is a control plane that can be rolled: one etcd, two
// kube-apiservers (nodes cp-0 and cp-1) behind a load balancer, each with
// its own copy of the exported files, and the gitca state they come from.
type rotationRig struct {
	t        *testing.T
	bins     Binaries
	root     string
	gitca    string
	env      []string // SOPS_AGE_RECIPIENTS and SOPS_AGE_KEY_FILE
	topology string
	state    string
	dir      string
	lb       *LoadBalancer
	servers  map[string]*APIServer // by node
	configs  map[string]APIServerConfig
	lastRun  time.Time
}

func (r *rotationRig) gitcaRun(args ...string) string {
	r.t.Helper()
	out, err := gitcaRun(r.root, r.gitca, r.env, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// export writes node's kubeadm layout into dir, as a node's config
// management would after a commit.
func (r *rotationRig) export(node, dir string) {
	r.t.Helper()
	r.gitcaRun("export", "kubeadm", "--state", r.state, "--node", node, "--out", dir)
}

// render runs one gitca render (the real clock: the certificates must be
// valid now) and requires that it carries out want, the next phase.
func (r *rotationRig) render(want string) string {
	r.t.Helper()
	// The soak is one second: wait it out, so each render is one phase.
	if wait := time.Until(r.lastRun.Add(1500 * time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	out := r.gitcaRun("render", "--topology", r.topology, "--state", r.state)
	r.lastRun = time.Now()
	if want != "" && !strings.Contains(out, want) {
		r.t.Fatalf("render: want %s in the plan:\n%s", want, out)
	}
	return out
}

// roll restarts each apiserver in turn with its node's new files, as a
// rollout does, so a client always has one to talk to.
func (r *rotationRig) roll() {
	r.t.Helper()
	for _, node := range []string{"cp-0", "cp-1"} {
		cfg := r.configs[node]
		r.lb.Replace(net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port)), r.servers[node].Stop, func() {
			r.export(node, cfg.Dir)
			r.servers[node] = StartAPIServer(r.t, r.bins, cfg)
		})
	}
}

func newRotationRig(t *testing.T) *rotationRig {
	t.Helper()
	RequireE2E(t)
	bins := RequireBinaries(t)
	root := RepoRoot(t)
	dir := t.TempDir()
	gitca, err := BuildGitca(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &rotationRig{t: t, bins: bins, root: root, gitca: gitca, dir: dir,
		topology: filepath.Join(dir, "topology"), state: filepath.Join(dir, "state"),
		servers: map[string]*APIServer{}, configs: map[string]APIServerConfig{}}
	if err := os.CopyFS(r.topology, os.DirFS(filepath.Join(root, ExampleTopology))); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "age.key")
	out, err := gitcaRun(root, gitca, nil, "keygen", "--out", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	recipient := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "age1") {
			recipient = f
		}
	}
	r.env = []string{"SOPS_AGE_RECIPIENTS=" + recipient, "SOPS_AGE_KEY_FILE=" + keyFile}
	r.render("")

	etcdDir := filepath.Join(dir, "etcd")
	r.export("cp-0", etcdDir)
	etcd := StartEtcd(t, bins, EtcdConfig{Name: "cp-0", PKIDir: filepath.Join(etcdDir, "pki"), IP: NodeIP["cp-0"]})
	var backends []string
	for _, node := range []string{"cp-0", "cp-1"} {
		cfg := APIServerConfig{Dir: filepath.Join(dir, "apiserver-"+node), IP: NodeIP[node], EtcdServers: []string{etcd.ClientURL}}
		cfg.Port = FreePort(t, cfg.IP)
		r.export(node, cfg.Dir)
		r.configs[node] = cfg
		r.servers[node] = StartAPIServer(t, bins, cfg)
		backends = append(backends, net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port)))
	}
	// The apiserver certificate names 127.0.0.1, where the load balancer listens.
	r.lb = StartLoadBalancer(t, "127.0.0.1", backends...)
	return r
}

// TestRotationZeroTrustFailures walks the cluster CA and the front-proxy CA
// through Add, Switch and Drop on a running control plane while two clients
// send a request every 100 ms, reloading their exported credentials when
// they change: one with admin's client certificate, one as a front-proxy
// (its client certificate and X-Remote-* headers). Not one request may fail
// for a reason of trust in any phase; after Drop, a client certificate of
// the old CA is refused. Then the service-account key rotates the same way,
// and a token issued before it validates through Add and Switch and stops
// after Drop.
func TestRotationZeroTrustFailures(t *testing.T) {
	r := newRotationRig(t)
	server := "https://" + r.lb.Addr
	clientDir := filepath.Join(r.dir, "client")
	r.export("cp-0", clientDir)
	oldAdmin := filepath.Join(r.dir, "super-admin-generation-1.conf")
	copyFile(t, filepath.Join(clientDir, "super-admin.conf"), oldAdmin)

	tally := newTally("before")
	const path = "/api/v1/namespaces/kube-system/configmaps?limit=1"
	admin := StartRotationClient(t, "admin", server, path, ClientFiles{Kubeconfig: filepath.Join(clientDir, "super-admin.conf")}, tally, 100*time.Millisecond)
	proxied := StartRotationClient(t, "front-proxy", server, path, ClientFiles{
		CAFile:   filepath.Join(clientDir, "pki", "ca.crt"),
		CertFile: filepath.Join(clientDir, "pki", "front-proxy-client.crt"),
		KeyFile:  filepath.Join(clientDir, "pki", "front-proxy-client.key"),
		Headers:  map[string]string{"X-Remote-User": "proxied-admin", "X-Remote-Group": "system:masters"},
	}, tally, 100*time.Millisecond)
	time.Sleep(2 * time.Second)

	r.gitcaRun("rotate", "ca", "demo-ca", "--topology", r.topology, "--state", r.state, "--soak", "1s")
	r.gitcaRun("rotate", "ca", "demo-front-proxy-ca", "--topology", r.topology, "--state", r.state, "--soak", "1s")
	for _, phase := range []struct{ name, reason, servingIssuer string }{
		{"ca-add", "rotation-add", "kubernetes"},
		{"ca-switch", "rotation-switch", "kubernetes-g2"},
		{"ca-drop", "rotation-drop", "kubernetes-g2"},
	} {
		tally.SetPhase(phase.name)
		r.render(phase.reason)
		r.export("cp-0", clientDir) // the clients' machine gets the new files
		r.roll()
		for node, a := range r.servers {
			if got := servingIssuer(t, a); got != phase.servingIssuer {
				t.Errorf("%s: %s serves a certificate issued by %q, want %q", phase.name, node, got, phase.servingIssuer)
			}
		}
		time.Sleep(2 * time.Second)
	}
	t.Run("after Drop a client certificate of the old CA is refused", func(t *testing.T) {
		// And a client that never reloaded its CA data cannot verify the apiservers any more.
		oldCA := x509.NewCertPool()
		oldCA.AppendCertsFromPEM(kubeconfigCA(t, oldAdmin))
		conn, err := tls.Dial("tcp", r.lb.Addr, &tls.Config{RootCAs: oldCA, MinVersion: tls.VersionTLS12})
		if err == nil {
			conn.Close()
			t.Error("generation 1's CA data still verifies the apiservers")
		} else if classify(0, err) != OutcomeX509 {
			t.Errorf("generation 1's CA data: want an x509 error, got %v", err)
		}
		for node, a := range r.servers {
			cert := kubeconfigCert(t, oldAdmin)
			if code, _, err := a.Get("/api", &cert); err != nil || code != http.StatusUnauthorized {
				t.Errorf("%s: generation 1's client certificate: HTTP %d, %v; want 401", node, code, err)
			}
		}
	})

	t.Run("service-account key: tokens issued before validate until Drop", func(t *testing.T) {
		admin := filepath.Join(r.configs["cp-0"].Dir, "super-admin.conf")
		a0 := r.servers["cp-0"]
		if _, err := a0.Kubectl(admin, "create", "serviceaccount", "rotation-test", "-n", "default"); err != nil {
			t.Fatal(err)
		}
		token := func() string {
			out, err := r.servers["cp-0"].Kubectl(admin, "create", "token", "rotation-test", "-n", "default", "--duration=1h")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(out)
		}
		// valid reports, per apiserver, whether a token authenticates: 403
		// (authenticated, not allowed) rather than 401.
		valid := func(tok string) map[string]bool {
			out := map[string]bool{}
			for node, a := range r.servers {
				code, body, err := a.Do(http.MethodGet, "/api/v1/namespaces/kube-system/secrets", "", nil, map[string]string{"Authorization": "Bearer " + tok})
				if err != nil || (code != http.StatusForbidden && code != http.StatusUnauthorized) {
					t.Fatalf("%s: HTTP %d %v: %s", node, code, err, body)
				}
				out[node] = code == http.StatusForbidden
			}
			return out
		}
		both := map[string]bool{"cp-0": true, "cp-1": true}
		neither := map[string]bool{"cp-0": false, "cp-1": false}
		before := token()
		kidBefore := tokenKid(t, before)
		r.gitcaRun("rotate", "keypair", "demo-sa", "--topology", r.topology, "--state", r.state, "--soak", "1s", "--token-lifetime", "1s")

		tally.SetPhase("sa-add")
		r.render("rotation-add")
		r.roll()
		assertEqual(t, "Add: the token issued before", both, valid(before))
		jwks := apiserverKids(t, r.servers["cp-0"], admin)
		assertEqual(t, "Add: kube-apiserver's JWKS key ids are gitca's", exportedKids(t, r.configs["cp-0"].Dir), jwks)
		if len(jwks) != 2 || !slices.Contains(jwks, kidBefore) {
			t.Errorf("Add: the verify list %v should hold the old key %s and the new one", jwks, kidBefore)
		}

		tally.SetPhase("sa-switch")
		r.render("rotation-switch")
		r.roll()
		after := token()
		if tokenKid(t, after) == kidBefore {
			t.Errorf("Switch: a new token is still signed with the old key %s", kidBefore)
		}
		assertEqual(t, "Switch: the token issued before", both, valid(before))
		assertEqual(t, "Switch: a token of the new key", both, valid(after))

		tally.SetPhase("sa-drop")
		r.render("rotation-drop")
		r.roll()
		assertEqual(t, "Drop: the token issued before", neither, valid(before))
		assertEqual(t, "Drop: a token of the new key", both, valid(after))
		jwks = apiserverKids(t, r.servers["cp-0"], admin)
		if len(jwks) != 1 || slices.Contains(jwks, kidBefore) {
			t.Errorf("Drop: the verify list %v should hold the new key only", jwks)
		}
	})

	tally.SetPhase("after")
	time.Sleep(2 * time.Second)
	admin.Stop()
	proxied.Stop()
	t.Logf("requests through the load balancer, by phase (%d connections refused by a stopped apiserver went to the other):\n%s", r.lb.Refused(), tally.Summary())
	tally.Require(t, func(phase string) bool { return strings.HasPrefix(phase, "ca-") })
}

func assertEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if string(wb) != string(gb) {
		t.Errorf("%s: got %s, want %s", what, gb, wb)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servingIssuer is the common name of the issuer of the certificate an apiserver serves.
func servingIssuer(t *testing.T, a *APIServer) string {
	t.Helper()
	host := strings.TrimPrefix(a.URL, "https://")
	conn, err := tlsDialInsecure(host)
	if err != nil {
		t.Fatalf("%s: %v", a.URL, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Issuer.CommonName
}

// tokenKid is the key id in a JWT's header.
func tokenKid(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// apiserverKids are the key ids kube-apiserver publishes at /openid/v1/jwks, sorted.
func apiserverKids(t *testing.T, a *APIServer, kubeconfig string) []string {
	t.Helper()
	out, err := a.Kubectl(kubeconfig, "get", "--raw", "/openid/v1/jwks")
	if err != nil {
		t.Fatal(err)
	}
	return kidsOf(t, []byte(out))
}

// exportedKids are the key ids of the JWK Set gitca exported (pki/sa.jwks.json), sorted.
func exportedKids(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pki", "sa.jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	return kidsOf(t, b)
}

func kidsOf(t *testing.T, doc []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS %s: %v", doc, err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}

// tlsDialInsecure connects only to read the certificate a server presents.
func tlsDialInsecure(host string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", host, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the peer certificate, trusts nothing
}

// kubeconfigCA is the CA data a kubeconfig embeds.
func kubeconfigCA(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		return c.CertificateAuthorityData
	}
	t.Fatalf("%s: no cluster", path)
	return nil
}

// kubeconfigCert is the client certificate and key a kubeconfig embeds.
func kubeconfigCert(t *testing.T, path string) tls.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		pair, err := tls.X509KeyPair(a.ClientCertificateData, a.ClientKeyData)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	t.Fatalf("%s: no client certificate", path)
	return tls.Certificate{}
}
