package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// TestControlPlaneBootsFromKubeadmExport boots etcd and the real
// kube-apiserver from gitca's kubeadm export and checks that every piece of
// the PKI does its job.
func TestControlPlaneBootsFromKubeadmExport(t *testing.T) {
	RequireE2E(t)
	bins := RequireBinaries(t)
	exp := SharedExport(t)
	cp0 := exp.NodeDir(t, "cp-0")
	cp1 := exp.NodeDir(t, "cp-1")

	etcd0 := StartEtcd(t, bins, EtcdConfig{Name: "cp-0", PKIDir: filepath.Join(cp0, "pki"), IP: NodeIP["cp-0"]})
	// kubeadm leaves this unset because its kubelets sign their own serving
	// certificates; gitca's are signed by the cluster CA, so the apiserver can
	// and here must verify every kubelet it calls.
	api := StartAPIServer(t, bins, APIServerConfig{Dir: cp0, IP: NodeIP["cp-0"], EtcdServers: []string{etcd0.ClientURL},
		ExtraArgs: []string{"--kubelet-certificate-authority=" + filepath.Join(cp0, "pki", "ca.crt")}})
	conf := func(name string) string { return filepath.Join(cp0, name) }
	gitcaExport := exp.StateDir != "" // not kubeadm's own layout (GITCA_E2E_EXPORT_DIR)

	t.Run("super-admin lists namespaces", func(t *testing.T) {
		out, err := api.Kubectl(conf("super-admin.conf"), "get", "namespaces", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range []string{"namespace/default", "namespace/kube-system"} {
			if !strings.Contains(out, ns) {
				t.Errorf("namespaces: want %s in\n%s", ns, out)
			}
		}
	})

	t.Run("kubeconfigs authenticate as kubeadm's identities, exactly", func(t *testing.T) {
		type identity struct {
			file, user string
			groups     []string // besides system:authenticated; no kubeconfig:<name>
		}
		ids := []identity{
			{"super-admin.conf", "kubernetes-super-admin", []string{"system:masters"}},
			{"admin.conf", "kubernetes-admin", []string{"kubeadm:cluster-admins"}},
			{"controller-manager.conf", "system:kube-controller-manager", nil},
			{"scheduler.conf", "system:kube-scheduler", nil},
			{"kubelet.conf", "system:node:cp-0", []string{"system:nodes"}},
		}
		if gitcaExport {
			ids = append(ids, identity{kubeProxyConf, "system:kube-proxy", nil})
		}
		for _, c := range ids {
			user, groups, err := whoami(api, conf(c.file))
			if err != nil {
				t.Errorf("%s: %v", c.file, err)
				continue
			}
			want := append(slices.Clone(c.groups), "system:authenticated")
			slices.Sort(want)
			slices.Sort(groups)
			if user != c.user || !slices.Equal(groups, want) {
				t.Errorf("%s: %s %v, want %s %v", c.file, user, groups, c.user, want)
			}
		}
	})

	t.Run("kube-proxy.conf reads what kube-proxy needs and no more", func(t *testing.T) {
		if !gitcaExport {
			t.Skip("not a gitca export")
		}
		// The built-in binding system:node-proxier names the user system:kube-proxy.
		for _, can := range [][]string{{"watch", "services"}, {"list", "endpointslices.discovery.k8s.io"}, {"list", "nodes"}} {
			if !canI(t, api, conf(kubeProxyConf), append(can, "--all-namespaces")...) {
				t.Errorf("kube-proxy cannot %v", can)
			}
		}
		if canI(t, api, conf(kubeProxyConf), "list", "secrets", "--all-namespaces") {
			t.Error("kube-proxy can list secrets")
		}
	})

	t.Run("kubelet serving certificate and apiserver-kubelet-client complete mTLS", func(t *testing.T) {
		if !gitcaExport {
			t.Skip("not a gitca export")
		}
		// The kubelet side trusts the CA kubelet.conf names; the apiserver side
		// presents its kubelet client certificate and trusts ca.crt
		// (--kubelet-certificate-authority).
		kubelet := startFakeKubelet(t, "cp-0", NodeIP["cp-0"], conf(kubeletServing+".crt"), conf(kubeletServing+".key"), kubeconfigCAPool(t, conf("kubelet.conf")))
		apiClient, err := tls.LoadX509KeyPair(filepath.Join(cp0, "pki", "apiserver-kubelet-client.crt"), filepath.Join(cp0, "pki", "apiserver-kubelet-client.key"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"", "cp-0"} { // by the address dialled, and by the node's name
			if out, err := kubeletGet(kubelet.Addr, name, api.caPool, &apiClient); err != nil || strings.TrimSpace(out) != "ok" {
				t.Errorf("server name %q: %q %v", name, out, err)
			}
		}
		if got, want := kubelet.Clients(), []string{"CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins"}; len(got) != 2 || got[0] != want[0] || got[1] != want[0] {
			t.Errorf("the kubelet served %v, want %v twice", got, want)
		}
		foreignKey, foreignCA := newCA(t, "foreign-ca")
		for what, try := range map[string]func() error{
			"no client certificate": func() error { _, err := kubeletGet(kubelet.Addr, "", api.caPool, nil); return err },
			"a client certificate of another CA": func() error {
				_, err := kubeletGet(kubelet.Addr, "", api.caPool, newClientCert(t, foreignCA, foreignKey, "kube-apiserver-kubelet-client", "kubeadm:cluster-admins"))
				return err
			},
			"another node's name": func() error { _, err := kubeletGet(kubelet.Addr, "cp-1", api.caPool, &apiClient); return err },
		} {
			if err := try(); !isCertError(err) {
				t.Errorf("%s: want a TLS refusal, got %v", what, err)
			}
		}
	})

	t.Run("the apiserver calls the kubelet with its kubelet client certificate", func(t *testing.T) {
		if !gitcaExport {
			t.Skip("not a gitca export")
		}
		// The whole path of `kubectl logs`: the node registers itself with
		// kubelet.conf, the apiserver dials the node's InternalIP, verifies the
		// kubelet serving certificate with --kubelet-certificate-authority and
		// authenticates with apiserver-kubelet-client.
		kubelet := startFakeKubelet(t, "cp-0", NodeIP["cp-0"], conf(kubeletServing+".crt"), conf(kubeletServing+".key"), kubeconfigCAPool(t, conf("kubelet.conf")))
		registerNode(t, api, conf("kubelet.conf"), "cp-0", NodeIP["cp-0"], kubelet.Port)
		createPodOn(t, api, conf("super-admin.conf"), "e2e-kubelet", "on-cp-0", "cp-0")
		out, err := api.Kubectl(conf("super-admin.conf"), "logs", "-n", "e2e-kubelet", "on-cp-0")
		if err != nil || !strings.Contains(out, "log line from the kubelet of cp-0: /containerLogs/e2e-kubelet/on-cp-0/main") {
			t.Fatalf("kubectl logs through the apiserver: %q %v", out, err)
		}
		if got := kubelet.Clients(); len(got) != 1 || got[0] != "CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins" {
			t.Errorf("the kubelet served %v", got)
		}

		// The check is real: a kubelet whose certificate does not name the
		// address the apiserver dials (cp-1's, served from cp-0's address) is refused.
		liar := startFakeKubelet(t, "cp-1", NodeIP["cp-0"], filepath.Join(cp1, kubeletServing+".crt"), filepath.Join(cp1, kubeletServing+".key"), kubeconfigCAPool(t, filepath.Join(cp1, "kubelet.conf")))
		registerNode(t, api, filepath.Join(cp1, "kubelet.conf"), "cp-1", NodeIP["cp-0"], liar.Port)
		createPodOn(t, api, conf("super-admin.conf"), "e2e-kubelet", "on-cp-1", "cp-1")
		out, err = api.Kubectl(conf("super-admin.conf"), "logs", "-n", "e2e-kubelet", "on-cp-1")
		if err == nil || !strings.Contains(err.Error(), "x509") {
			t.Errorf("kubectl logs from a kubelet with the wrong certificate: want an x509 error, got %q %v", out, err)
		}
		if got := liar.Clients(); len(got) != 0 {
			t.Errorf("the misnamed kubelet served %v", got)
		}
	})

	t.Run("admin is bound by the rendered ClusterRoleBinding", func(t *testing.T) {
		if _, err := api.Kubectl(conf("admin.conf"), "get", "namespaces"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("admin.conf before the binding: want Forbidden, got %v", err)
		}
		manifests, err := clusterRoleBindingManifests(exp)
		if err != nil {
			t.Fatal(err)
		}
		if len(manifests) == 0 {
			if exp.StateDir != "" {
				t.Fatalf("no ClusterRoleBinding manifest in the state tree %s (want clusters/%s/rbac/clusterrolebinding-*.yaml)", exp.StateDir, ExampleCluster)
			}
			t.Log("no rendered manifest (GITCA_E2E_EXPORT_DIR): creating kubeadm's binding with super-admin")
			if _, err := api.Kubectl(conf("super-admin.conf"), "create", "clusterrolebinding", "kubeadm:cluster-admins",
				"--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins"); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range manifests {
			out, err := api.Kubectl(conf("super-admin.conf"), "apply", "-f", m)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("applied %s: %s", m, strings.TrimSpace(out))
		}
		// The RBAC authorizer sees the binding through an informer: allow it a moment.
		var out string
		err = waitFor(api.Process, 15*time.Second, 500*time.Millisecond, func() (err error) {
			out, err = api.Kubectl(conf("admin.conf"), "get", "namespaces", "-o", "name")
			return err
		})
		if err != nil {
			t.Fatalf("admin.conf after the binding: %v", err)
		}
		if !strings.Contains(out, "namespace/kube-system") {
			t.Fatalf("admin.conf namespaces:\n%s", out)
		}
	})

	t.Run("client certificate from a foreign CA is refused", func(t *testing.T) {
		foreignKey, foreignCA := newCA(t, "foreign-ca")
		cert := newClientCert(t, foreignCA, foreignKey, "kubernetes-admin", "system:masters")
		code, body, err := api.Get("/api/v1/namespaces", cert)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusUnauthorized {
			t.Errorf("foreign client certificate: status %d, want 401; body %s", code, body)
		}
		// The same request with a certificate from the exported CA works, so
		// the 401 is the issuer's doing.
		caCert, caKey := loadCA(t, filepath.Join(cp0, "pki", "ca.crt"), filepath.Join(cp0, "pki", "ca.key"))
		own := newClientCert(t, caCert, caKey, "e2e-master", "system:masters")
		if code, body, err := api.Get("/api/v1/namespaces", own); err != nil || code != http.StatusOK {
			t.Errorf("client certificate from the exported ca: %d %v %.200s", code, err, body)
		}
	})

	t.Run("front-proxy client asserts identities via request headers", func(t *testing.T) {
		fp, err := tls.LoadX509KeyPair(filepath.Join(cp0, "pki", "front-proxy-client.crt"), filepath.Join(cp0, "pki", "front-proxy-client.key"))
		if err != nil {
			t.Fatal(err)
		}
		code, body, err := api.Do(http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
			`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`, &fp,
			map[string]string{"X-Remote-User": "alice", "X-Remote-Group": "e2e:proxied"})
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusCreated || !strings.Contains(body, `"username":"alice"`) || !strings.Contains(body, "e2e:proxied") {
			t.Errorf("front-proxy request: %d %s", code, body)
		}
	})

	t.Run("service-account tokens are signed with sa.key and verified with sa.pub", func(t *testing.T) {
		sa := conf("super-admin.conf")
		if _, err := api.Kubectl(sa, "create", "serviceaccount", "e2e", "-n", "default"); err != nil {
			t.Fatal(err)
		}
		token, err := api.Kubectl(sa, "create", "token", "e2e", "-n", "default")
		if err != nil {
			t.Fatal(err)
		}
		// The token's signature must verify with the exported sa.pub.
		if err := verifyJWT(strings.TrimSpace(token), filepath.Join(cp0, "pki", "sa.pub")); err != nil {
			t.Errorf("token vs sa.pub: %v", err)
		}
		kc := tokenKubeconfig(t, filepath.Join(cp0, "pki", "ca.crt"), api.URL, strings.TrimSpace(token))
		user, _, err := whoami(api, kc)
		if err != nil {
			t.Fatal(err)
		}
		if user != "system:serviceaccount:default:e2e" {
			t.Errorf("token user %q", user)
		}
	})

	parent := t
	var etcd1 *Etcd
	t.Run("second etcd member joins with cp-1's peer certificates", func(t *testing.T) {
		ip := NodeIP["cp-1"]
		peerPort := FreePort(t, ip)
		peerURL := fmt.Sprintf("https://%s:%d", ip, peerPort)
		initial, err := etcd0.AddMember("cp-1", peerURL)
		if err != nil {
			t.Fatal(err)
		}
		// Started on the parent test: it outlives this subtest, for the next one.
		etcd1 = StartEtcd(parent, bins, EtcdConfig{
			Name: "cp-1", PKIDir: filepath.Join(cp1, "pki"), IP: ip, PeerPort: peerPort,
			InitialCluster: initial, ClusterState: "existing",
		})
		var out string
		err = waitFor(etcd1.Process, EtcdReadyTimeout, time.Second, func() (err error) {
			if out, err = etcd0.Ctl("endpoint", "health", "--cluster"); err == nil && strings.Count(out, "is healthy") != 2 {
				err = errors.New("not both members healthy")
			}
			return err
		})
		if err != nil {
			t.Fatalf("endpoint health --cluster: %v\n%s", err, out)
		}
		t.Logf("etcd cluster:\n%s", strings.TrimSpace(out))
		if !strings.Contains(out, etcd1.ClientURL) {
			t.Errorf("cp-1's client URL %s missing from\n%s", etcd1.ClientURL, out)
		}
		// The API server still writes through the two-member quorum.
		if _, err := api.Kubectl(conf("super-admin.conf"), "create", "namespace", "e2e-after-join"); err != nil {
			t.Fatal(err)
		}
	})

	var api1 *APIServer
	t.Run("a second kube-apiserver serves from cp-1's export", func(t *testing.T) {
		if etcd1 == nil {
			t.Skip("cp-1's etcd member did not start")
		}
		// cp-1's own serving certificate (SAN 127.0.0.2), etcd client and
		// kubeconfigs, against its local etcd member: what kubeadm join
		// --control-plane sets up.
		// On the port the example's nodes bind when it is free, so cp-1's
		// controller-manager.conf and scheduler.conf can be used as exported.
		port := 0
		if portFree(NodeIP["cp-1"], 6443) {
			port = 6443
		}
		// Started on the parent test: the next subtest uses it.
		api1 = StartAPIServer(parent, bins, APIServerConfig{Dir: cp1, IP: NodeIP["cp-1"], Port: port, EtcdServers: []string{etcd1.ClientURL}})
		out, err := api1.Kubectl(filepath.Join(cp1, "admin.conf"), "get", "namespace", "e2e-after-join", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != "namespace/e2e-after-join" {
			t.Errorf("cp-1 sees %q", out)
		}
		user, _, err := whoami(api1, filepath.Join(cp1, "kubelet.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if user != "system:node:cp-1" {
			t.Errorf("cp-1's kubelet.conf is %q", user)
		}
	})

	t.Run("controller-manager.conf and scheduler.conf point at the node's own apiserver", func(t *testing.T) {
		if !gitcaExport {
			t.Skip("not a gitca export")
		}
		// kubeadm >= 1.19: the local apiserver for these two, the control-plane
		// endpoint (127.0.0.1:6443 in the example) for the others.
		for _, c := range []struct{ node, file, server string }{
			{"cp-1", "controller-manager.conf", "https://127.0.0.2:6443"},
			{"cp-1", "scheduler.conf", "https://127.0.0.2:6443"},
			{"cp-1", "kubelet.conf", "https://127.0.0.1:6443"},
			{"cp-1", "admin.conf", "https://127.0.0.1:6443"},
			{"cp-1", kubeProxyConf, "https://127.0.0.1:6443"},
			{"cp-0", "controller-manager.conf", "https://127.0.0.1:6443"},
			{"cp-0", "scheduler.conf", "https://127.0.0.1:6443"},
		} {
			if got := kubeconfigServer(t, filepath.Join(exp.NodeDir(t, c.node), c.file)); got != c.server {
				t.Errorf("%s's %s: server %s, want %s", c.node, c.file, got, c.server)
			}
		}
		if api1 == nil || api1.Config.Port != 6443 {
			t.Skip("cp-1's apiserver is not on 127.0.0.2:6443; the files were checked, not used")
		}
		for file, user := range map[string]string{"controller-manager.conf": "system:kube-controller-manager", "scheduler.conf": "system:kube-scheduler"} {
			out, err := RunCommand(bins.Kubectl, []string{"--kubeconfig=" + filepath.Join(cp1, file), "--request-timeout=20s", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"},
				[]string{"HOME=" + t.TempDir(), "KUBERC=off", "NO_PROXY=127.0.0.0/8", "no_proxy=127.0.0.0/8"})
			if err != nil || out != user {
				t.Errorf("cp-1's %s as exported: %q %v, want %s", file, out, err, user)
			}
		}
	})
}

// whoami asks the server who a kubeconfig is (kubectl auth whoami).
func whoami(api *APIServer, kubeconfig string) (string, []string, error) {
	out, err := api.Kubectl(kubeconfig, "auth", "whoami", "-o", "json")
	if err != nil {
		return "", nil, err
	}
	var r struct {
		Status struct {
			UserInfo struct {
				Username string   `json:"username"`
				Groups   []string `json:"groups"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return "", nil, fmt.Errorf("auth whoami: %w\n%s", err, out)
	}
	return r.Status.UserInfo.Username, r.Status.UserInfo.Groups, nil
}

// clusterRoleBindingManifests: $GITCA_E2E_CRB_MANIFEST if set, else the
// ClusterRoleBindings found in the rendered state.
func clusterRoleBindingManifests(exp *KubeadmExport) ([]string, error) {
	if p := os.Getenv("GITCA_E2E_CRB_MANIFEST"); p != "" {
		return []string{p}, nil
	}
	return exp.ClusterRoleBindingManifests()
}

func tokenKubeconfig(t *testing.T, caFile, server, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token.conf")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: e2e
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e}
current-context: e2e
`, server, caFile, token)
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newCA makes a throwaway self-signed CA with Go crypto.
func newCA(t *testing.T, cn string) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// newClientCert issues a client certificate (CN user, O groups) from ca.
func newClientCert(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, user string, groups ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// loadCA reads an exported CA certificate and its key (PKCS#8, PKCS#1 or SEC 1).
func loadCA(t *testing.T, certFile, keyFile string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		t.Fatalf("%s: key is not a signer", keyFile)
	}
	return cert, signer
}

// readPublicKey reads a PEM public key (PKIX) such as sa.pub.
func readPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(blk.Bytes)
	}
	return nil, fmt.Errorf("%s: PEM type %q", path, blk.Type)
}
