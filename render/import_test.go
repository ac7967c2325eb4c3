package render

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// importFixture writes an imported-CA topology: ca.crt, and ca.key.sops.yaml
// sealed to the env's recipient, then a leaf signed by the imported CA.
func importFixture(t *testing.T, e *env, cert *x509.Certificate, key crypto.Signer, withKey bool) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, "ca.crt"), sign.EncodeCertsPEM(cert), 0o644))
	keyLine := ""
	if withKey {
		pemKey, err := sign.EncodePrivateKeyPEM(key)
		require.NoError(t, err)
		plain := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: imported-ca-key\nstringData:\n  tls.key: |\n%s", indent(string(pemKey)))
		sealed, err := secrets.Seal([]byte(plain), []string{e.recipient}, t0)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(e.topo, "ca.key.sops.yaml"), sealed, 0o644))
		keyLine = "\n    key: ca.key.sops.yaml"
	}
	doc := `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata: {name: c}
spec:
  clusters: [{name: prod}]
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata: {name: corp-root}
spec:
  import:
    certificate: ca.crt` + keyLine + `
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata: {name: web}
spec:
  issuer: corp-root
  profile: server
  dnsNames: [web.example.com]
  validity: 720h
  secret: {cluster: prod}
`
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, "topology.yaml"), []byte(doc), 0o644))
}

// indent makes a PEM block a YAML block scalar under stringData.
func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}

func newCA(t *testing.T, cn string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := sign.GenerateKey(topology.ECDSAP256, nil)
	require.NoError(t, err)
	if parentKey == nil {
		parentKey = key
	}
	c, err := sign.SignCertificate(sign.CertSpec{Subject: topology.Subject{CommonName: cn}, CA: true,
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(87600 * time.Hour)}, key.Public(), parent, parentKey, rand.Reader)
	require.NoError(t, err)
	return c, key
}

func TestImportedRootCA(t *testing.T) {
	root, rootKey := newCA(t, "Corp Root", nil, nil)
	inter, interKey := newCA(t, "Corp Intermediate", root, rootKey)
	leafKey, err := sign.GenerateKey(topology.ECDSAP256, nil)
	require.NoError(t, err)
	leaf, err := sign.SignCertificate(sign.CertSpec{Subject: topology.Subject{CommonName: "not a CA"}, Profile: topology.ProfileServer,
		NotBefore: t0, NotAfter: t0.Add(time.Hour)}, leafKey.Public(), root, rootKey, rand.Reader)
	require.NoError(t, err)
	_, otherKey := newCA(t, "Other", nil, nil)

	t.Run("a self-signed root with its key signs the leafs below it", func(t *testing.T) {
		e := newEnv(t, t.TempDir())
		importFixture(t, e, root, rootKey, true)
		res := e.run(t0, &e.ids)
		assert.Equal(t, plan.ActionCreate, res.Plan.Action("CertificateAuthority/corp-root").Action)
		st, err := plan.ReadState(e.state)
		require.NoError(t, err)
		assert.Equal(t, root.Raw, st.Primary["CertificateAuthority/corp-root"].Cert().Raw, "ca/ holds the imported certificate")
		require.NoError(t, st.Primary["Certificate/web"].Cert().CheckSignatureFrom(root))
		// The next run keeps it and needs no identity.
		again := e.run(t0.Add(time.Hour), nil)
		assert.False(t, again.Plan.Changes())
	})
	for _, tc := range []struct {
		name    string
		cert    *x509.Certificate
		key     crypto.Signer
		withKey bool
		want    string
	}{
		{"an intermediate is refused", inter, interKey, true, "not self-signed; only a root CA can be imported"},
		{"a leaf is refused", leaf, leafKey, true, "not a CA certificate"},
		{"a key that does not match is refused", root, otherKey, true, "does not match the public key of ca.crt"},
		{"an offline root cannot sign", root, nil, false, "offline CA (imported without a key) and cannot sign here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, t.TempDir())
			importFixture(t, e, tc.cert, tc.key, tc.withKey)
			_, err := e.tryRun(t0, &e.ids)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NoDirExists(t, e.state, "nothing is written")
		})
	}
}
