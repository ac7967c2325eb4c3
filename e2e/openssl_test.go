package e2e

import (
	"encoding/base64"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The exported kubeadm layout, as kubeadm itself writes it.
var (
	kubeadmCAs = []string{"ca", "front-proxy-ca", "etcd/ca"}
	// leaf -> issuing CA
	kubeadmLeafs = map[string]string{
		"apiserver":                "ca",
		"apiserver-kubelet-client": "ca",
		"front-proxy-client":       "front-proxy-ca",
		"apiserver-etcd-client":    "etcd/ca",
		"etcd/server":              "etcd/ca",
		"etcd/peer":                "etcd/ca",
		"etcd/healthcheck-client":  "etcd/ca",
	}
	// leaf -> extended key usages, exactly
	kubeadmProfiles = map[string][]string{
		"apiserver":                {"TLS Web Server Authentication"},
		"apiserver-kubelet-client": {"TLS Web Client Authentication"},
		"front-proxy-client":       {"TLS Web Client Authentication"},
		"apiserver-etcd-client":    {"TLS Web Client Authentication"},
		"etcd/healthcheck-client":  {"TLS Web Client Authentication"},
		"etcd/server":              {"TLS Web Server Authentication", "TLS Web Client Authentication"},
		"etcd/peer":                {"TLS Web Server Authentication", "TLS Web Client Authentication"},
	}
	kubeadmKubeconfigs = []string{"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"}
)

// What gitca's export adds to kubeadm's layout for the data plane: the
// kubelet's serving certificate where the kubelet's --cert-dir keeps it, and
// kube-proxy's kubeconfig.
const (
	kubeletServing = "kubelet/pki/kubelet"
	kubeProxyConf  = "kube-proxy.conf"
)

// kubeconfigsOf lists the kubeconfigs an export holds: kube-proxy.conf only
// when gitca made it (GITCA_E2E_EXPORT_DIR may point at kubeadm's own layout).
func kubeconfigsOf(exp *KubeadmExport) []string {
	if exp.StateDir == "" {
		return kubeadmKubeconfigs
	}
	return append(slices.Clone(kubeadmKubeconfigs), kubeProxyConf)
}

func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH: run `make tools`")
	}
	return p
}

func openssl(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := RunCommand(bin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExportedPKIWithOpenSSL checks gitca's kubeadm export of every node
// with the openssl CLI: layout, chains, profiles, SANs, key pairs, modes.
func TestExportedPKIWithOpenSSL(t *testing.T) {
	RequireE2E(t)
	ossl := requireOpenSSL(t)
	exp := SharedExport(t)
	for _, node := range []string{"cp-0", "cp-1"} {
		dir := exp.NodeDir(t, node)
		pki := func(name string) string { return filepath.Join(dir, "pki", name) }
		t.Run(node, func(t *testing.T) {
			t.Run("layout", func(t *testing.T) {
				want := []string{"sa.key", "sa.pub"}
				if exp.StateDir != "" {
					// gitca's own: the cluster CA's signing certificate alone, for
					// kube-controller-manager's --cluster-signing-cert-file.
					want = append(want, "ca-signing.crt")
					// etcd's --client-crl-file: the etcd CA's revocation list.
					want = append(want, "etcd/ca.crl")
				}
				for _, c := range kubeadmCAs {
					want = append(want, c+".crt", c+".key")
				}
				for l := range kubeadmLeafs {
					want = append(want, l+".crt", l+".key")
				}
				for _, f := range want {
					if _, err := os.Stat(pki(f)); err != nil {
						t.Errorf("pki/%s: %v", f, err)
					}
				}
				for _, f := range kubeconfigsOf(exp) {
					if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
						t.Errorf("%s: %v", f, err)
					}
				}
				if exp.StateDir == "" {
					return
				}
				// Exactly these files: nothing of another node, no leftovers of the export.
				want = slices.Clone(want)
				for i := range want {
					want[i] = "pki/" + want[i]
				}
				want = append(want, kubeconfigsOf(exp)...)
				want = append(want, kubeletServing+".crt", kubeletServing+".key")
				var got []string
				err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(dir, p)
						got = append(got, filepath.ToSlash(rel))
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("exported files:\n got %v\nwant %v", got, want)
				}
			})

			t.Run("etcd CRL is signed by the etcd CA", func(t *testing.T) {
				if exp.StateDir == "" {
					t.Skip("not a gitca export")
				}
				stdout, stderr, err := runCommand(ossl, []string{"crl", "-in", pki("etcd/ca.crl"), "-CAfile", pki("etcd/ca.crt"), "-noout", "-text"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if out := stdout + stderr; !strings.Contains(out, "verify OK") || !strings.Contains(out, "Certificate Revocation List") {
					t.Errorf("openssl crl does not verify pki/etcd/ca.crl against pki/etcd/ca.crt:\n%s", stdout+stderr)
				}
				if _, err := RunCommand(ossl, []string{"crl", "-in", pki("etcd/ca.crl"), "-CAfile", pki("ca.crt"), "-noout"}, nil); err == nil {
					t.Error("pki/etcd/ca.crl verifies against the cluster CA too")
				}
			})

			t.Run("kubelet serving certificate", func(t *testing.T) {
				if exp.StateDir == "" {
					t.Skip("not a gitca export")
				}
				crt, key := filepath.Join(dir, kubeletServing+".crt"), filepath.Join(dir, kubeletServing+".key")
				out, err := RunCommand(ossl, []string{"verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", pki("ca.crt"), crt}, nil)
				if err != nil || !strings.Contains(out, ": OK") {
					t.Errorf("kubelet.crt as a server certificate from ca.crt: %v %s", err, out)
				}
				subject := strings.TrimSpace(openssl(t, ossl, "x509", "-in", crt, "-noout", "-subject", "-nameopt", "RFC2253"))
				if want := "subject=CN=system:node:" + node + ",O=system:nodes"; subject != want {
					t.Errorf("kubelet.crt: %s, want %s", subject, want)
				}
				text := openssl(t, ossl, "x509", "-in", crt, "-noout", "-text")
				if eku := splitList(extension(text, "X509v3 Extended Key Usage")); !slices.Equal(eku, []string{"TLS Web Server Authentication"}) {
					t.Errorf("kubelet.crt: extended key usage %v, want server authentication only", eku)
				}
				if sans := splitList(extension(text, "X509v3 Subject Alternative Name")); !slices.Equal(sans, []string{"DNS:" + node, "IP Address:" + NodeIP[node]}) {
					t.Errorf("kubelet.crt: SANs %v, want the node's name and address", sans)
				}
				if openssl(t, ossl, "x509", "-in", crt, "-noout", "-pubkey") != openssl(t, ossl, "pkey", "-in", key, "-pubout") {
					t.Error("kubelet.key does not belong to kubelet.crt")
				}
				if st, err := os.Stat(key); err != nil {
					t.Error(err)
				} else if m := st.Mode().Perm(); m != 0o600 {
					t.Errorf("kubelet.key: mode %04o, want 0600", m)
				}
			})

			t.Run("chains verify", func(t *testing.T) {
				for _, leaf := range slices.Sorted(maps.Keys(kubeadmLeafs)) {
					ca := kubeadmLeafs[leaf]
					out, err := RunCommand(ossl, []string{"verify", "-CAfile", pki(ca + ".crt"), pki(leaf + ".crt")}, nil)
					if err != nil || !strings.Contains(out, ": OK") {
						t.Errorf("%s signed by %s: %v %s", leaf, ca, err, out)
					}
				}
				// A leaf must not verify against another CA of the layout.
				if out, err := RunCommand(ossl, []string{"verify", "-CAfile", pki("etcd/ca.crt"), pki("apiserver.crt")}, nil); err == nil {
					t.Errorf("apiserver.crt verifies against etcd/ca.crt: %s", out)
				}
			})

			t.Run("kubeconfig client certificates verify against ca.crt", func(t *testing.T) {
				for _, kc := range kubeconfigsOf(exp) {
					cert := kubeconfigClientCert(t, filepath.Join(dir, kc))
					if cert == nil {
						continue
					}
					f := filepath.Join(t.TempDir(), "client.crt")
					if err := os.WriteFile(f, cert, 0o600); err != nil {
						t.Fatal(err)
					}
					out, err := RunCommand(ossl, []string{"verify", "-CAfile", pki("ca.crt"), f}, nil)
					if err != nil || !strings.Contains(out, ": OK") {
						t.Errorf("%s client certificate: %v %s", kc, err, out)
					}
				}
			})

			t.Run("CA profiles", func(t *testing.T) {
				for _, ca := range kubeadmCAs {
					text := openssl(t, ossl, "x509", "-in", pki(ca+".crt"), "-noout", "-text")
					if !strings.Contains(text, "CA:TRUE") {
						t.Errorf("%s: not CA:TRUE", ca)
					}
					ku := extension(text, "X509v3 Key Usage")
					for _, u := range []string{"Certificate Sign", "CRL Sign"} {
						if !strings.Contains(ku, u) {
							t.Errorf("%s: key usage %q lacks %s", ca, ku, u)
						}
					}
					if eku := extension(text, "X509v3 Extended Key Usage"); eku != "" {
						t.Errorf("%s: a CA with extended key usage %q", ca, eku)
					}
				}
			})

			t.Run("leaf profiles", func(t *testing.T) {
				for _, leaf := range slices.Sorted(maps.Keys(kubeadmProfiles)) {
					want := kubeadmProfiles[leaf]
					text := openssl(t, ossl, "x509", "-in", pki(leaf+".crt"), "-noout", "-text")
					if !strings.Contains(text, "CA:FALSE") {
						t.Errorf("%s: not CA:FALSE", leaf)
					}
					if !strings.Contains(text, "X509v3 Authority Key Identifier") {
						t.Errorf("%s: no Authority Key Identifier", leaf)
					}
					if ku := extension(text, "X509v3 Key Usage"); strings.Contains(ku, "Certificate Sign") {
						t.Errorf("%s: leaf with key usage %q", leaf, ku)
					}
					got := splitList(extension(text, "X509v3 Extended Key Usage"))
					if strings.Join(got, ", ") != strings.Join(want, ", ") {
						t.Errorf("%s: extended key usage %v, want exactly %v", leaf, got, want)
					}
				}
			})

			t.Run("SANs", func(t *testing.T) {
				ip := NodeIP[node]
				checkSANs(t, ossl, pki("apiserver.crt"), "DNS:kubernetes", "DNS:kubernetes.default",
					"DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local", "IP Address:10.96.0.1", "IP Address:"+ip)
				checkSANs(t, ossl, pki("etcd/server.crt"), "DNS:localhost", "DNS:"+node, "IP Address:"+ip, "IP Address:127.0.0.1")
				checkSANs(t, ossl, pki("etcd/peer.crt"), "DNS:"+node, "IP Address:"+ip)
			})

			t.Run("keys match certificates", func(t *testing.T) {
				pairs := map[string]string{}
				for _, c := range kubeadmCAs {
					pairs[c+".crt"] = c + ".key"
				}
				for l := range kubeadmLeafs {
					pairs[l+".crt"] = l + ".key"
				}
				for crt, key := range pairs {
					fromCert := openssl(t, ossl, "x509", "-in", pki(crt), "-noout", "-pubkey")
					fromKey := openssl(t, ossl, "pkey", "-in", pki(key), "-pubout")
					if fromCert != fromKey {
						t.Errorf("%s does not belong to %s", key, crt)
					}
				}
				saPub := openssl(t, ossl, "pkey", "-pubin", "-in", pki("sa.pub"))
				fromKey := openssl(t, ossl, "pkey", "-in", pki("sa.key"), "-pubout")
				if saPub != fromKey {
					t.Error("sa.pub is not the public half of sa.key")
				}
			})

			t.Run("private material is mode 0600", func(t *testing.T) {
				var files []string
				for _, c := range kubeadmCAs {
					files = append(files, pki(c+".key"))
				}
				for l := range kubeadmLeafs {
					files = append(files, pki(l+".key"))
				}
				files = append(files, pki("sa.key"))
				// kubeconfigs embed client keys; kubeadm writes them 0600 too.
				for _, kc := range kubeconfigsOf(exp) {
					files = append(files, filepath.Join(dir, kc))
				}
				for _, f := range files {
					st, err := os.Stat(f)
					if err != nil {
						t.Error(err)
						continue
					}
					if m := st.Mode().Perm(); m != 0o600 {
						t.Errorf("%s: mode %04o, want 0600", f, m)
					}
				}
			})
		})
	}
}

// TestExportedNodesShareClusterMaterial: kubeadm's control-plane nodes share
// the CAs, their keys and the service-account key pair (a token signed by
// one apiserver must verify on the next), and each has its own etcd server
// and peer certificates. (gitca issues one apiserver certificate carrying
// every node's address, so that one may be shared; the SANs test checks each
// node's address is on it.)
func TestExportedNodesShareClusterMaterial(t *testing.T) {
	RequireE2E(t)
	exp := SharedExport(t)
	a, b := exp.NodeDir(t, "cp-0"), exp.NodeDir(t, "cp-1")
	read := func(dir, f string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, "pki", f))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	shared := []string{"sa.key", "sa.pub"}
	for _, c := range kubeadmCAs {
		shared = append(shared, c+".crt", c+".key")
	}
	for _, f := range shared {
		if string(read(a, f)) != string(read(b, f)) {
			t.Errorf("pki/%s differs between cp-0 and cp-1", f)
		}
	}
	for _, f := range []string{"etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key"} {
		if string(read(a, f)) == string(read(b, f)) {
			t.Errorf("pki/%s is the same on cp-0 and cp-1; it is per node", f)
		}
	}
}

// extension returns the value line(s) of an X.509v3 extension in openssl's
// -text output ("" if absent).
func extension(text, name string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), name+":") {
			if i+1 < len(lines) {
				return strings.TrimSpace(lines[i+1])
			}
		}
	}
	return ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkSANs(t *testing.T, ossl, cert string, want ...string) {
	t.Helper()
	text := openssl(t, ossl, "x509", "-in", cert, "-noout", "-text")
	sans := splitList(extension(text, "X509v3 Subject Alternative Name"))
	for _, w := range want {
		if !slices.Contains(sans, w) {
			t.Errorf("%s: SANs %v lack %s", filepath.Base(cert), sans, w)
		}
	}
}

var clientCertData = regexp.MustCompile(`(?m)^\s*client-certificate-data:\s*(\S+)\s*$`)

// kubeconfigClientCert returns the PEM of a kubeconfig's embedded client
// certificate (nil, and an error, if it has none).
func kubeconfigClientCert(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return nil
	}
	m := clientCertData.FindSubmatch(b)
	if m == nil {
		t.Errorf("%s: no embedded client-certificate-data", filepath.Base(path))
		return nil
	}
	pemBytes, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Errorf("%s: client-certificate-data: %v", filepath.Base(path), err)
		return nil
	}
	return pemBytes
}
