package conformance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

const root = "../.."

// appliedSources are the lint sources whose rules hold for any X.509 PKI,
// public or private: the RFCs and the community's lints. Every other source
// (the CA/Browser Forum's, the root programs', ETSI's) is a policy for CAs
// that browsers trust; README.md, "Conformance", names each of their lints
// that fires on gitca's certificates and why it cannot apply.
var appliedSources = []lint.LintSource{
	lint.RFC5280, lint.RFC5480, lint.RFC3279, lint.RFC5891, lint.RFC6960, lint.RFC6962, lint.RFC8813,
	lint.Community,
}

func registry(t *testing.T, sources []lint.LintSource) lint.Registry {
	t.Helper()
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: sources})
	require.NoError(t, err)
	require.NotEmpty(t, r.Names())
	return r
}

// findings are the lints of reg that warn or fail on der, as "name: details".
func findings(t *testing.T, reg lint.Registry, der []byte) []string {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	require.NoError(t, err, "zcrypto parses the certificate")
	var out []string
	for name, r := range zlint.LintCertificateEx(c, reg).Results {
		if r.Status >= lint.Warn {
			out = append(out, fmt.Sprintf("%s (%s): %s", name, r.Status, r.Details))
		}
	}
	sort.Strings(out)
	return out
}

// issued is a certificate gitca signed and where it was first seen.
type issued struct {
	der   []byte
	where string
}

// pemCerts are the CERTIFICATE blocks of s.
func pemCerts(s []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		b, s = pem.Decode(s)
		if b == nil {
			return out
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
}

var ageRecipient = regexp.MustCompile(`age1[02-9ac-hj-np-z]{58}`)

var base64PEM = regexp.MustCompile(`^[A-Za-z0-9+/=\s]+$`)

// certsIn finds the certificates in a value of a manifest: PEM, base64 PEM
// (a kubeconfig's certificate data) and YAML that holds either (a kubeconfig).
func certsIn(v any, depth int) [][]byte {
	if depth > 8 {
		return nil
	}
	var out [][]byte
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			out = append(out, certsIn(x, depth+1)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, certsIn(x, depth+1)...)
		}
	case string:
		if strings.Contains(v, "-----BEGIN") {
			return pemCerts([]byte(v))
		}
		if len(v) > 64 && base64PEM.MatchString(v) {
			if b, err := base64.StdEncoding.DecodeString(v); err == nil && bytes.Contains(b, []byte("-----BEGIN")) {
				return pemCerts(b)
			}
		}
		if strings.Contains(v, "\n") {
			var doc any
			if yaml.Unmarshal([]byte(v), &doc) == nil {
				return certsIn(doc, depth+1)
			}
		}
	}
	return out
}

// fileCerts are the certificates in a state or topology file, opened with ids
// when it is sealed.
func fileCerts(t *testing.T, path string, ids secrets.Identities) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	if bytes.Contains(b, []byte("\nsops:\n")) {
		b, err = secrets.Open(b, ids)
		require.NoError(t, err, path)
	}
	out := pemCerts(b) // a .pem file
	for _, d := range strings.Split(string(b), "\n---\n") {
		var doc any
		if yaml.Unmarshal([]byte(d), &doc) == nil {
			out = append(out, certsIn(doc, 0)...)
		}
	}
	return out
}

func walkCerts(t *testing.T, dir string, ids secrets.Identities, each func(rel string, der []byte)) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		for _, der := range fileCerts(t, p, ids) {
			each(filepath.ToSlash(rel), der)
		}
		return nil
	}))
}

// renderer renders one topology into one state directory, in process, as
// gitca render does.
type renderer struct {
	t                 *testing.T
	topo, state       string
	ids               secrets.Identities
	recipient         string
	imported, certs   map[string]issued // by DER
	renders, rotating int
}

func newRenderer(t *testing.T, src string) *renderer {
	t.Helper()
	id, rcp, err := secrets.GenerateAgeKey(time.Now())
	require.NoError(t, err)
	ids, err := secrets.ParseIdentities(bytes.NewReader(id))
	require.NoError(t, err)
	dir := t.TempDir()
	r := &renderer{t: t, topo: filepath.Join(dir, "topology"), state: filepath.Join(dir, "state"), ids: ids, recipient: rcp,
		imported: map[string]issued{}, certs: map[string]issued{}}
	require.NoError(t, os.CopyFS(r.topo, os.DirFS(src)))
	// A topology that names recipients of its own is sealed to this test's.
	yamls, err := filepath.Glob(filepath.Join(r.topo, "*.yaml"))
	require.NoError(t, err)
	for _, y := range yamls {
		b, err := os.ReadFile(y)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(y, ageRecipient.ReplaceAll(b, []byte(rcp)), 0o644))
	}
	// Certificates the topology brings (imported CAs, partner roots) were not
	// issued by gitca: they are not gitca's to lint.
	walkCerts(t, r.topo, ids, func(rel string, der []byte) { r.imported[string(der)] = issued{der, rel} })
	return r
}

func (r *renderer) render(now time.Time) {
	r.t.Helper()
	top, err := topology.Load(r.topo)
	require.NoError(r.t, err)
	st, err := plan.ReadState(r.state)
	require.NoError(r.t, err)
	opt := render.Options{Options: plan.Options{Now: now, Recipients: plan.ResolveRecipients(top, []string{r.recipient})}}
	res, err := render.Render(context.Background(), top, st, opt, &r.ids, rand.Reader)
	require.NoError(r.t, err)
	require.NoError(r.t, emit.Write(r.state, res.Tree))
	r.renders++
	walkCerts(r.t, r.state, r.ids, func(rel string, der []byte) {
		if _, ok := r.imported[string(der)]; ok {
			return
		}
		if _, ok := r.certs[string(der)]; !ok {
			r.certs[string(der)] = issued{der, fmt.Sprintf("%s (render %d)", rel, r.renders)}
		}
	})
}

func (r *renderer) edit(file, old, new string) {
	r.t.Helper()
	p := filepath.Join(r.topo, file)
	b, err := os.ReadFile(p)
	require.NoError(r.t, err)
	require.Contains(r.t, string(b), old, file)
	require.NoError(r.t, os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644))
	r.rotating++
}

// rotate walks every declared rotation through Add, Switch and Drop (a soak
// of an hour each), so that every generation's CA and what it signs is linted.
func (r *renderer) rotate(now time.Time) {
	for i := 1; i <= 4; i++ {
		r.render(now.Add(time.Duration(i) * (time.Hour + time.Minute)))
	}
}

// topologies are every example topology, the render tests' own, and a matrix
// of every key algorithm and profile; edit declares rotations where there are
// CAs to rotate.
func topologies(t *testing.T) map[string]func(r *renderer) {
	t.Helper()
	out := map[string]func(r *renderer){
		"examples/kubeadm": func(r *renderer) {
			r.edit("kubeadm.yaml", "  type: kubeadm\n", "  type: kubeadm\n  rotations:\n"+
				"    demo-ca: {generation: 2, soak: 1h}\n    demo-etcd-ca: {generation: 2, soak: 1h}\n    demo-front-proxy-ca: {generation: 2, soak: 1h}\n")
		},
		"render/testdata/basic": func(r *renderer) {
			r.edit("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  rotation: {generation: 2, soak: 1h}\n")
		},
		"render/testdata/delivery": nil,
		"hack/conformance/testdata/matrix": func(r *renderer) {
			r.edit("pki.yaml", "  name: sub-ca\nspec:\n", "  name: sub-ca\nspec:\n  rotation: {generation: 2, soak: 1h}\n")
		},
	}
	// Every example with a topology, so that a new one is linted too.
	ents, err := os.ReadDir(filepath.Join(root, "examples"))
	require.NoError(t, err)
	for _, e := range ents {
		yamls, err := filepath.Glob(filepath.Join(root, "examples", e.Name(), "*.yaml"))
		require.NoError(t, err)
		for _, y := range yamls {
			b, err := os.ReadFile(y)
			require.NoError(t, err)
			if bytes.Contains(b, []byte("apiVersion: gitca.dev/")) {
				if _, ok := out["examples/"+e.Name()]; !ok {
					out["examples/"+e.Name()] = nil
				}
				break
			}
		}
	}
	require.Contains(t, out, "examples/kcp")
	return out
}

// issuedCerts renders every topology (rotations included) once per test
// binary: the two tests below lint the same certificates.
func issuedCerts(t *testing.T) map[string][]issued {
	t.Helper()
	if certsOnce != nil {
		return certsOnce
	}
	now := issuedAt
	out := map[string][]issued{}
	for name, rotate := range topologies(t) {
		r := newRenderer(t, filepath.Join(root, filepath.FromSlash(name)))
		r.render(now)
		if rotate != nil {
			before := len(r.certs)
			rotate(r)
			r.rotate(now)
			require.Greater(t, len(r.certs), before, "%s: the rotation issued new certificates", name)
			gen2 := 0
			for _, c := range r.certs {
				cert, err := x509.ParseCertificate(c.der)
				require.NoError(t, err)
				if cert.IsCA && strings.HasSuffix(cert.Subject.CommonName, "-g2") {
					gen2++
				}
			}
			require.Positive(t, gen2, "%s: a second generation CA was linted", name)
		}
		require.NotEmpty(t, r.certs, name)
		for _, c := range r.certs {
			out[name] = append(out[name], c)
		}
		sort.Slice(out[name], func(i, j int) bool { return out[name][i].where < out[name][j].where })
	}
	certsOnce = out
	return out
}

var certsOnce map[string][]issued

// issuedAt is when the certificates are issued: fixed, because lints take
// effect on dates (a lint of the Baseline Requirements that starts to fire
// on a later date is a change to README.md, made when zlint is upgraded, not
// a test that fails one morning).
var issuedAt = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// TestIssuedCertificatesConform: no RFC or community lint warns or fails on
// any certificate gitca issues, CA or leaf, of any key algorithm, profile or
// rotation generation.
func TestIssuedCertificatesConform(t *testing.T) {
	reg := registry(t, appliedSources)
	total, cas := 0, 0
	for name, certs := range issuedCerts(t) {
		t.Run(name, func(t *testing.T) {
			for _, c := range certs {
				cert, err := x509.ParseCertificate(c.der)
				require.NoError(t, err)
				if cert.IsCA {
					cas++
				}
				total++
				assert.Empty(t, findings(t, reg, c.der), "%s: %q (CA: %v)", c.where, cert.Subject.CommonName, cert.IsCA)
			}
		})
	}
	t.Logf("%d certificates (%d CAs) linted by %d lints", total, cas, len(reg.Names()))
	assert.Greater(t, total, 100)
	assert.Greater(t, cas, 10)
}

// TestExcludedLintsAreDocumented: each lint of the sources gitca does not
// apply that fires on one of its certificates is named in README.md with the
// reason it cannot apply to a private Kubernetes PKI, and the README names no
// lint that no longer fires.
func TestExcludedLintsAreDocumented(t *testing.T) {
	var excluded []lint.LintSource
	for _, s := range lint.GlobalRegistry().Sources() {
		if !slices.Contains(appliedSources, s) {
			excluded = append(excluded, s)
		}
	}
	reg := registry(t, excluded)
	fired := map[string]bool{}
	for name, certs := range issuedCerts(t) {
		for _, c := range certs {
			for _, f := range findings(t, reg, c.der) {
				lintName := f[:strings.IndexByte(f, ' ')]
				if !fired[lintName] {
					t.Logf("%s, first on %s: %s", f, name, c.where)
				}
				fired[lintName] = true
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Conformance\n")
	require.True(t, ok, "README.md has a Conformance section")
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([enw]_[a-z0-9_]+)`").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	for name := range fired {
		l := lint.GlobalRegistry().ByName(name)
		assert.True(t, documented[name], "README.md, Conformance: %s (%s) fires on gitca's certificates; say why it cannot apply", name, l.Source)
	}
	for name := range documented {
		assert.True(t, fired[name], "README.md, Conformance: %s no longer fires; take it out", name)
	}
}

// TestLintCatchesBadCertificates: the check above can fail. Certificates made
// here, each wrong in one way the RFCs forbid, are reported by the lint named.
func TestLintCatchesBadCertificates(t *testing.T) {
	reg := registry(t, appliedSources)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := issuedAt
	good := func() *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(0x7eadbeef), Subject: pkix.Name{CommonName: "bad"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			SubjectKeyId: []byte{1, 2, 3, 4}, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"bad.example.com"},
		}
	}
	// The certificates are issued by a CA, so that they name their authority.
	caTmpl := good()
	caTmpl.IsCA, caTmpl.KeyUsage, caTmpl.ExtKeyUsage, caTmpl.DNSNames = true, x509.KeyUsageCertSign, nil, nil
	caTmpl.SubjectKeyId, caTmpl.Subject = []byte{5, 6, 7, 8}, pkix.Name{CommonName: "issuer", Organization: []string{"Example"}}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	require.Empty(t, findings(t, reg, caDER), "the issuer is fine")
	sign := func(tmpl *x509.Certificate) []byte {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, key)
		require.NoError(t, err)
		return der
	}
	require.Empty(t, findings(t, reg, sign(good())), "the template itself is fine")

	// Go refuses to sign a negative serial; so the serial of a signed
	// certificate is made negative in place (same length, the signature no
	// longer matches, which no lint checks).
	negative := sign(good())
	i := bytes.Index(negative, []byte{0x02, 0x04, 0x7e, 0xad, 0xbe, 0xef})
	require.Positive(t, i)
	negative[i+2] = 0xfe

	cases := []struct {
		name string
		der  []byte
		want string
	}{
		{"negative serial", negative, "e_serial_number_not_positive"},
		{"a leaf that signs certificates", sign(func() *x509.Certificate {
			c := good()
			c.KeyUsage |= x509.KeyUsageCertSign
			return c
		}()), "e_ext_key_usage_cert_sign_without_ca"},
		{"a CA without a subject", sign(func() *x509.Certificate {
			c := good()
			c.IsCA, c.KeyUsage, c.ExtKeyUsage, c.DNSNames, c.Subject = true, x509.KeyUsageCertSign, nil, nil, pkix.Name{}
			return c
		}()), "e_ca_subject_field_empty"},
		{"an RSA client certificate that deciphers", func() []byte {
			c := good()
			c.ExtKeyUsage, c.KeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment
			rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
			require.NoError(t, err)
			der, err := x509.CreateCertificate(rand.Reader, c, ca, &rsaKey.PublicKey, key)
			require.NoError(t, err)
			return der
		}(), "e_key_usage_and_extended_key_usage_inconsistent"},
		{"an empty DNS label", sign(func() *x509.Certificate {
			c := good()
			c.DNSNames = []string{"a..example.com"}
			return c
		}()), "e_rfc_dnsname_empty_label"},
		{"a wildcard in an inner label", sign(func() *x509.Certificate {
			c := good()
			c.DNSNames = []string{"a.*.example.com"}
			return c
		}()), "e_san_wildcard_not_first"},
		{"no subject and no names", sign(func() *x509.Certificate {
			c := good()
			c.Subject, c.DNSNames = pkix.Name{}, nil
			return c
		}()), "e_subject_empty_without_san"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := findings(t, reg, c.der)
			assert.True(t, slices.ContainsFunc(got, func(f string) bool { return strings.HasPrefix(f, c.want+" ") }),
				"%s reported; got %v", c.want, got)
		})
	}
}
