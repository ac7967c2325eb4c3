package sign_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// signNow is the fixed clock of these tests, whole seconds because X.509 times are.
var signNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seeded is a deterministic reader: the same seed gives the same bytes.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]crypto.Signer{}
)

// cachedKey returns the i-th test key of alg, generated once per process:
// RSA-4096 generation costs seconds and many tests only need some key.
func cachedKey(t testing.TB, alg topology.KeyAlgorithm, i int) crypto.Signer {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	id := fmt.Sprintf("%s/%d", alg, i)
	if k, ok := keyCache[id]; ok {
		return k
	}
	k, err := sign.GenerateKey(alg, nil)
	require.NoError(t, err)
	keyCache[id] = k
	return k
}

// runOpenSSL runs the real openssl CLI and returns its combined output.
func runOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	_, err := exec.LookPath("openssl")
	require.NoError(t, err, "these tests need the openssl CLI (make tools installs it)")
	out, err := exec.Command("openssl", args...).CombinedOutput()
	require.NoError(t, err, "openssl %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

func years(n int) time.Duration { return time.Duration(n) * 365 * 24 * time.Hour }

func caSpec(cn string, pathLen *int, validity time.Duration) sign.CertSpec {
	return sign.CertSpec{
		Subject:   topology.Subject{CommonName: cn, Organizations: []string{"gitca"}},
		CA:        true,
		PathLen:   pathLen,
		NotBefore: signNow.Add(-sign.Backdate),
		NotAfter:  signNow.Add(validity),
	}
}

func intPtr(i int) *int { return &i }

// selfSigned makes a root CA with key.
func selfSigned(t *testing.T, key crypto.Signer, spec sign.CertSpec) *x509.Certificate {
	t.Helper()
	c, err := sign.SignCertificate(spec, key.Public(), nil, key, nil)
	require.NoError(t, err)
	return c
}

// rfc5280KeyID computes the method-1 key identifier from the key itself, without
// going through the SubjectPublicKeyInfo encoding the code under test uses.
func rfc5280KeyID(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	var bits []byte
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		require.NoError(t, err)
		bits = b
	case ed25519.PublicKey:
		bits = k
	case *rsa.PublicKey:
		bits = x509.MarshalPKCS1PublicKey(k)
	default:
		t.Fatalf("no key id for %T", pub)
	}
	sum := sha1.Sum(bits)
	return sum[:]
}

var (
	testDNS  = []string{"api.example.com", "localhost"}
	testIPs  = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("2001:db8::1")}
	testURIs = []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/default/sa/api"}}
	// How openssl prints the SANs above, in the order crypto/x509 encodes them.
	testSANText = "DNS:api.example.com, DNS:localhost, IP Address:127.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1, URI:spiffe://cluster.local/ns/default/sa/api"
)

func TestSignChain(t *testing.T) {
	type chainCase struct {
		name                       string
		rootAlg, interAlg, leafAlg topology.KeyAlgorithm
		profile                    topology.Profile
	}
	var cases []chainCase
	for _, alg := range topology.KeyAlgorithms {
		for _, p := range topology.Profiles {
			cases = append(cases, chainCase{fmt.Sprintf("%s/%s", alg, p), alg, alg, alg, p})
		}
	}
	// Algorithms mix freely along a chain: RSA roots often sign ECDSA or Ed25519 tiers.
	cases = append(cases,
		chainCase{"mixed/RSA-root/Ed25519-intermediate/P384-leaf", topology.RSA2048, topology.Ed25519, topology.ECDSAP384, topology.ProfilePeer},
		chainCase{"mixed/Ed25519-root/P256-intermediate/RSA-leaf", topology.Ed25519, topology.ECDSAP256, topology.RSA3072, topology.ProfileServer},
	)

	wantEKU := map[topology.Profile][]x509.ExtKeyUsage{
		topology.ProfileServer: {x509.ExtKeyUsageServerAuth},
		topology.ProfileClient: {x509.ExtKeyUsageClientAuth},
		topology.ProfilePeer:   {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	caUsage := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rootKey := cachedKey(t, tc.rootAlg, 0)
			interKey := cachedKey(t, tc.interAlg, 1)
			leafKey := cachedKey(t, tc.leafAlg, 2)

			root := selfSigned(t, rootKey, caSpec("Root CA", nil, years(10)))
			inter, err := sign.SignCertificate(caSpec("Intermediate CA", intPtr(0), years(5)), interKey.Public(), root, rootKey, nil)
			require.NoError(t, err)
			leafSpec := sign.CertSpec{
				Subject: topology.Subject{
					CommonName: "api", Organizations: []string{"system:masters", "acme"},
					OrganizationalUnit: []string{"platform"}, Countries: []string{"DE"}, Localities: []string{"Berlin"},
				},
				Profile:     tc.profile,
				DNSNames:    testDNS,
				IPAddresses: testIPs,
				URIs:        testURIs,
				NotBefore:   signNow.Add(-sign.Backdate),
				NotAfter:    signNow.Add(years(1)),
			}
			leaf, err := sign.SignCertificate(leafSpec, leafKey.Public(), inter, interKey, nil)
			require.NoError(t, err)

			// Go's view of the fields.
			for _, ca := range []*x509.Certificate{root, inter} {
				assert.True(t, ca.IsCA && ca.BasicConstraintsValid, "CA:TRUE on %s", ca.Subject.CommonName)
				assert.Equal(t, caUsage, ca.KeyUsage)
				assert.Empty(t, ca.ExtKeyUsage)
			}
			assert.Equal(t, -1, root.MaxPathLen)
			assert.Equal(t, 0, inter.MaxPathLen)
			assert.True(t, inter.MaxPathLenZero)
			assert.False(t, leaf.IsCA)
			assert.True(t, leaf.BasicConstraintsValid, "leafs carry an explicit CA:FALSE")
			wantLeafUsage := x509.KeyUsageDigitalSignature
			if strings.HasPrefix(string(tc.leafAlg), "RSA") && tc.profile != topology.ProfileClient {
				wantLeafUsage |= x509.KeyUsageKeyEncipherment
			}
			assert.Equal(t, wantLeafUsage, leaf.KeyUsage)
			assert.Equal(t, wantEKU[tc.profile], leaf.ExtKeyUsage)

			assert.Equal(t, rfc5280KeyID(t, rootKey.Public()), root.SubjectKeyId)
			assert.Equal(t, rfc5280KeyID(t, interKey.Public()), inter.SubjectKeyId)
			assert.Equal(t, rfc5280KeyID(t, leafKey.Public()), leaf.SubjectKeyId)
			assert.Empty(t, root.AuthorityKeyId, "a self-signed root names no authority")
			assert.Equal(t, root.SubjectKeyId, inter.AuthorityKeyId)
			assert.Equal(t, inter.SubjectKeyId, leaf.AuthorityKeyId)

			assert.Equal(t, "api", leaf.Subject.CommonName)
			// crypto/x509 puts all O values in one RDN, a DER SET, which sorts them:
			// organizations (Kubernetes groups) are a set, not a list.
			assert.ElementsMatch(t, []string{"system:masters", "acme"}, leaf.Subject.Organization)
			assert.Equal(t, []string{"platform"}, leaf.Subject.OrganizationalUnit)
			assert.Equal(t, []string{"DE"}, leaf.Subject.Country)
			assert.Equal(t, []string{"Berlin"}, leaf.Subject.Locality)
			assert.Equal(t, root.Subject.String(), inter.Issuer.String())
			assert.Equal(t, inter.Subject.String(), leaf.Issuer.String())
			assert.Equal(t, testDNS, leaf.DNSNames)
			require.Len(t, leaf.IPAddresses, 2)
			assert.True(t, testIPs[0].Equal(leaf.IPAddresses[0]) && testIPs[1].Equal(leaf.IPAddresses[1]))
			require.Len(t, leaf.URIs, 1)
			assert.Equal(t, testURIs[0].String(), leaf.URIs[0].String())
			assert.True(t, sign.KeyMatches(leafKey, leaf.PublicKey))
			assert.Equal(t, leafSpec.NotBefore, leaf.NotBefore.UTC())
			assert.Equal(t, leafSpec.NotAfter, leaf.NotAfter.UTC())
			require.NoError(t, verifyChain(leaf, []*x509.Certificate{inter}, root, signNow))

			// openssl's view of the same certificates.
			dir := t.TempDir()
			rootPath := writeTemp(t, dir, "root.crt", sign.EncodeCertsPEM(root))
			interPath := writeTemp(t, dir, "inter.crt", sign.EncodeCertsPEM(inter))
			leafPath := writeTemp(t, dir, "leaf.crt", sign.EncodeCertsPEM(leaf))

			rootText := runOpenSSL(t, "x509", "-noout", "-text", "-in", rootPath)
			interText := runOpenSSL(t, "x509", "-noout", "-text", "-in", interPath)
			leafText := runOpenSSL(t, "x509", "-noout", "-text", "-in", leafPath)

			for name, txt := range map[string]string{"root": rootText, "intermediate": interText} {
				assert.Contains(t, txt, "X509v3 Basic Constraints: critical", name)
				assert.Contains(t, txt, "Digital Signature, Certificate Sign, CRL Sign", name)
				assert.NotContains(t, txt, "Key Encipherment", name)
				assert.NotContains(t, txt, "Extended Key Usage", name)
				assert.Contains(t, txt, "X509v3 Subject Key Identifier", name)
			}
			assert.Regexp(t, `CA:TRUE\n`, rootText, "root without a path length constraint")
			assert.Contains(t, interText, "CA:TRUE, pathlen:0")
			assert.NotContains(t, rootText, "X509v3 Authority Key Identifier")
			assert.Contains(t, interText, "X509v3 Authority Key Identifier")

			assert.Contains(t, leafText, "CA:FALSE")
			assert.NotContains(t, leafText, "Certificate Sign")
			assert.Contains(t, leafText, "X509v3 Authority Key Identifier")
			assert.Contains(t, leafText, testSANText)
			assert.Contains(t, leafText, "Subject: C = DE, L = Berlin, O = acme + O = system:masters, OU = platform, CN = api")
			serverAuth := strings.Contains(leafText, "TLS Web Server Authentication")
			clientAuth := strings.Contains(leafText, "TLS Web Client Authentication")
			assert.Equal(t, tc.profile != topology.ProfileClient, serverAuth, "serverAuth")
			assert.Equal(t, tc.profile != topology.ProfileServer, clientAuth, "clientAuth")
			assert.Equal(t, strings.HasPrefix(string(tc.leafAlg), "RSA") && serverAuth, strings.Contains(leafText, "Key Encipherment"),
				"keyEncipherment only on RSA leafs that serve TLS")

			verify := runOpenSSL(t, "verify", "-CAfile", rootPath, "-untrusted", interPath, leafPath)
			assert.Contains(t, verify, leafPath+": OK")
		})
	}
}

func TestPathLen(t *testing.T) {
	key := cachedKey(t, topology.ECDSAP256, 0)
	tests := []struct {
		name        string
		pathLen     *int
		wantMax     int
		wantZero    bool
		wantOpenSSL string
	}{
		{"unconstrained", nil, -1, false, "CA:TRUE\n"},
		{"zero", intPtr(0), 0, true, "CA:TRUE, pathlen:0\n"},
		{"two", intPtr(2), 2, false, "CA:TRUE, pathlen:2\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := selfSigned(t, key, caSpec("ca", tc.pathLen, years(1)))
			assert.Equal(t, tc.wantMax, c.MaxPathLen)
			assert.Equal(t, tc.wantZero, c.MaxPathLenZero)
			txt := runOpenSSL(t, "x509", "-noout", "-text", "-in", writeTemp(t, t.TempDir(), "ca.crt", sign.EncodeCertsPEM(c)))
			assert.Contains(t, txt, tc.wantOpenSSL)
		})
	}

	t.Run("path length 0 signs leafs but no CA", func(t *testing.T) {
		ca := selfSigned(t, key, caSpec("ca0", intPtr(0), years(1)))
		sub := cachedKey(t, topology.ECDSAP256, 1)
		_, err := sign.SignCertificate(caSpec("sub", nil, years(1)), sub.Public(), ca, key, nil)
		require.ErrorContains(t, err, "path length 0")
		leaf := caSpec("leaf", nil, years(1))
		leaf.CA, leaf.Profile = false, topology.ProfileServer
		_, err = sign.SignCertificate(leaf, sub.Public(), ca, key, nil)
		require.NoError(t, err)
	})
	t.Run("path length 1 signs a CA", func(t *testing.T) {
		ca := selfSigned(t, key, caSpec("ca1", intPtr(1), years(1)))
		sub := cachedKey(t, topology.ECDSAP256, 1)
		c, err := sign.SignCertificate(caSpec("sub", intPtr(0), years(1)), sub.Public(), ca, key, nil)
		require.NoError(t, err)
		assert.True(t, c.IsCA)
	})
	t.Run("leafs ignore PathLen", func(t *testing.T) {
		spec := caSpec("leaf", intPtr(3), years(1))
		spec.CA, spec.Profile = false, topology.ProfileClient
		c, err := sign.SignCertificate(spec, key.Public(), nil, key, nil)
		require.NoError(t, err)
		assert.False(t, c.IsCA)
		assert.False(t, c.MaxPathLen > 0 || c.MaxPathLenZero)
	})
}

func TestNotAfterClamp(t *testing.T) {
	caKey := cachedKey(t, topology.ECDSAP256, 0)
	leafKey := cachedKey(t, topology.ECDSAP256, 1)
	ca := selfSigned(t, caKey, caSpec("ca", nil, years(1)))

	tests := []struct {
		name      string
		notBefore time.Time
		notAfter  time.Time
		want      time.Time // zero when an error is expected
		wantErr   string
	}{
		{"inside the CA's lifetime is kept", signNow, signNow.Add(30 * 24 * time.Hour), signNow.Add(30 * 24 * time.Hour), ""},
		{"exactly the CA's end is kept", signNow, ca.NotAfter, ca.NotAfter, ""},
		{"beyond the CA is clamped to it", signNow, signNow.Add(years(3)), ca.NotAfter, ""},
		{"CA already expired", ca.NotAfter.Add(time.Hour), ca.NotAfter.Add(years(1)), time.Time{}, "expires at"},
		{"NotAfter before NotBefore", signNow, signNow.Add(-time.Hour), time.Time{}, "is not after NotBefore"},
		{"NotAfter equal to NotBefore", signNow, signNow, time.Time{}, "is not after NotBefore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := sign.CertSpec{Subject: topology.Subject{CommonName: "leaf"}, Profile: topology.ProfileServer,
				NotBefore: tc.notBefore, NotAfter: tc.notAfter}
			c, err := sign.SignCertificate(spec, leafKey.Public(), ca, caKey, nil)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want.UTC(), c.NotAfter.UTC())
			assert.Equal(t, tc.notBefore.UTC(), c.NotBefore.UTC())
		})
	}
}

func TestSerialNumbers(t *testing.T) {
	// Ed25519 signs in microseconds, so a thousand real certificates are cheap.
	key := cachedKey(t, topology.Ed25519, 0)
	spec := caSpec("serials", nil, years(1))
	minSerial := new(big.Int).Lsh(big.NewInt(1), 127)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		c, err := sign.SignCertificate(spec, key.Public(), nil, key, nil)
		require.NoError(t, err)
		s := c.SerialNumber
		require.Equal(t, 1, s.Sign(), "serial %d must be positive", i)
		require.GreaterOrEqual(t, s.Cmp(minSerial), 0, "serial %d has fewer than 128 bits", i)
		require.LessOrEqual(t, s.BitLen(), 159, "serial %d must fit 20 DER octets", i)
		require.False(t, seen[s.String()], "serial %d repeats", i)
		seen[s.String()] = true
	}

	t.Run("an all-zero reader still gives a positive serial", func(t *testing.T) {
		c, err := sign.SignCertificate(spec, key.Public(), nil, key, zeroReader{})
		require.NoError(t, err)
		assert.Equal(t, new(big.Int).Lsh(big.NewInt(1), 158), c.SerialNumber)
	})
	t.Run("a failing reader is an error", func(t *testing.T) {
		_, err := sign.SignCertificate(spec, key.Public(), nil, key, bytes.NewReader([]byte{1, 2, 3}))
		require.ErrorContains(t, err, "serial number")
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestSignDeterminism pins down what the doc comments promise about r.
func TestSignDeterminism(t *testing.T) {
	spec := caSpec("det", nil, years(1))
	for _, alg := range []topology.KeyAlgorithm{topology.Ed25519, topology.RSA2048} {
		t.Run(string(alg)+" certificates are byte-identical for the same reader", func(t *testing.T) {
			key := cachedKey(t, alg, 0)
			a, err := sign.SignCertificate(spec, key.Public(), nil, key, seeded(7))
			require.NoError(t, err)
			b, err := sign.SignCertificate(spec, key.Public(), nil, key, seeded(7))
			require.NoError(t, err)
			assert.Equal(t, a.Raw, b.Raw)
			c, err := sign.SignCertificate(spec, key.Public(), nil, key, seeded(8))
			require.NoError(t, err)
			assert.NotEqual(t, a.SerialNumber, c.SerialNumber)
		})
	}
	t.Run("ECDSA serials follow the reader, signatures the global source", func(t *testing.T) {
		key := cachedKey(t, topology.ECDSAP256, 0)
		a, err := sign.SignCertificate(spec, key.Public(), nil, key, seeded(7))
		require.NoError(t, err)
		b, err := sign.SignCertificate(spec, key.Public(), nil, key, seeded(7))
		require.NoError(t, err)
		assert.Equal(t, a.SerialNumber, b.SerialNumber)
		assert.NotEqual(t, a.Signature, b.Signature, "ECDSA signatures are randomized")

		cryptotest.SetGlobalRandom(t, 42)
		a, err = sign.SignCertificate(spec, key.Public(), nil, key, seeded(7))
		require.NoError(t, err)
		cryptotest.SetGlobalRandom(t, 42)
		b, err = sign.SignCertificate(spec, key.Public(), nil, key, seeded(7))
		require.NoError(t, err)
		assert.Equal(t, a.Raw, b.Raw)
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestSignReadsOnlyTheSerialFromR: the lead's run-wide reader advances by the same
// amount per certificate whatever the key types, so adding an RSA certificate to a
// topology does not shift the serials of the others.
func TestSignReadsOnlyTheSerialFromR(t *testing.T) {
	for _, alg := range []topology.KeyAlgorithm{topology.ECDSAP256, topology.Ed25519, topology.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			key := cachedKey(t, alg, 0)
			ca := selfSigned(t, key, caSpec("ca", nil, years(1)))
			leaf := caSpec("leaf", nil, years(1))
			leaf.CA, leaf.Profile = false, topology.ProfilePeer
			cr := &countingReader{r: seeded(3)}
			_, err := sign.SignCertificate(leaf, cachedKey(t, alg, 1).Public(), ca, key, cr)
			require.NoError(t, err)
			assert.Equal(t, 20, cr.n)
		})
	}
}

// TestSignConcurrently: Apply signs in parallel with one issuer key (run with -race).
func TestSignConcurrently(t *testing.T) {
	caKey := cachedKey(t, topology.ECDSAP256, 0)
	ca := selfSigned(t, caKey, caSpec("ca", nil, years(1)))
	spec := sign.CertSpec{Subject: topology.Subject{CommonName: "leaf"}, Profile: topology.ProfileServer,
		NotBefore: signNow, NotAfter: signNow.Add(time.Hour)}
	leafKey := cachedKey(t, topology.Ed25519, 0)
	const n = 8
	serials := make([]*big.Int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := sign.SignCertificate(spec, leafKey.Public(), ca, caKey, nil)
			if assert.NoError(t, err) {
				serials[i] = c.SerialNumber
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, s := range serials {
		require.NotNil(t, s)
		assert.False(t, seen[s.String()], "duplicate serial")
		seen[s.String()] = true
	}
}

func TestSignCertificateErrors(t *testing.T) {
	caKey := cachedKey(t, topology.ECDSAP256, 0)
	otherKey := cachedKey(t, topology.ECDSAP256, 1)
	ca := selfSigned(t, caKey, caSpec("ca", nil, years(1)))
	leafSpec := sign.CertSpec{Subject: topology.Subject{CommonName: "leaf"}, Profile: topology.ProfileServer,
		NotBefore: signNow, NotAfter: signNow.Add(time.Hour)}
	notCA, err := sign.SignCertificate(leafSpec, otherKey.Public(), ca, caKey, nil)
	require.NoError(t, err)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), crand.Reader)
	require.NoError(t, err)

	with := func(f func(*sign.CertSpec)) sign.CertSpec { s := leafSpec; f(&s); return s }
	tests := []struct {
		name      string
		spec      sign.CertSpec
		pub       crypto.PublicKey
		issuer    *x509.Certificate
		issuerKey crypto.Signer
		wantErr   string
	}{
		{"self-signed with a foreign key", leafSpec, otherKey.Public(), nil, caKey, "not the private half"},
		{"issuer is not a CA", leafSpec, caKey.Public(), notCA, otherKey, "is not a CA"},
		{"issuer key does not match issuer", leafSpec, otherKey.Public(), ca, otherKey, "does not match the certificate of issuer"},
		{"no profile", with(func(s *sign.CertSpec) { s.Profile = "" }), otherKey.Public(), ca, caKey, "unknown certificate profile"},
		{"unknown profile", with(func(s *sign.CertSpec) { s.Profile = "codeSigning" }), otherKey.Public(), ca, caKey, "unknown certificate profile"},
		{"negative path length", with(func(s *sign.CertSpec) { s.CA, s.PathLen = true, intPtr(-1) }), otherKey.Public(), ca, caKey, "negative path length"},
		{"no public key", leafSpec, nil, ca, caKey, "no public key"},
		{"no issuer key", leafSpec, otherKey.Public(), ca, nil, "no issuer key"},
		{"unsupported subject key", leafSpec, &p521.PublicKey, ca, caKey, "P-521"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := sign.SignCertificate(tc.spec, tc.pub, tc.issuer, tc.issuerKey, nil)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, c)
		})
	}
}

func TestVerifyChain(t *testing.T) {
	rootKey := cachedKey(t, topology.ECDSAP256, 0)
	interKey := cachedKey(t, topology.ECDSAP256, 1)
	leafKey := cachedKey(t, topology.ECDSAP256, 2)
	root := selfSigned(t, rootKey, caSpec("root", nil, years(10)))
	otherRoot := selfSigned(t, rootKey, caSpec("root", nil, years(10))) // same name and key, new serial
	strangerRoot := selfSigned(t, leafKey, caSpec("stranger", nil, years(10)))
	inter, err := sign.SignCertificate(caSpec("inter", nil, years(5)), interKey.Public(), root, rootKey, nil)
	require.NoError(t, err)
	spec := sign.CertSpec{Subject: topology.Subject{CommonName: "client"}, Profile: topology.ProfileClient,
		NotBefore: signNow.Add(-sign.Backdate), NotAfter: signNow.Add(years(1))}
	leaf, err := sign.SignCertificate(spec, leafKey.Public(), inter, interKey, nil)
	require.NoError(t, err)

	tests := []struct {
		name    string
		leaf    *x509.Certificate
		inters  []*x509.Certificate
		root    *x509.Certificate
		now     time.Time
		wantErr bool
	}{
		{"client leaf through intermediate", leaf, []*x509.Certificate{inter}, root, signNow, false},
		{"re-issued root with the same key still verifies", leaf, []*x509.Certificate{inter}, otherRoot, signNow, false},
		{"intermediate alone", inter, nil, root, signNow, false},
		{"root itself", root, nil, root, signNow, false},
		{"missing intermediate", leaf, nil, root, signNow, true},
		{"foreign root", leaf, []*x509.Certificate{inter}, strangerRoot, signNow, true},
		{"after the leaf expired", leaf, []*x509.Certificate{inter}, root, signNow.Add(years(2)), true},
		{"before NotBefore", leaf, []*x509.Certificate{inter}, root, signNow.Add(-time.Hour), true},
		{"no root", leaf, []*x509.Certificate{inter}, nil, signNow, true},
		{"no leaf", nil, nil, root, signNow, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyChain(tc.leaf, tc.inters, tc.root, tc.now)
			if tc.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// verifyChain checks that leaf chains to root through intermediates at time now,
// accepting any extended key usage (CAs and client-only leafs verify alike).
func verifyChain(leaf *x509.Certificate, intermediates []*x509.Certificate, root *x509.Certificate, now time.Time) error {
	if leaf == nil || root == nil {
		return errors.New("verifying a chain needs a leaf and a root")
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		if c != nil {
			inter.AddCert(c)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}
