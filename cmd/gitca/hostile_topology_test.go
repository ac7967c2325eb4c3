package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/internal/hostileyaml"
	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// hostileTopo is a topology repository to break, and a sentinel directory
// outside it that links may point to.
type hostileTopo struct {
	t            *testing.T
	dir, outside string
	recipient    string
}

func (h *hostileTopo) path(p string) string { return filepath.Join(h.dir, filepath.FromSlash(p)) }

func (h *hostileTopo) write(p, content string) {
	require.NoError(h.t, os.MkdirAll(filepath.Dir(h.path(p)), 0o755))
	require.NoError(h.t, os.WriteFile(h.path(p), []byte(content), 0o644))
}

func (h *hostileTopo) replace(p, old, new string) {
	b, err := os.ReadFile(h.path(p))
	require.NoError(h.t, err)
	require.Contains(h.t, string(b), old, p)
	h.write(p, strings.Replace(string(b), old, new, 1))
}

// link makes p a symbolic link; "OUT" in target is the sentinel directory.
func (h *hostileTopo) link(p, target string) {
	require.NoError(h.t, os.MkdirAll(filepath.Dir(h.path(p)), 0o755))
	require.NoError(h.t, os.Symlink(strings.ReplaceAll(target, "OUT", h.outside), h.path(p)))
}

// leaf adds a certificate of the basic topology's issuing CA with extra spec lines.
func (h *hostileTopo) leaf(file, name, spec string) {
	h.write(file, fmt.Sprintf("apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: %s\nspec:\n  issuer: issuing\n  profile: server\n  validity: 720h\n  secret: {cluster: prod}\n%s", name, spec))
}

// ca adds a CertificateAuthority with extra spec lines.
func (h *hostileTopo) ca(file, name, spec string) {
	h.write(file, fmt.Sprintf("apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: %s\nspec:\n  validity: 43800h\n%s", name, spec))
}

// importCA writes cert as corp/ca.crt, key sealed to the run's recipient as
// corp/ca.key.sops.yaml, and imported.yaml: a CA importing both and a leaf it signs.
func (h *hostileTopo) importCA(cert []byte, key crypto.Signer) {
	h.write("corp/ca.crt", string(cert))
	pemKey, err := sign.EncodePrivateKeyPEM(key)
	require.NoError(h.t, err)
	plain := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: corp-ca-key\nstringData:\n  tls.key: |\n    " +
		strings.ReplaceAll(strings.TrimSpace(string(pemKey)), "\n", "\n    ") + "\n"
	sealed, err := secrets.Seal([]byte(plain), []string{h.recipient}, t0)
	require.NoError(h.t, err)
	h.write("corp/ca.key.sops.yaml", string(sealed))
	h.write("imported.yaml", `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata: {name: corp}
spec:
  import:
    certificate: corp/ca.crt
    key: corp/ca.key.sops.yaml
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata: {name: corp-web}
spec:
  issuer: corp
  profile: server
  dnsNames: [corp-web.example.com]
  validity: 720h
  secret: {cluster: prod}
`)
}

// x509Cert is a certificate of key made by Go's x509 package from tmpl,
// signed by parent (self-signed when nil), PEM-encoded.
func x509Cert(t *testing.T, tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) []byte {
	t.Helper()
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return sign.EncodeCertsPEM(c)
}

func caTemplate(cn string, nb, na time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

// TestHostileTopologies: every kind of hostile or careless topology repo
// (links of every kind, traversal names, huge and deep YAML, duplicates,
// typos, plain keys, bad imported CAs, cycles, bad durations and names) makes
// gitca plan and gitca render exit 1 with a message naming the file (and the
// line where there is one), or is accepted and then converges; never a stack
// trace, never a write outside the state tree, never more than 5 s.
func TestHostileTopologies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs some hundred gitca processes")
	}
	e := newEnv(t)
	e.usePlainBinary(t)
	key, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	ids, err := secrets.ParseIdentities(strings.NewReader(string(key)))
	require.NoError(t, err)
	recipient := ids.Recipients()[0]
	e.vars = append(e.vars, "SOPS_AGE_RECIPIENTS="+recipient)
	base := filepath.Join("..", "..", "render", "testdata", "basic")

	caKey := testpki.Key(t)
	otherKey := testpki.Key(t)
	good := testpki.Root(t, "Corp Root", caKey, t0.Add(-24*time.Hour), t0.Add(87600*time.Hour))
	goodPEM := sign.EncodeCertsPEM(good)
	_, plainKey := testpki.PEMPair(t, "plain")
	ageID := strings.TrimSpace(string(key[strings.Index(string(key), "AGE-SECRET-KEY-"):]))

	var manyObjects strings.Builder
	for i := range topology.MaxDocuments + 1 {
		fmt.Fprintf(&manyObjects, "---\napiVersion: gitca.dev/v1alpha1\nkind: KeyPair\nmetadata: {name: k%05d}\nspec: {secret: {cluster: prod}}\n", i)
	}
	var manyLeafs strings.Builder
	for i := range 300 {
		fmt.Fprintf(&manyLeafs, "---\napiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: l%03d}\nspec: {issuer: issuing, profile: client, validity: 720h, secret: {cluster: prod}}\n", i)
	}
	longName := strings.Repeat("a", 10_000)

	type outcome struct {
		err    string // a regexp stderr must match; it names the file
		accept bool   // render succeeds and the next plan has nothing to do
		// renderErr: the plan reads no private key, so only the render finds
		// this; it names the file.
		renderErr string
	}
	fail := func(re string) outcome { return outcome{err: re} }
	accepted := outcome{accept: true}
	cases := []struct {
		name   string
		mutate func(h *hostileTopo)
		want   outcome
	}{
		// Links of every kind.
		{"file links out", func(h *hostileTopo) { h.link("stolen.yaml", "OUT/victim.yaml") },
			fail(`stolen\.yaml:1:1: symlink points outside the topology repo`)},
		{"dir links out", func(h *hostileTopo) { h.link("more", "OUT") }, fail(`more: symlink to a directory \("[^"]*outside"\)`)},
		{"file links inside", func(h *hostileTopo) { h.link("leafs-again.yaml", "leafs.yaml") },
			fail(`leafs\.yaml:4:9: metadata\.name: duplicate Certificate "web", first declared at leafs-again\.yaml:2:1`)},
		{"dir links to its parent", func(h *hostileTopo) { h.link("sub/loop", "..") }, fail(`sub/loop: symlink to a directory \("\.\."\)`)},
		{"dangling link", func(h *hostileTopo) { h.link("gone.yaml", "nowhere.yaml") }, fail(`gone\.yaml`)},
		{"link to itself", func(h *hostileTopo) { h.link("self.yaml", "self.yaml") }, fail(`self\.yaml`)},
		{"two links in a loop", func(h *hostileTopo) { h.link("a.yaml", "b.yaml"); h.link("b.yaml", "a.yaml") }, fail(`a\.yaml`)},
		{"link to /etc/passwd", func(h *hostileTopo) { h.link("passwd.yaml", "/etc/passwd") }, fail(`passwd\.yaml:1:1: symlink points outside`)},
		{"link to /dev/zero", func(h *hostileTopo) { h.link("zero.yaml", "/dev/zero") }, fail(`zero\.yaml:1:1: symlink points outside`)},
		{"FIFO", func(h *hostileTopo) { require.NoError(h.t, syscall.Mkfifo(h.path("fifo.yaml"), 0o644)) }, fail(`fifo\.yaml: not a regular file`)},
		{"imported certificate links out", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			require.NoError(h.t, os.Remove(h.path("corp/ca.crt")))
			require.NoError(h.t, os.WriteFile(filepath.Join(h.outside, "ca.crt"), goodPEM, 0o644))
			h.link("corp/ca.crt", "OUT/ca.crt")
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate: .*corp/ca\.crt`)},
		{"bundle file links to /etc/ssl", func(h *hostileTopo) {
			h.link("bundle.pem", "/etc/ssl/certs/ca-certificates.crt")
			h.replace("leafs.yaml", "    - ca: other\n", "    - ca: other\n    - file: bundle.pem\n")
		}, fail(`leafs\.yaml:\d+:\d+: .*bundle\.pem`)},
		// Traversal names.
		{"imported certificate outside the repo", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			require.NoError(h.t, os.WriteFile(filepath.Join(h.outside, "ca.crt"), goodPEM, 0o644))
			h.replace("imported.yaml", "certificate: corp/ca.crt", "certificate: ../outside/ca.crt")
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate`)},
		{"imported certificate by absolute path", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			h.replace("imported.yaml", "certificate: corp/ca.crt", "certificate: /etc/passwd")
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate`)},
		{"imported key outside the repo", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			h.replace("imported.yaml", "key: corp/ca.key.sops.yaml", "key: ../../../../etc/shadow")
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.key`)},
		{"a NUL in a file name", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			h.replace("imported.yaml", "certificate: corp/ca.crt", `certificate: "corp/ca.crt\0.pem"`)
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate`)},
		{"a file name of 10,000 bytes", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			h.replace("imported.yaml", "certificate: corp/ca.crt", "certificate: corp/"+longName)
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate`)},
		{"an object named like a path", func(h *hostileTopo) { h.leaf("x.yaml", "../../etc/x", "  dnsNames: [x.example.com]\n") },
			fail(`x\.yaml:4:9: metadata\.name`)},
		{"an absolute object name", func(h *hostileTopo) { h.leaf("x.yaml", "/etc/x", "  dnsNames: [x.example.com]\n") },
			fail(`x\.yaml:4:9: metadata\.name`)},
		{"an object name of 10,000 bytes", func(h *hostileTopo) { h.leaf("x.yaml", longName, "  dnsNames: [x.example.com]\n") },
			fail(`x\.yaml:4:9: metadata\.name`)},
		{"a Secret named like a path", func(h *hostileTopo) {
			h.leaf("x.yaml", "x", "  dnsNames: [x.example.com]\n")
			h.replace("x.yaml", "secret: {cluster: prod}", "secret: {cluster: prod, name: ../../x}")
		}, fail(`x\.yaml:\d+:\d+: spec\.secret\.name`)},
		{"a namespace like a path", func(h *hostileTopo) { h.replace("config.yaml", "namespace: pki", "namespace: ../../outside") },
			fail(`config\.yaml:\d+:\d+: spec\.clusters\[0\]\.namespace`)},
		{"a cluster named like a path", func(h *hostileTopo) {
			h.replace("config.yaml", "- name: prod", "- name: ../outside")
		}, fail(`config\.yaml:\d+:\d+: spec\.clusters\[0\]\.name`)},
		{"a NUL in a name", func(h *hostileTopo) { h.leaf("x.yaml", `"x\0y"`, "  dnsNames: [x.example.com]\n") },
			fail(`x\.yaml:4:9: metadata\.name`)},
		// Huge and deep YAML.
		{"merge-key bomb", func(h *hostileTopo) { h.write("bomb.yaml", hostileyaml.MergeBomb(9)) },
			fail(`bomb\.yaml:\d+:\d+: aliases expand to more than`)},
		{"billion laughs", func(h *hostileTopo) { h.write("lol.yaml", hostileyaml.Laughs(9, "[", "]")) },
			fail(`lol\.yaml:\d+:\d+: aliases expand to more than`)},
		{"billion laughs of mappings", func(h *hostileTopo) { h.write("lol.yaml", hostileyaml.Laughs(9, "{", "}")) },
			fail(`lol\.yaml:\d+:\d+: aliases expand to more than`)},
		{"alias chain", func(h *hostileTopo) { h.write("chain.yaml", hostileyaml.AliasChain(100)) },
			fail(`chain\.yaml:\d+:\d+: values nested more than 64 deep`)},
		{"deep block mapping", func(h *hostileTopo) { h.write("deep.yaml", hostileyaml.DeepBlock(200)) },
			fail(`deep\.yaml:\d+:\d+: values nested more than 64 deep`)},
		{"deep flow sequence", func(h *hostileTopo) { h.write("deep.yaml", strings.Repeat("[", 100_000)) },
			fail(`deep\.yaml:1:\d+: flow collections`)},
		{"self-referencing merge key", func(h *hostileTopo) { h.write("self.yaml", hostileyaml.Header+"metadata: &d\n  name: x\n  <<: *d\n") },
			fail(`self\.yaml:5:7: alias \*d refers to a value that contains it`)},
		{"a sparse file of 1 GiB", func(h *hostileTopo) { sparse(h.t, h.path("huge.yaml"), 1<<30) },
			fail(`huge\.yaml: file is larger than 4194304 bytes`)},
		{"a big binary file that is not YAML", func(h *hostileTopo) { sparse(h.t, h.path("blob.bin"), 64<<20) }, accepted},
		{"too many lines", func(h *hostileTopo) { h.write("lines.yaml", strings.Repeat("#\n", topology.MaxFileItems+1)) },
			fail(`lines\.yaml:100001:1: more than 100000 lines`)},
		{"too many objects", func(h *hostileTopo) { h.write("many.yaml", manyObjects.String()) },
			fail(`many\.yaml:\d+:\d+: more than 10000 documents in one file`)},
		{"300 certificates", func(h *hostileTopo) { h.write("many.yaml", manyLeafs.String()) }, accepted},
		// Duplicates.
		{"duplicate keys", func(h *hostileTopo) { h.ca("x.yaml", "x", "  validity: 8760h\n") },
			fail(`x\.yaml:7:3: spec\.validity: duplicate field`)},
		{"duplicate objects", func(h *hostileTopo) { h.ca("x.yaml", "root", "") },
			fail(`x\.yaml:4:9: metadata\.name: duplicate CertificateAuthority "root", first declared at cas\.yaml:2:1`)},
		{"two Configs", func(h *hostileTopo) {
			h.write("config2.yaml", "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata: {name: again}\n")
		},
			fail(`config2\.yaml:2:\d+: kind: only one Config document is allowed, the first is at config\.yaml:`)},
		{"a certificate and a kubeconfig in one Secret", func(h *hostileTopo) {
			h.leaf("x.yaml", "x", "  dnsNames: [x.example.com]\n")
			h.replace("x.yaml", "secret: {cluster: prod}", "secret: {cluster: prod, name: ops}")
		}, fail(`x\.yaml:\d+:\d+: .*ops`)},
		// Unknown kinds and fields, typos.
		{"a kind with a typo", func(h *hostileTopo) {
			h.write("x.yaml", "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthorty\nmetadata: {name: x}\n")
		}, fail(`x\.yaml:2:7: kind: unknown kind "CertificateAuthorty"`)},
		{"a field with a typo", func(h *hostileTopo) {
			h.replace("leafs.yaml", "  issuer: issuing\n  profile: server", "  isuer: issuing\n  profile: server")
		},
			fail(`leafs\.yaml:6:3: spec\.isuer: unknown field "isuer", did you mean "issuer"`)},
		{"an unknown apiVersion", func(h *hostileTopo) {
			h.replace("cas.yaml", "apiVersion: gitca.dev/v1alpha1", "apiVersion: gitca.dev/v2")
		},
			fail(`cas\.yaml:1:\d+: apiVersion`)},
		{"no apiVersion", func(h *hostileTopo) { h.replace("cas.yaml", "apiVersion: gitca.dev/v1alpha1\n", "") },
			fail(`cas\.yaml:\d+:\d+: apiVersion`)},
		{"a Kubernetes Secret in the topology", func(h *hostileTopo) {
			h.write("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: b}\n")
		}, fail(`secret\.yaml:1:\d+: apiVersion`)},
		{"a Config field in a CA", func(h *hostileTopo) { h.ca("x.yaml", "x", "  clusters: [{name: prod}]\n") },
			fail(`x\.yaml:7:3: spec\.clusters: unknown field`)},
		{"a spec that is a list", func(h *hostileTopo) {
			h.write("x.yaml", "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: x}\nspec: [a, b]\n")
		}, fail(`x\.yaml:4:7: spec: expected a mapping`)},
		// Plain private keys.
		{"a PEM key in a YAML comment", func(h *hostileTopo) {
			h.write("cas.yaml", "# "+strings.ReplaceAll(strings.TrimSpace(plainKey), "\n", "\n# ")+"\n"+mustRead(t, filepath.Join(base, "cas.yaml")))
		}, fail(`cas\.yaml:1:1: plain private key \(PEM PRIVATE KEY\)`)},
		{"a PEM key in a text file", func(h *hostileTopo) { h.write("docs/notes.txt", "see below\n\n"+plainKey) },
			fail(`docs/notes\.txt:3:1: plain private key \(PEM PRIVATE KEY\)`)},
		{"an age identity in a README", func(h *hostileTopo) { h.write("README.md", "# topology\n"+ageID+"\n") },
			fail(`README\.md:2:1: plain age secret key`)},
		{"an imported key in plain text", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			pemKey, err := sign.EncodePrivateKeyPEM(caKey)
			require.NoError(h.t, err)
			h.write("corp/ca.key.sops.yaml", string(pemKey))
		}, fail(`corp/ca\.key\.sops\.yaml:1:1: plain private key \(PEM PRIVATE KEY\)`)},
		// Imported CAs that cannot be.
		{"an imported CA that is not self-signed", func(h *hostileTopo) {
			h.importCA(x509Cert(h.t, caTemplate("Corp Issuing", t0.Add(-time.Hour), t0.Add(8760*time.Hour)), otherKey, good, caKey), otherKey)
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate: corp/ca\.crt is not self-signed`)},
		{"an imported CA that is CA:FALSE", func(h *hostileTopo) {
			c := caTemplate("Corp", t0.Add(-time.Hour), t0.Add(8760*time.Hour))
			c.IsCA, c.KeyUsage = false, x509.KeyUsageDigitalSignature
			h.importCA(x509Cert(h.t, c, caKey, nil, nil), caKey)
		}, fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate: corp/ca\.crt is not a CA certificate`)},
		{"an expired imported CA", func(h *hostileTopo) {
			h.importCA(x509Cert(h.t, caTemplate("Corp", t0.Add(-2*8760*time.Hour), t0.Add(-time.Hour)), caKey, nil, nil), caKey)
		}, fail(`imported\.yaml:6:18: CertificateAuthority/corp: spec\.import\.certificate: corp/ca\.crt expired at 2026-11-23T11:00:00Z, so it cannot sign Certificate/corp-web`)},
		{"an imported CA not valid yet", func(h *hostileTopo) {
			h.importCA(x509Cert(h.t, caTemplate("Corp", t0.Add(8760*time.Hour), t0.Add(2*8760*time.Hour)), caKey, nil, nil), caKey)
		}, fail(`imported\.yaml:6:18: CertificateAuthority/corp: spec\.import\.certificate: corp/ca\.crt is not valid before 2027-11-23T12:00:00Z`)},
		{"an imported CA with another key", func(h *hostileTopo) { h.importCA(goodPEM, otherKey) },
			outcome{renderErr: `CertificateAuthority/corp: spec\.import\.key corp/ca\.key\.sops\.yaml does not match the public key of corp/ca\.crt`}},
		{"an imported CA that is no PEM", func(h *hostileTopo) { h.importCA([]byte("not a certificate\n"), caKey) },
			fail(`imported\.yaml:\d+:\d+: spec\.import\.certificate: corp/ca\.crt: no CERTIFICATE PEM block found`)},
		{"an imported CA file that is missing", func(h *hostileTopo) {
			h.importCA(goodPEM, caKey)
			require.NoError(h.t, os.Remove(h.path("corp/ca.crt")))
		}, fail(`imported\.yaml:6:18: spec\.import\.certificate: file "corp/ca\.crt" does not exist`)},
		// References.
		{"a cluster reference with a typo", func(h *hostileTopo) { h.replace("leafs.yaml", "cluster: prod", "cluster: prd") },
			fail(`leafs\.yaml:\d+:\d+: spec\.secret\.cluster: .*"prd".*prod`)},
		{"an issuer that does not exist", func(h *hostileTopo) { h.replace("leafs.yaml", "issuer: issuing", "issuer: isuing") },
			fail(`leafs\.yaml:6:\d+: spec\.issuer: .*isuing`)},
		{"a certificate as an issuer", func(h *hostileTopo) { h.replace("leafs.yaml", "issuer: other", "issuer: web") },
			fail(`leafs\.yaml:\d+:\d+: spec\.issuer: .*web`)},
		{"cyclic CA parents", func(h *hostileTopo) {
			h.ca("x.yaml", "a", "  issuer: b\n")
			h.ca("y.yaml", "b", "  issuer: a\n")
		}, fail(`[xy]\.yaml:\d+:\d+: spec\.issuer: .*(cycle|loop)`)},
		{"a CA issuing itself", func(h *hostileTopo) { h.ca("x.yaml", "a", "  issuer: a\n") },
			fail(`x\.yaml:\d+:\d+: spec\.issuer: .*(cycle|itself)`)},
		{"a CA below a path length of 0", func(h *hostileTopo) { h.ca("x.yaml", "a", "  issuer: issuing\n") },
			fail(`x\.yaml:\d+:\d+: spec\.issuer: CA "issuing" has pathLen 0, which allows 0 CA\(s\) below it`)},
		{"a CA two below a path length of 1", func(h *hostileTopo) {
			h.ca("x.yaml", "mid", "  issuer: root\n  pathLen: 1\n")
			h.ca("y.yaml", "low", "  issuer: mid\n")
			h.ca("z.yaml", "lower", "  issuer: low\n")
		}, fail(`z\.yaml:7:11: spec\.issuer: CA "mid" has pathLen 1, which allows 1 CA\(s\) below it; this one is CA number 2 below it`)},
		// Empty and odd repos.
		{"an empty dir", func(h *hostileTopo) {
			for _, f := range []string{"cas.yaml", "config.yaml", "leafs.yaml"} {
				require.NoError(h.t, os.Remove(h.path(f)))
			}
		}, fail(`declares no object: a wrong path must not look like an empty PKI`)},
		{"comments only", func(h *hostileTopo) {
			for _, f := range []string{"cas.yaml", "config.yaml", "leafs.yaml"} {
				h.write(f, "# nothing here\n---\n# still nothing\n")
			}
		}, fail(`declares no object.*3 \*\.yaml or \*\.yml files, all empty or comments`)},
		{"a document that is a scalar", func(h *hostileTopo) { h.write("x.yaml", "--- just text\n") },
			fail(`x\.yaml:1:5: a document must be a mapping`)},
		{"binary junk", func(h *hostileTopo) { h.write("junk.yaml", "\x00\x01\x02\xff\xfe"+strings.Repeat("\x7f\x00", 100)) },
			fail(`junk\.yaml:1:`)},
		{"UTF-16 with a byte order mark", func(h *hostileTopo) {
			var b strings.Builder
			b.WriteString("\xff\xfe")
			for _, r := range "apiVersion: gitca.dev/v1alpha1\nkind: KeyPair\n" {
				b.WriteString(string(rune(r)) + "\x00")
			}
			h.write("utf16.yaml", b.String())
		}, fail(`utf16\.yaml:2:1: metadata\.name: name is required`)},
		{"invalid UTF-8", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: [\"x\xff\xfe.example.com\"]\n") }, fail(`x\.yaml:`)},
		{"a UTF-8 byte order mark", func(h *hostileTopo) {
			h.write("cas.yaml", "\xef\xbb\xbf"+mustRead(t, filepath.Join(base, "cas.yaml")))
		}, accepted},
		{"CRLF line ends", func(h *hostileTopo) {
			h.write("leafs.yaml", strings.ReplaceAll(mustRead(t, filepath.Join(base, "leafs.yaml")), "\n", "\r\n"))
		}, accepted},
		{"junk in .git and a hidden dir", func(h *hostileTopo) {
			h.write(".git/junk.yaml", "\x00\x01")
			h.write(".hidden/junk.yaml", hostileyaml.MergeBomb(9))
		}, accepted},
		// Durations.
		{"a validity that is no duration", func(h *hostileTopo) { h.replace("leafs.yaml", "validity: 2160h", "validity: forever") },
			fail(`leafs\.yaml:10:13: spec\.validity`)},
		{"a negative validity", func(h *hostileTopo) { h.replace("leafs.yaml", "validity: 2160h", "validity: -2160h") },
			fail(`leafs\.yaml:10:13: spec\.validity`)},
		{"a zero validity", func(h *hostileTopo) { h.replace("leafs.yaml", "validity: 2160h", "validity: 0s") },
			fail(`leafs\.yaml:10:13: spec\.validity`)},
		{"a validity that overflows", func(h *hostileTopo) { h.replace("leafs.yaml", "validity: 2160h", "validity: 99999999999999h") },
			fail(`leafs\.yaml:10:13: spec\.validity`)},
		{"a validity of days that overflows", func(h *hostileTopo) { h.replace("leafs.yaml", "validity: 2160h", "validity: 9999999999999d") },
			fail(`leafs\.yaml:10:13: spec\.validity`)},
		{"renewBefore longer than the validity", func(h *hostileTopo) { h.replace("leafs.yaml", "renewBefore: 360h", "renewBefore: 3000h") },
			fail(`leafs\.yaml:11:16: spec\.renewBefore: renewBefore 3000h must be shorter than validity 2160h`)},
		{"a validity as a number", func(h *hostileTopo) { h.replace("leafs.yaml", "validity: 2160h", "validity: 2160") },
			fail(`leafs\.yaml:10:13: spec\.validity`)},
		// Path lengths.
		{"a negative path length", func(h *hostileTopo) { h.replace("cas.yaml", "pathLen: 0", "pathLen: -1") },
			fail(`cas\.yaml:\d+:\d+: spec\.pathLen`)},
		{"a path length of 2^40", func(h *hostileTopo) { h.replace("cas.yaml", "pathLen: 0", "pathLen: 1099511627776") }, accepted},
		{"a path length that is text", func(h *hostileTopo) { h.replace("cas.yaml", "pathLen: 0", "pathLen: none") },
			fail(`cas\.yaml:\d+:\d+: spec\.pathLen`)},
		// Names in certificates.
		{"an IP address as a DNS name", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: [10.0.0.1]\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"a bare wildcard", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: ['*']\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"a wildcard in an inner label", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: [a.*.example.com]\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"two wildcards", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: ['*.*.example.com']\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"a partial wildcard", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: ['w*.example.com']\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"an empty label", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: [a..example.com]\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"a DNS name with a space", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: ['a b.example.com']\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"a DNS name of 300 bytes", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  dnsNames: ["+strings.Repeat("a.", 150)+"com]\n") },
			fail(`x\.yaml:10:\d+: spec\.dnsNames\[0\]`)},
		{"an IP address that is not one", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  ipAddresses: [999.1.1.1]\n") },
			fail(`x\.yaml:10:\d+: spec\.ipAddresses\[0\]`)},
		{"a URI that is not one", func(h *hostileTopo) { h.leaf("x.yaml", "x", "  uris: ['http://[::1']\n") },
			fail(`x\.yaml:10:\d+: spec\.uris\[0\]`)},
		// Valid X.509 (the CN names it), though today's TLS clients want a SAN.
		{"a server certificate without a name", func(h *hostileTopo) { h.leaf("x.yaml", "x", "") }, accepted},
		{"an unknown profile", func(h *hostileTopo) { h.replace("leafs.yaml", "profile: server", "profile: codeSigning") },
			fail(`leafs\.yaml:7:\d+: spec\.profile`)},
		{"an unknown key algorithm", func(h *hostileTopo) { h.replace("leafs.yaml", "keyAlgorithm: RSA-2048", "keyAlgorithm: RSA-1024") },
			fail(`leafs\.yaml:\d+:\d+: spec\.keyAlgorithm`)},
		{"a kubeconfig server that is no URL", func(h *hostileTopo) {
			h.replace("leafs.yaml", "server: https://api.prod.example.com:6443", "server: ':::'")
		}, fail(`leafs\.yaml:\d+:\d+: spec\.target\.server`)},
		// Rotations and presets.
		{"a rotation to generation 0", func(h *hostileTopo) {
			h.replace("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  rotation: {generation: 0}\n")
		},
			fail(`cas\.yaml:\d+:\d+: spec\.rotation\.generation`)},
		{"a rotation to a negative generation", func(h *hostileTopo) {
			h.replace("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  rotation: {generation: -3}\n")
		}, fail(`cas\.yaml:\d+:\d+: spec\.rotation\.generation`)},
		{"a rotation with a negative soak", func(h *hostileTopo) {
			h.replace("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  rotation: {generation: 2, soak: -1h}\n")
		}, fail(`cas\.yaml:\d+:\d+: spec\.rotation\.soak`)},
		{"a rotation with an unknown retire policy", func(h *hostileTopo) {
			h.replace("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  rotation: {generation: 2, retire: shred}\n")
		}, fail(`cas\.yaml:\d+:\d+: spec\.rotation\.retire`)},
		{"a preset type with a typo", func(h *hostileTopo) {
			h.write("preset.yaml", "apiVersion: gitca.dev/v1alpha1\nkind: Preset\nmetadata: {name: demo}\nspec:\n  type: kubeadmm\n")
		}, fail(`preset\.yaml:5:\d+: spec\.type`)},
		{"a kubeadm node that is there twice", func(h *hostileTopo) {
			h.write("preset.yaml", kubeadmPreset("[{name: cp-0, advertiseAddress: 10.0.0.1}, {name: cp-0, advertiseAddress: 10.0.0.2}]"))
		}, fail(`preset\.yaml:\d+:\d+: spec\.kubeadm\.nodes\[1\]`)},
		{"a kubeadm node address that is no IP", func(h *hostileTopo) {
			h.write("preset.yaml", kubeadmPreset("[{name: cp-0, advertiseAddress: not-an-ip}]"))
		}, fail(`preset\.yaml:\d+:\d+: spec\.kubeadm\.nodes\[0\]\.advertiseAddress`)},
		{"a kubeadm preset in a cluster that is not declared", func(h *hostileTopo) {
			h.write("preset.yaml", strings.Replace(kubeadmPreset("[{name: cp-0, advertiseAddress: 10.0.0.1}]"), "namespace: kube-system", "cluster: nowhere", 1))
		}, fail(`preset\.yaml:\d+:\d+: `)},
		{"a kubeadm preset", func(h *hostileTopo) {
			h.write("preset.yaml", kubeadmPreset("[{name: cp-0, advertiseAddress: 10.0.0.1}]"))
		}, accepted},
		{"a trust bundle of a CA that does not exist", func(h *hostileTopo) { h.replace("leafs.yaml", "    - ca: other\n", "    - ca: othre\n") },
			fail(`leafs\.yaml:\d+:\d+: spec\.sources\[1\]\.ca: .*"othre"`)},
		{"a kubeconfig trusting a CA that does not exist", func(h *hostileTopo) { h.replace("leafs.yaml", "    ca: root\n", "    ca: rot\n") },
			fail(`leafs\.yaml:\d+:\d+: spec\.target\.ca: .*"rot"`)},
	}
	require.GreaterOrEqual(t, len(cases), 60)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			h := &hostileTopo{t: t, dir: filepath.Join(tmp, "topology"), outside: filepath.Join(tmp, "outside"), recipient: recipient}
			require.NoError(t, os.CopyFS(h.dir, os.DirFS(base)))
			require.NoError(t, os.MkdirAll(h.outside, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(h.outside, "victim.yaml"), []byte(hostileyaml.Header+"metadata: {name: victim}\n"), 0o644))
			c.mutate(h)
			state := filepath.Join(tmp, "state")
			sentinel, topo := treeStat(t, h.outside), treeStat(t, h.dir)

			run := func(args ...string) result {
				start := time.Now()
				r := e.run(t, append(args, "--topology", h.dir, "--state", state, "--now", rfc3339(t0))...)
				assert.Less(t, time.Since(start), 5*time.Second, "gitca %s", args[0])
				out := r.stdout + r.stderr
				assert.NotContains(t, out, "goroutine ", "no stack trace")
				assert.NotContains(t, out, "panic:")
				assert.NotContains(t, out, strings.Split(plainKey, "\n")[1], "no key in any output")
				assert.NotContains(t, out, ageID[20:])
				return r
			}
			p := run("plan")
			r := run("render")
			defer func() {
				if t.Failed() {
					t.Logf("plan: exit %d\n%s\nrender: exit %d\n%s", p.code, p.stderr, r.code, r.stderr)
				}
			}()
			switch {
			case c.want.renderErr != "":
				assert.Equal(t, 0, p.code, "plan reads no key\n%s%s", p.stdout, p.stderr)
				assert.Equal(t, 1, r.code, "render fails\n%s%s", r.stdout, r.stderr)
				assert.Regexp(t, regexp.MustCompile(c.want.renderErr), r.stderr, "render names the file")
				assert.NoDirExists(t, state, "a failed render writes nothing")
			case c.want.err != "":
				assert.Equal(t, 1, p.code, "plan fails\n%s%s", p.stdout, p.stderr)
				assert.Regexp(t, regexp.MustCompile(c.want.err), p.stderr, "plan names the file")
				assert.Equal(t, 1, r.code, "render fails\n%s%s", r.stdout, r.stderr)
				assert.Regexp(t, regexp.MustCompile(c.want.err), r.stderr, "render names the file")
				assert.NoDirExists(t, state, "a failed render writes nothing")
			default:
				require.Equal(t, 0, p.code, "plan\n%s%s", p.stdout, p.stderr)
				require.Equal(t, 0, r.code, "render\n%s%s", r.stdout, r.stderr)
				again := run("plan", "--detailed-exitcode")
				assert.Equal(t, 0, again.code, "the next plan has nothing to do\n%s%s", again.stdout, again.stderr)
			}
			assert.Equal(t, sentinel, treeStat(t, h.outside), "nothing outside the tree changed")
			assert.Equal(t, topo, treeStat(t, h.dir), "the topology is only read")
		})
	}
}

// treeStat is every entry below dir with its type, size, mode and time (links
// with their target), read without opening anything: a FIFO or a sparse
// gigabyte must not hang or fill the test.
func treeStat(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %s", fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[p] += " -> " + target
			return err
		}
		return nil
	}))
	return out
}

// kubeadmPreset is a one-cluster kubeadm Preset in the basic topology's prod cluster.
func kubeadmPreset(nodes string) string {
	return `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata: {name: demo}
spec:
  type: kubeadm
  kubeadm:
    clusterName: prod
    controlPlaneEndpoint: 10.0.0.1:6443
    namespace: kube-system
    nodes: ` + nodes + "\n"
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
