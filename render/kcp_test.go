package render

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// kcpExample is the topology the kcp tests render.
const kcpExample = "../examples/kcp"

// kcpChartParents is the "Certificate Management" chart as child → issuer, by
// the chart's names (which are the certificates' common names), written out
// independently of the preset's table so the rendered tree is checked against
// the document, not against the code that produced it.
//
// The chart's kcp-pki-bootstrap is cert-manager's SelfSigned issuer, not a CA:
// kcp-pki-ca is the root and signs itself.
var kcpChartParents = map[string]string{
	"$rootshard-ca":                        "kcp-pki-ca",
	"kcp-etcd-client-ca":                   "$rootshard-ca",
	"kcp-etcd-peer-ca":                     "$rootshard-ca",
	"$rootshard-server-ca":                 "$rootshard-ca",
	"$rootshard-requestheader-client-ca":   "$rootshard-ca",
	"$rootshard-client-ca":                 "$rootshard-ca",
	"kcp-service-account-ca":               "$rootshard-ca",
	"kcp-etcd":                             "kcp-etcd-client-ca",
	"kcp-etcd-client":                      "kcp-etcd-client-ca",
	"kcp-etcd-peer":                        "kcp-etcd-peer-ca",
	"kcp":                                  "$rootshard-server-ca",
	"$rootshard-$frontproxy-server":        "$rootshard-server-ca",
	"kcp-virtual-workspaces":               "$rootshard-server-ca",
	"$rootshard-$frontproxy-requestheader": "$rootshard-requestheader-client-ca",
	"kcp-front-proxy-vw-client":            "$rootshard-requestheader-client-ca",
	"$rootshard-$frontproxy-kubeconfig":    "$rootshard-client-ca",
	"kcp-internal-admin-kubeconfig":        "$rootshard-client-ca",
	"kcp-service-account":                  "kcp-service-account-ca",
}

// kcpFill fills the chart's placeholders.
func kcpFill(s, rootShard, frontProxy string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "$rootshard", rootShard), "$frontproxy", frontProxy)
}

// kcpRendered is the example rendered once, with the state read back.
type kcpRendered struct {
	e   *env
	now time.Time
	res *Result
	st  *state.State
}

// renderKCP renders the example at now: t0 where output must be reproducible,
// the wall clock where real TLS stacks (curl, openssl) check validity.
func renderKCP(t *testing.T, now time.Time, prepare func(topo string)) *kcpRendered {
	t.Helper()
	e := newEnv(t, kcpExample)
	if prepare != nil {
		prepare(e.topo)
	}
	res := e.run(now, &e.ids)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	return &kcpRendered{e: e, now: now, res: res, st: st}
}

// manifest reads a rendered file as a generic object.
func (k *kcpRendered) manifest(t *testing.T, rel string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k.e.state, filepath.FromSlash(rel)))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &m), rel)
	return m
}

// plain opens a sealed file with the test's identity and returns its stringData.
func (k *kcpRendered) plain(t *testing.T, rel string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k.e.state, filepath.FromSlash(rel)))
	require.NoError(t, err)
	out, err := secrets.Open(raw, k.e.ids)
	require.NoError(t, err, rel)
	var doc struct {
		StringData map[string]string `json:"stringData"`
	}
	require.NoError(t, yaml.Unmarshal(out, &doc))
	return doc.StringData
}

// secretPath is where a Secret of the example lands.
func kcpSecretPath(ns, name string) string {
	return "clusters/kcp-prod/" + ns + "/secret-" + name + ".yaml"
}

func parsePEMCerts(t *testing.T, s string) []*x509.Certificate {
	t.Helper()
	certs, err := sign.ParseCertsPEM([]byte(s))
	require.NoError(t, err)
	return certs
}

var keyUsageNames = []struct {
	u    x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"}, {x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"}, {x509.KeyUsageCertSign, "certSign"}, {x509.KeyUsageCRLSign, "crlSign"},
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth"}

// describeCert is a certificate's public, reproducible parts: no serial, key or signature.
func describeCert(c *x509.Certificate) map[string]any {
	d := map[string]any{"subject": c.Subject.String(), "issuer": c.Issuer.String(), "lifetime": c.NotAfter.Sub(t0).String()}
	if c.IsCA {
		d["ca"] = true
		if c.MaxPathLen > 0 || c.MaxPathLenZero {
			d["pathLen"] = c.MaxPathLen
		}
	}
	if len(c.DNSNames) > 0 {
		d["dns"] = c.DNSNames
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if len(ips) > 0 {
		d["ip"] = ips
	}
	var ku []string
	for _, u := range keyUsageNames {
		if c.KeyUsage&u.u != 0 {
			ku = append(ku, u.name)
		}
	}
	d["keyUsage"] = ku
	var eku []string
	for _, u := range c.ExtKeyUsage {
		eku = append(eku, extKeyUsageNames[u])
	}
	if len(eku) > 0 {
		d["extKeyUsage"] = eku
	}
	if alg, err := sign.KeyAlgorithmOf(c.PublicKey); err == nil {
		d["key"] = string(alg)
	}
	return d
}

// describeTree is the golden view of a state tree: every file gitca wrote,
// with the public parts of what it holds. Private values appear only as the
// fact that they are encrypted; a kubeconfig is opened to show its clusters
// and contexts, never its key.
func (k *kcpRendered) describeTree(t *testing.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, rel := range k.st.Files {
		if rel == ".sops.yaml" {
			out[rel] = "creation rules (recipients differ per test run)"
			continue
		}
		m := k.manifest(t, rel)
		if m["kind"] == nil {
			out[rel] = "not a manifest (gitca's own bookkeeping)"
			continue
		}
		d := map[string]any{"kind": m["kind"]}
		if spec, ok := m["spec"].(map[string]any); ok && m["kind"] == "Kustomization" {
			// Flux's Kustomization: where it applies from and with which credentials.
			for _, key := range []string{"path", "kubeConfig", "decryption", "targetNamespace"} {
				if v, ok := spec[key]; ok {
					d["spec."+key] = v
				}
			}
		}
		if md, ok := m["metadata"].(map[string]any); ok {
			d["name"] = md["name"]
			if ns, ok := md["namespace"]; ok {
				d["namespace"] = ns
			}
			if ann, ok := md["annotations"].(map[string]any); ok {
				for _, a := range []string{state.AnnotationObject, state.AnnotationRole, state.AnnotationIssuer, topology.AnnotationKCPRootShard} {
					if v, ok := ann[a]; ok {
						d[a] = v
					}
				}
			}
		}
		if typ, ok := m["type"]; ok {
			d["type"] = typ
		}
		for _, key := range []string{"resources", "roleRef", "subjects"} {
			if v, ok := m[key]; ok {
				d[key] = v
			}
		}
		for _, field := range []string{"stringData", "data"} {
			data, ok := m[field].(map[string]any)
			if !ok {
				continue
			}
			vals := map[string]any{}
			for key, v := range data {
				s, _ := v.(string)
				switch {
				case strings.HasPrefix(s, "ENC["):
					vals[key] = "encrypted"
				case strings.Contains(s, "BEGIN CERTIFICATE"):
					var certs []any
					for _, c := range parsePEMCerts(t, s) {
						certs = append(certs, describeCert(c))
					}
					vals[key] = certs
				default:
					vals[key] = s
				}
			}
			if kc, ok := vals["kubeconfig"]; ok && kc == "encrypted" {
				vals["kubeconfig"] = k.describeKubeconfig(t, rel)
			}
			d[field] = vals
		}
		out[rel] = d
	}
	return out
}

func (k *kcpRendered) describeKubeconfig(t *testing.T, rel string) map[string]any {
	t.Helper()
	cfg, err := clientcmd.Load([]byte(k.plain(t, rel)["kubeconfig"]))
	require.NoError(t, err)
	clusters := map[string]any{}
	for n, c := range cfg.Clusters {
		var cas []string
		for _, ca := range parsePEMCerts(t, string(c.CertificateAuthorityData)) {
			cas = append(cas, ca.Subject.String())
		}
		clusters[n] = map[string]any{"server": c.Server, "ca": cas}
	}
	contexts := map[string]any{}
	for n, c := range cfg.Contexts {
		contexts[n] = c.Cluster + " as " + c.AuthInfo
	}
	users := map[string]any{}
	for n, u := range cfg.AuthInfos {
		certs := parsePEMCerts(t, string(u.ClientCertificateData))
		users[n] = map[string]any{"cert": certs[0].Subject.String(), "issuer": certs[0].Issuer.String(), "embeddedKey": len(u.ClientKeyData) > 0}
	}
	return map[string]any{"clusters": clusters, "contexts": contexts, "users": users, "current": cfg.CurrentContext}
}

// TestKCPExampleGolden pins the rendered tree of examples/kcp: names, paths,
// subjects, issuers, SANs and usages. Regenerate with UPDATE_GOLDEN=1 after a
// deliberate change and review the diff.
func TestKCPExampleGolden(t *testing.T) {
	k := renderKCP(t, t0, nil)
	got, err := yaml.Marshal(k.describeTree(t))
	require.NoError(t, err)
	golden := filepath.Join("testdata", "kcp-golden", "tree.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with UPDATE_GOLDEN=1 to create it")
	assert.Equal(t, string(want), string(got))

	findings, err := state.ScanPlaintextKeys(k.e.state)
	require.NoError(t, err)
	assert.Empty(t, findings, "no private key in plain text")
}

// kcpCAs collects every CA certificate of the state by common name, per root
// shard (the chart repeats names across root shards).
func (k *kcpRendered) caCerts(t *testing.T) map[string][]*x509.Certificate {
	t.Helper()
	out := map[string][]*x509.Certificate{}
	for id, o := range k.st.Primary {
		if strings.HasPrefix(id, string(plan.KindCA)+"/") {
			require.Len(t, o.CertChain(), 1, "%s: a CA's tls.crt holds that CA alone", id)
			c := o.CertChain()[0]
			out[c.Subject.CommonName] = append(out[c.Subject.CommonName], c)
		}
	}
	return out
}

// TestKCPChainsFollowTheChart walks every certificate's issuer chain by real
// signatures, compares each edge with the chart, and has openssl verify each
// chain from the Secret as a component would read it (tls.crt, ca.crt).
func TestKCPChainsFollowTheChart(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	k := renderKCP(t, t0, nil)
	cas := k.caCerts(t)
	// issuerOf finds the CA that really signed c: same subject as c's issuer, and the signature checks.
	issuerOf := func(c *x509.Certificate) *x509.Certificate {
		var found *x509.Certificate
		for _, cand := range cas[c.Issuer.CommonName] {
			if c.CheckSignatureFrom(cand) == nil {
				require.Nil(t, found, "%s: two CAs verify it", c.Subject)
				found = cand
			}
		}
		return found
	}
	type chartNode struct{ rootShard, frontProxy string }
	// Which chart name each common name is, per root shard and front-proxy of the example.
	chartOf := map[string]string{}
	for _, n := range []chartNode{{"alpha", "edge"}, {"beta", ""}} {
		for child := range kcpChartParents {
			if n.frontProxy == "" && strings.Contains(child, "$frontproxy") {
				continue
			}
			chartOf[n.rootShard+"/"+kcpFill(child, n.rootShard, n.frontProxy)] = child
		}
	}
	edges := 0
	checked := map[string]bool{}
	var walk func(rootShard string, c *x509.Certificate)
	walk = func(rootShard string, c *x509.Certificate) {
		cn := c.Subject.CommonName
		if cn == "kcp-pki-ca" {
			require.NoError(t, c.CheckSignatureFrom(c), "the root is self-signed")
			return
		}
		chart, ok := chartOf[rootShard+"/"+cn]
		require.True(t, ok, "%s (root shard %s) is not in the chart", cn, rootShard)
		parent := issuerOf(c)
		require.NotNil(t, parent, "%s: no CA of the state signed it", cn)
		wantParent := kcpFill(kcpChartParents[chart], rootShard, "")
		assert.Equal(t, wantParent, parent.Subject.CommonName, "edge %s → issuer", cn)
		key := rootShard + "/" + cn + "→" + parent.Subject.CommonName
		if !checked[key] {
			checked[key] = true
			edges++
		}
		walk(rootShard, parent)
	}

	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, sign.EncodeCertsPEM(certs...), 0o644))
		return p
	}
	leafs, kubeconfigs := 0, 0
	for id, o := range k.st.Primary {
		if strings.HasPrefix(id, string(plan.KindKubeconfig)+"/") {
			// "Kubeconfigs": every client certificate is signed by the root shard's client CA.
			rootShard := o.Annotations[topology.AnnotationKCPRootShard]
			parent := issuerOf(o.Cert())
			require.NotNil(t, parent, id)
			assert.Equal(t, rootShard+"-client-ca", parent.Subject.CommonName, id)
			walk(rootShard, parent)
			kubeconfigs++
			continue
		}
		if !strings.HasPrefix(id, string(plan.KindCert)+"/") {
			continue
		}
		rootShard := o.Annotations[topology.AnnotationKCPRootShard]
		require.NotEmpty(t, rootShard, id)
		leaf := o.Cert()
		if chart := chartOf[rootShard+"/"+leaf.Subject.CommonName]; chart == "" {
			// Shard and virtual-workspace serving certificates are beyond the chart; the server CA signs them.
			assert.Equal(t, rootShard+"-server-ca", issuerOf(leaf).Subject.CommonName, id)
		} else {
			walk(rootShard, leaf)
		}
		leafs++

		// tls.crt is the leaf and its intermediates, ca.crt the root: what a
		// peer needs, and nothing that would widen what it trusts.
		require.Len(t, o.CAChain(), 1, id)
		assert.Equal(t, "kcp-pki-ca", o.CAChain()[0].Subject.CommonName, id)
		require.Len(t, o.CertChain(), 3, "%s: leaf, sub-CA, <rootshard>-ca", id)
		purpose := map[x509.ExtKeyUsage]string{x509.ExtKeyUsageServerAuth: "sslserver", x509.ExtKeyUsageClientAuth: "sslclient"}
		for _, eku := range leaf.ExtKeyUsage {
			args := []string{"verify", "-x509_strict", "-purpose", purpose[eku], "-attime", fmt.Sprint(t0.Add(time.Hour).Unix()),
				"-CAfile", write("root.pem", o.CAChain()...), "-untrusted", write("chain.pem", o.CertChain()[1:]...), write("leaf.pem", leaf)}
			out, err := exec.Command(openssl, args...).CombinedOutput()
			require.NoError(t, err, "%s: openssl %s\n%s", id, strings.Join(args, " "), out)
			assert.Contains(t, string(out), "leaf.pem: OK", id)
		}
	}
	assert.Equal(t, (8+3+2)+8, leafs, "alpha: 8 chart leafs + 3 for its front-proxy + shard + virtual workspace; beta: 8")
	assert.Equal(t, 6, kubeconfigs)
	// Per root shard: 8 leaf edges (+3 for a front-proxy), 6 sub-CAs, <rootshard>-ca.
	assert.Equal(t, (11+6+1)+(8+6+1), edges, "every edge of the chart was walked")
	for _, ca := range []string{"kcp-pki-ca", "alpha-ca", "beta-ca"} {
		assert.Contains(t, cas, ca)
	}
	assert.NotContains(t, cas, "kcp-pki-bootstrap", "the bootstrap issuer has no certificate")
}

// TestKCPCASecretsHoldOnlyThatCA: the Secrets components read as a CA file
// (kcp's --client-ca-file, --requestheader-client-ca-file, etcd's
// --trusted-ca-file) hold exactly that CA: not its parent, not its key.
func TestKCPCASecretsHoldOnlyThatCA(t *testing.T) {
	k := renderKCP(t, t0, nil)
	for _, rs := range []string{"alpha", "beta"} {
		ns := "kcp-" + rs
		for _, name := range []string{"kcp-etcd-client-ca", "kcp-etcd-peer-ca", rs + "-server-ca", rs + "-requestheader-client-ca", rs + "-client-ca", "kcp-service-account-ca"} {
			m := k.manifest(t, kcpSecretPath(ns, name))
			data := m["stringData"].(map[string]any)
			assert.Equal(t, []string{"tls.crt"}, slices.Sorted(mapKeys(data)), name)
			certs := parsePEMCerts(t, data["tls.crt"].(string))
			require.Len(t, certs, 1, name)
			assert.Equal(t, name, certs[0].Subject.CommonName)
			assert.True(t, certs[0].IsCA)
			// The very certificate gitca holds for that CA.
			obj := k.st.Primary["CertificateAuthority/"+topology.KCPObjectName(kcpChartName(rs, name), rs, "")]
			require.NotNil(t, obj, name)
			assert.True(t, obj.Cert().Equal(certs[0]), name)
			// And the CA's own record: tls.crt is the CA alone.
			assert.Len(t, obj.CertChain(), 1, name)
		}
	}
}

// kcpChartName turns a filled-in CA name back into its chart form.
func kcpChartName(rootShard, name string) string {
	if strings.HasPrefix(name, rootShard+"-") {
		return "$rootshard-" + strings.TrimPrefix(name, rootShard+"-")
	}
	return name
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// testCA is a CA made in the test, standing in for an external client CA whose key we hold.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: c, key: key}
}

// issueClient signs a client certificate with any CA key, as an attacker or an external IdP would.
func issueClient(t *testing.T, cn string, orgs []string, ca *x509.Certificate, caKey crypto.Signer) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// keyOf opens a sealed record and returns its private key (tls.key, or the one in a kubeconfig).
func (k *kcpRendered) keyOf(t *testing.T, rel string) crypto.Signer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k.e.state, filepath.FromSlash(rel)))
	require.NoError(t, err)
	op, err := secrets.OpenSealed(raw, k.e.ids)
	require.NoError(t, err)
	key, err := apply.KeyOf(op.StringData(), rel)
	require.NoError(t, err)
	return key
}

// tlsPair is a rendered Secret as a TLS certificate: tls.crt's chain and the key.
func (k *kcpRendered) tlsPair(t *testing.T, rel string) tls.Certificate {
	t.Helper()
	var o *state.Object
	for _, obj := range k.st.Primary {
		if obj.Path == rel {
			o = obj
		}
	}
	require.NotNil(t, o, rel)
	var chain [][]byte
	for _, c := range o.CertChain() {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: k.keyOf(t, rel)}
}

// caKey returns a CA of the state with its private key, from ca/.
func (k *kcpRendered) caKey(t *testing.T, name string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	o := k.st.Primary["CertificateAuthority/"+name]
	require.NotNil(t, o, name)
	return o.Cert(), k.keyOf(t, o.Path)
}

// kcpServer serves HTTPS with a rendered serving certificate, requiring a
// client certificate from exactly the CAs in clientCAFile (a rendered tls.crt).
func kcpServer(t *testing.T, cert tls.Certificate, clientCAFile string) *httptest.Server {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(clientCAFile)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// goGet connects as a component's client would: verifying the server by name
// against the root in ca.crt, presenting client.
func goGet(srv *httptest.Server, host string, roots *x509.CertPool, client tls.Certificate) error {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host, Certificates: []tls.Certificate{client}}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// writeClientFiles writes a client certificate and key as PEM files in dir
// (a t.TempDir) for curl and openssl.
func writeClientFiles(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var certPEM []byte
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyPEM, err := sign.EncodePrivateKeyPEM(c.PrivateKey.(crypto.Signer))
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	return certFile, keyFile
}

// curlGet does the same as goGet with curl, resolving host to the test server.
func curlGet(t *testing.T, curl string, srv *httptest.Server, host, caFile, certFile, keyFile string) error {
	t.Helper()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	url := "https://" + host + ":" + port + "/"
	out, err := exec.Command(curl, "-sS", "--fail", "--max-time", "10", "--cacert", caFile, "--cert", certFile, "--key", keyFile,
		"--resolve", host+":"+port+":127.0.0.1", url).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// kcpClientCAs replaces the example's extra client CA files with CAs whose keys
// the test holds (same subjects), so it can sign clients they must admit.
func kcpClientCAs(t *testing.T) (prepare func(string), corp, partner *testCA) {
	corp, partner = newTestCA(t, "corp-idp client CA"), newTestCA(t, "partner client CA")
	return func(topo string) {
		require.NoError(t, os.WriteFile(filepath.Join(topo, "client-cas/corp-idp-ca.pem"), sign.EncodeCertsPEM(corp.cert), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(topo, "client-cas/partner-ca.pem"), sign.EncodeCertsPEM(partner.cert), 0o644))
	}, corp, partner
}

// TestKCPClientCAInheritanceOverTLS starts each alpha component's server with
// its rendered serving certificate and client-CA bundle and proves, with Go's
// crypto/tls and with curl, that it accepts exactly the client CAs of its row
// in the document's table and refuses every other client certificate.
func TestKCPClientCAInheritanceOverTLS(t *testing.T) {
	prepare, corp, partner := kcpClientCAs(t)
	k := renderKCP(t, time.Now().UTC().Truncate(time.Second), prepare)
	const ns = "kcp-alpha"
	parentCert, parentKey := k.caKey(t, "alpha-ca")
	pkiCert, pkiKey := k.caKey(t, "kcp-pki-ca")
	foreign := newTestCA(t, "foreign client CA")

	clients := map[string]tls.Certificate{
		// Signed by the root shard's client CA, as every kcp Kubeconfig is.
		"root client CA":                 k.tlsPair(t, kcpSecretPath(ns, "susan-kubeconfig")),
		"root shard's bundle (corp IdP)": issueClient(t, "corp-user", nil, corp.cert, corp.key),
		"front-proxy's bundle (partner)": issueClient(t, "partner-user", nil, partner.cert, partner.key),
		// A request-header client is not a client of the client-CA bundles.
		"request-header CA": k.tlsPair(t, kcpSecretPath(ns, "alpha-edge-requestheader")),
		// The client CA's parents must not be trust anchors.
		"parent <rootshard>-ca":        issueClient(t, "mallory", []string{"system:masters"}, parentCert, parentKey),
		"grandparent kcp-pki-ca":       issueClient(t, "mallory", []string{"system:masters"}, pkiCert, pkiKey),
		"other root shard's client CA": k.tlsPair(t, kcpSecretPath("kcp-beta", "ci-kubeconfig")),
		"foreign CA":                   issueClient(t, "eve", nil, foreign.cert, foreign.key),
	}
	all := []string{"RootShard", "Shard", "FrontProxy", "VirtualWorkspace"}
	admitted := map[string][]string{ // client → components that must accept it: the table
		"root client CA":                 all,
		"root shard's bundle (corp IdP)": all,
		"front-proxy's bundle (partner)": {"FrontProxy"},
	}
	components := []struct{ name, host, serverSecret, bundle string }{
		{"RootShard", "api.alpha.kcp.example.com", "kcp", "alpha-client-ca-bundle"},
		{"Shard", "alpha-1.kcp.example.com", "alpha-alpha-1-server", "alpha-alpha-1-client-ca-bundle"},
		{"FrontProxy", "kcp.example.com", "alpha-edge-server", "alpha-edge-client-ca-bundle"},
		{"VirtualWorkspace", "vw.alpha.kcp.example.com", "alpha-alpha-vw-server", "alpha-alpha-vw-client-ca-bundle"},
	}
	curl, curlErr := exec.LookPath("curl")
	dir := t.TempDir()
	files := map[string][2]string{}
	for name, c := range clients {
		crt, key := writeClientFiles(t, dir, strings.NewReplacer(" ", "-", "'", "", "(", "", ")", "", "<", "", ">", "").Replace(name), c)
		files[name] = [2]string{crt, key}
	}
	for _, comp := range components {
		t.Run(comp.name, func(t *testing.T) {
			bundle := k.manifest(t, kcpSecretPath(ns, comp.bundle))["stringData"].(map[string]any)["tls.crt"].(string)
			srv := kcpServer(t, k.tlsPair(t, kcpSecretPath(ns, comp.serverSecret)), bundle)
			caFile := filepath.Join(dir, comp.name+"-ca.crt")
			o := k.objectAt(t, kcpSecretPath(ns, comp.serverSecret))
			require.NoError(t, os.WriteFile(caFile, sign.EncodeCertsPEM(o.CAChain()...), 0o644))
			roots := x509.NewCertPool()
			roots.AddCert(o.CAChain()[0])
			for _, name := range slices.Sorted(mapKeys(clients)) {
				want := slices.Contains(admitted[name], comp.name)
				err := goGet(srv, comp.host, roots, clients[name])
				if want {
					assert.NoError(t, err, "Go: %s must accept a client of the %s", comp.name, name)
				} else {
					assert.Error(t, err, "Go: %s must refuse a client of the %s", comp.name, name)
				}
				if curlErr != nil {
					continue
				}
				err = curlGet(t, curl, srv, comp.host, caFile, files[name][0], files[name][1])
				if want {
					assert.NoError(t, err, "curl: %s must accept a client of the %s", comp.name, name)
				} else {
					assert.Error(t, err, "curl: %s must refuse a client of the %s", comp.name, name)
				}
			}
		})
	}
	if curlErr != nil {
		t.Log("curl not installed: checked with Go only")
	}
}

func (k *kcpRendered) objectAt(t *testing.T, rel string) *state.Object {
	t.Helper()
	for _, o := range k.st.Primary {
		if o.Path == rel {
			return o
		}
	}
	t.Fatalf("no object at %s", rel)
	return nil
}

// TestKCPRequestHeaderCAAdmitsOnlyItsClients: kcp believes X-Remote-User and
// X-Remote-Group from any client its --requestheader-client-ca-file admits. With
// the rendered file, only the request-header CA's own clients get in; a
// certificate chained to its parent (which a file carrying the chain would
// admit) is refused. Checked with Go and with openssl s_client.
func TestKCPRequestHeaderCAAdmitsOnlyItsClients(t *testing.T) {
	k := renderKCP(t, time.Now().UTC().Truncate(time.Second), nil)
	const ns = "kcp-alpha"
	rhFile := k.manifest(t, kcpSecretPath(ns, "alpha-requestheader-client-ca"))["stringData"].(map[string]any)["tls.crt"].(string)
	parentCert, parentKey := k.caKey(t, "alpha-ca")
	clientCACert, clientCAKey := k.caKey(t, "alpha-client-ca")
	clients := []struct {
		name  string
		cert  tls.Certificate
		admit bool
	}{
		{"front-proxy request-header client", k.tlsPair(t, kcpSecretPath(ns, "alpha-edge-requestheader")), true},
		{"front-proxy virtual-workspace client", k.tlsPair(t, kcpSecretPath(ns, "kcp-front-proxy-vw-client")), true},
		{"signed by the parent alpha-ca", issueClient(t, "kcp-front-proxy", nil, parentCert, parentKey), false},
		{"signed by the client CA", issueClient(t, "kcp-front-proxy", nil, clientCACert, clientCAKey), false},
		{"the front-proxy's kubeconfig (client CA)", k.tlsPair(t, kcpSecretPath(ns, "alpha-edge-kubeconfig")), false},
		{"other root shard's request-header client", k.tlsPair(t, kcpSecretPath("kcp-beta", "kcp-front-proxy-vw-client")), false},
	}
	srv := kcpServer(t, k.tlsPair(t, kcpSecretPath(ns, "kcp")), rhFile)
	o := k.objectAt(t, kcpSecretPath(ns, "kcp"))
	roots := x509.NewCertPool()
	roots.AddCert(o.CAChain()[0])
	openssl, opensslErr := exec.LookPath("openssl")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, sign.EncodeCertsPEM(o.CAChain()...), 0o644))
	for i, c := range clients {
		err := goGet(srv, "api.alpha.kcp.example.com", roots, c.cert)
		if c.admit {
			assert.NoError(t, err, "Go: %s", c.name)
		} else {
			assert.Error(t, err, "Go: %s", c.name)
		}
		if opensslErr != nil {
			continue
		}
		crt, key := writeClientFiles(t, dir, fmt.Sprint("c", i), c.cert)
		// TLS 1.2, so the server's verdict on the client certificate is part of
		// the handshake and s_client's exit code; with 1.3 it arrives after it.
		cmd := exec.Command(openssl, "s_client", "-connect", srv.Listener.Addr().String(), "-servername", "api.alpha.kcp.example.com",
			"-tls1_2", "-ign_eof", "-CAfile", caFile, "-verify_return_error", "-cert", crt, "-key", key)
		cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\n\r\n")
		out, err := cmd.CombinedOutput()
		if c.admit {
			assert.NoError(t, err, "openssl: %s\n%s", c.name, out)
			assert.Contains(t, string(out), "hello ", c.name)
		} else {
			assert.Error(t, err, "openssl: %s\n%s", c.name, out)
		}
	}
}

// TestKCPRootShardBundleChangePropagates: a new certificate in the root
// shard's clientCABundleRef reaches every component's bundle in the same run,
// and nothing else changes.
func TestKCPRootShardBundleChangePropagates(t *testing.T) {
	k := renderKCP(t, t0, nil)
	before := k.e.snapshot()
	extra := newTestCA(t, "second corp-idp client CA")
	p := filepath.Join(k.e.topo, "client-cas/corp-idp-ca.pem")
	old, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, append(old, sign.EncodeCertsPEM(extra.cert)...), 0o644))
	res := k.e.run(t0.Add(time.Hour), nil)
	assert.Empty(t, nonKeep(res.Plan), "only bundles change: nothing is signed, no key is needed")
	var bundles []string
	for _, b := range []string{"alpha-client-ca-bundle", "alpha-alpha-1-client-ca-bundle", "alpha-edge-client-ca-bundle", "alpha-alpha-vw-client-ca-bundle"} {
		bundles = append(bundles, kcpSecretPath("kcp-alpha", b))
	}
	sort.Strings(bundles)
	assert.Equal(t, bundles, changedFiles(before, k.e.snapshot()))
	for _, b := range bundles {
		data := k.manifest(t, b)["stringData"].(map[string]any)["tls.crt"].(string)
		var cns []string
		for _, c := range parsePEMCerts(t, data) {
			cns = append(cns, c.Subject.CommonName)
		}
		assert.Contains(t, cns, "second corp-idp client CA", b)
		assert.Contains(t, cns, "alpha-client-ca", b)
	}
}

// TestKCPDeleteKubeconfigRemovesSecretAndBindings: removing a kcp Kubeconfig
// removes its Secret and its workspace RBAC in one run, and the plan says the
// certificate stays valid until it expires.
func TestKCPDeleteKubeconfigRemovesSecretAndBindings(t *testing.T) {
	k := renderKCP(t, t0, nil)
	rbac := "clusters/root-initech-teamgibbons/rbac/clusterrolebinding-gitca-kubeconfig-susan-cluster-admin.yaml"
	require.FileExists(t, filepath.Join(k.e.state, rbac))
	crb := k.manifest(t, rbac)
	assert.Equal(t, []any{map[string]any{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "kubeconfig:susan"}}, crb["subjects"])
	assert.Equal(t, "cluster-admin", crb["roleRef"].(map[string]any)["name"])
	notAfter := k.st.Primary["Kubeconfig/susan"].Cert().NotAfter

	p := filepath.Join(k.e.topo, "kcp.yaml")
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	start := strings.Index(string(raw), "      # Through the front-proxy")
	end := strings.Index(string(raw), "      # Straight at a shard")
	require.True(t, start > 0 && end > start)
	require.NoError(t, os.WriteFile(p, append(raw[:start:start], raw[end:]...), 0o644))

	res := k.e.run(t0.Add(time.Hour), nil)
	assert.Equal(t, map[string]plan.ActionKind{"Kubeconfig/susan": plan.ActionDelete}, nonKeep(res.Plan))
	notes := strings.Join(res.Plan.Action("Kubeconfig/susan").Notes, "\n")
	assert.Contains(t, notes, notAfter.UTC().Format("2006-01-02"), "the plan says until when the certificate stays valid")
	assert.NoFileExists(t, filepath.Join(k.e.state, kcpSecretPath("kcp-alpha", "susan-kubeconfig")))
	assert.NoFileExists(t, filepath.Join(k.e.state, rbac))
	assert.NoDirExists(t, filepath.Join(k.e.state, "clusters/root-initech-teamgibbons"))
}
