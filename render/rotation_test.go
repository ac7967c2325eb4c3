package render

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
)

const kubeadmExample = "../examples/kubeadm"

// value is a record's plain value (certificates, public keys) as stored.
func value(t *testing.T, e *env, path, key string) string {
	t.Helper()
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	o := st.At(path)
	require.NotNil(t, o, "no record at %s", path)
	return o.PlainValues()[key]
}

// certsOf parses a record's PEM value.
func certsOf(t *testing.T, e *env, path, key string) []*x509.Certificate {
	t.Helper()
	certs, err := sign.ParseCertsPEM([]byte(value(t, e, path, key)))
	require.NoError(t, err, "%s %s", path, key)
	return certs
}

func cns(certs []*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// rotationOf is the rotation a plan reports on an object.
func rotationOf(t *testing.T, p *plan.Plan, id string) *plan.RotationStatus {
	t.Helper()
	a := p.Action(id)
	require.NotNil(t, a, id)
	require.NotNil(t, a.Rotation, "%s has no rotation status", id)
	return a.Rotation
}

func declareRotation(t *testing.T, e *env, entries string) {
	t.Helper()
	e.edit("kubeadm.yaml", "  type: kubeadm\n", "  type: kubeadm\n  rotations:\n"+entries)
}

const (
	kubeadmCA       = "ca/demo-ca.yaml"
	kubeadmNext     = "ca/demo-ca@next.yaml"
	kubeadmPrevious = "ca/demo-ca@previous.yaml"
	kubeadmRetired  = "ca/retired/demo-ca@g1.yaml"
	kubeadmCopy     = "clusters/demo/kube-system/secret-demo-ca.yaml"
	kubeadmSecrets  = "clusters/demo/kube-system/"
)

// issuedByClusterCA are the records of everything demo-ca issues, plus its
// delivered copy: what a switch rewrites in the overlay.
func issuedByClusterCA() []string {
	out := []string{"secret-demo-admin-conf.yaml", "secret-demo-apiserver-kubelet-client.yaml", "secret-demo-apiserver.yaml", "secret-demo-ca.yaml"}
	for _, n := range []string{"cp-0", "cp-1", "cp-2"} {
		out = append(out, "secret-demo-controller-manager-conf-"+n+".yaml", "secret-demo-kubelet-conf-"+n+".yaml",
			"secret-demo-kubelet-serving-"+n+".yaml", "secret-demo-scheduler-conf-"+n+".yaml")
	}
	out = append(out, "secret-demo-kube-proxy-conf.yaml", "secret-demo-super-admin-conf.yaml")
	for i := range out {
		out[i] = kubeadmSecrets + out[i]
	}
	return out
}

func sortedPaths(paths ...[]string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, p...)
	}
	slices.Sort(out)
	return out
}

// TestCARotationPhases walks the kubeadm cluster CA through Add, Switch and
// Drop, one run each, with no-op runs before each gate opens, and checks
// which files each run changes and what every trust file holds.
func TestCARotationPhases(t *testing.T) {
	e := newEnv(t, kubeadmExample)
	e.run(t0, &e.ids)
	oldLeaf := certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver.yaml", "tls.crt")[0]
	declareRotation(t, e, "    demo-ca:\n      generation: 2\n")

	// Add.
	t1 := t0.Add(time.Hour)
	before := e.snapshot()
	res := e.run(t1, &e.ids)
	st := rotationOf(t, res.Plan, "CertificateAuthority/demo-ca")
	assert.Equal(t, plan.TransitionAdd, st.Transition)
	assert.Equal(t, []int{1, 2}, st.Trusted)
	require.NotNil(t, st.NextAt)
	assert.Equal(t, t1.Add(24*time.Hour), *st.NextAt, "the switch is due one soak later")
	assert.Equal(t, plan.ActionCreate, res.Plan.Action("CertificateAuthority/demo-ca@next").Action)
	assert.Contains(t, strings.Join(res.Plan.Action("CertificateAuthority/demo-ca").Notes, "\n"), "next, from 2026-01-02T01:00:00Z")
	trustFiles := issuedByClusterCA() // every one holds ca.crt or CA data of demo-ca
	assert.Equal(t, sortedPaths(trustFiles, []string{kubeadmCA, kubeadmNext}), changedFiles(before, e.snapshot()))
	assert.Equal(t, []string{"kubernetes", "kubernetes-g2"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver.yaml", "ca.crt")))
	assert.Equal(t, []string{"kubernetes", "kubernetes-g2"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-admin-conf.yaml", "ca.crt")), "kubeconfig CA data")
	assert.Equal(t, []string{"kubernetes"}, cns(certsOf(t, e, kubeadmCopy, "tls.crt")), "the old generation still signs")
	assert.Equal(t, []string{"kubernetes", "kubernetes-g2"}, cns(certsOf(t, e, kubeadmCopy, "ca.crt")))
	assert.Equal(t, "add", annotation(t, e, kubeadmCA, plan.AnnotationRotationPhase))
	// A root has no parent to leak into the trust files; the etcd and front-proxy trust is untouched.
	assert.Equal(t, []string{"etcd-ca"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver-etcd-client.yaml", "ca.crt")))

	// Mid-soak: nothing.
	before = e.snapshot()
	for _, at := range []time.Duration{time.Hour, 23*time.Hour + 59*time.Minute} {
		res = e.run(t1.Add(at), nil)
		assert.False(t, res.Plan.Changes(), "mid-soak at +%s: %v", at, res.Tree.Paths())
	}
	assert.Empty(t, changedFiles(before, e.snapshot()))

	// Switch.
	t2 := t1.Add(24 * time.Hour)
	res = e.run(t2, &e.ids)
	assert.Equal(t, plan.TransitionSwitch, rotationOf(t, res.Plan, "CertificateAuthority/demo-ca").Transition)
	assert.Equal(t, sortedPaths(trustFiles, []string{kubeadmCA, kubeadmNext, kubeadmPrevious}), changedFiles(before, e.snapshot()))
	assert.Equal(t, []string{"kubernetes-g2"}, cns(certsOf(t, e, kubeadmCopy, "tls.crt")), "kube-controller-manager's signing pair holds the new generation only")
	assert.Equal(t, []string{"kubernetes", "kubernetes-g2"}, cns(certsOf(t, e, kubeadmCopy, "ca.crt")))
	newCA := certsOf(t, e, kubeadmCA, "tls.crt")[0]
	assert.Equal(t, "kubernetes-g2", newCA.Subject.CommonName)
	for _, p := range trustFiles {
		if p == kubeadmCopy {
			continue
		}
		assert.Equal(t, newCA.SubjectKeyId, certsOf(t, e, p, "tls.crt")[0].AuthorityKeyId, "%s is signed by generation 2", p)
	}
	assert.Equal(t, "1", annotation(t, e, kubeadmPrevious, plan.AnnotationGeneration))

	before = e.snapshot()
	res = e.run(t2.Add(24*time.Hour-time.Second), nil)
	assert.False(t, res.Plan.Changes())

	// Drop.
	res = e.run(t2.Add(24*time.Hour), &e.ids)
	assert.Equal(t, plan.TransitionDrop, rotationOf(t, res.Plan, "CertificateAuthority/demo-ca").Transition)
	assert.Equal(t, sortedPaths(trustFiles, []string{kubeadmCA, kubeadmPrevious, kubeadmRetired}), changedFiles(before, e.snapshot()))
	for _, p := range trustFiles {
		assert.Equal(t, []string{"kubernetes-g2"}, cns(certsOf(t, e, p, "ca.crt")), p)
	}
	assert.Equal(t, "retired", annotation(t, e, kubeadmRetired, plan.AnnotationRotationRole))
	assert.NotEmpty(t, annotation(t, e, kubeadmRetired, plan.AnnotationRetiredAt))
	pool := x509.NewCertPool()
	pool.AddCert(newCA)
	_, err := oldLeaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t2})
	assert.Error(t, err, "a certificate of the old generation is no longer trusted")

	res = e.run(t2.Add(48*time.Hour), nil)
	assert.False(t, res.Plan.Changes())
	assert.Equal(t, plan.PhaseSteady, rotationOf(t, res.Plan, "CertificateAuthority/demo-ca").Phase)
}

func annotation(t *testing.T, e *env, path, key string) string {
	t.Helper()
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	o := st.At(path)
	require.NotNil(t, o, path)
	return o.Annotations[key]
}

// TestCARotationRollback: setting the generation back is a rollback, from
// Add (the new generation, which never signed, leaves at once) and from
// Switch (the old generation signs again and the new one is dropped one
// soak later). Neither trips the destruction guard.
func TestCARotationRollback(t *testing.T) {
	t.Run("from add", func(t *testing.T) {
		e := newEnv(t, kubeadmExample)
		e.run(t0, &e.ids)
		declareRotation(t, e, "    demo-ca:\n      generation: 2\n")
		e.run(t0.Add(time.Hour), &e.ids)
		e.edit("kubeadm.yaml", "generation: 2", "generation: 1")
		res := e.run(t0.Add(2*time.Hour), &e.ids)
		assert.Equal(t, plan.TransitionRollback, rotationOf(t, res.Plan, "CertificateAuthority/demo-ca").Transition)
		assert.Equal(t, plan.ActionDelete, res.Plan.Action("CertificateAuthority/demo-ca@next").Action)
		assert.NoFileExists(t, filepath.Join(e.state, kubeadmNext))
		assert.Equal(t, []string{"kubernetes"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver.yaml", "ca.crt")))
		assert.Empty(t, annotation(t, e, kubeadmCA, plan.AnnotationRotationPhase))
		assert.False(t, e.run(t0.Add(3*time.Hour), nil).Plan.Changes())
	})
	t.Run("from switch", func(t *testing.T) {
		e := newEnv(t, kubeadmExample)
		e.run(t0, &e.ids)
		declareRotation(t, e, "    demo-ca:\n      generation: 2\n      soak: 1h\n")
		e.run(t0.Add(time.Hour), &e.ids)
		e.run(t0.Add(2*time.Hour), &e.ids) // switch
		require.Equal(t, "kubernetes-g2", certsOf(t, e, kubeadmCA, "tls.crt")[0].Subject.CommonName)
		e.edit("kubeadm.yaml", "generation: 2", "generation: 1")
		res := e.run(t0.Add(2*time.Hour+time.Minute), &e.ids)
		assert.Equal(t, plan.TransitionRollback, rotationOf(t, res.Plan, "CertificateAuthority/demo-ca").Transition)
		assert.Equal(t, plan.ActionReissue, res.Plan.Action("Certificate/demo-apiserver").Action)
		old := certsOf(t, e, kubeadmCA, "tls.crt")[0]
		assert.Equal(t, "kubernetes", old.Subject.CommonName, "generation 1 signs again")
		assert.Equal(t, "2", annotation(t, e, kubeadmPrevious, plan.AnnotationGeneration))
		assert.Equal(t, old.SubjectKeyId, certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver.yaml", "tls.crt")[0].AuthorityKeyId)
		assert.Equal(t, []string{"kubernetes", "kubernetes-g2"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver.yaml", "ca.crt")))
		res = e.run(t0.Add(3*time.Hour+time.Minute), &e.ids)
		assert.Equal(t, plan.TransitionDrop, rotationOf(t, res.Plan, "CertificateAuthority/demo-ca").Transition)
		assert.FileExists(t, filepath.Join(e.state, "ca/retired/demo-ca@g2.yaml"))
		assert.Equal(t, []string{"kubernetes"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-apiserver.yaml", "ca.crt")))
	})
}

// TestCARotationRetireDelete: with retire: delete the old generation's key
// leaves the state at Drop, which the destruction guard lets through
// because the topology asked for it.
func TestCARotationRetireDelete(t *testing.T) {
	e := newEnv(t, kubeadmExample)
	e.run(t0, &e.ids)
	declareRotation(t, e, "    demo-front-proxy-ca:\n      generation: 2\n      soak: 1h\n      retire: delete\n")
	for i := 1; i <= 3; i++ {
		e.run(t0.Add(time.Duration(i)*time.Hour), &e.ids)
	}
	ents, err := os.ReadDir(filepath.Join(e.state, "ca"))
	require.NoError(t, err)
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	assert.Equal(t, []string{"demo-ca.yaml", "demo-etcd-ca.yaml", "demo-front-proxy-ca.yaml"}, names)
	assert.Equal(t, []string{"front-proxy-ca-g2"}, cns(certsOf(t, e, kubeadmSecrets+"secret-demo-front-proxy-client.yaml", "ca.crt")))
}

// TestCARotationTrustFilesHoldIssuingCAsOnly rotates an intermediate that
// client-CA bundles (one inheriting the other) and a kubeconfig's CA data
// name: its new generation enters them, its parent never does.
func TestCARotationTrustFilesHoldIssuingCAsOnly(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, "bundles.yaml"), []byte(`apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: clients
spec:
  sources:
    - ca: issuing
  secret:
    cluster: prod
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: all-clients
spec:
  sources:
    - bundle: clients
    - ca: other
  configMap:
    cluster: prod
---
apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: dev
spec:
  issuer: other
  username: dev
  target:
    server: https://api.prod.example.com:6443
    ca: issuing
  validity: 720h
  secret:
    cluster: prod
`), 0o644))
	e.run(t0, &e.ids)
	e.edit("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  rotation:\n    generation: 2\n")
	res := e.run(t0.Add(time.Hour), &e.ids)
	assert.Equal(t, plan.TransitionAdd, rotationOf(t, res.Plan, "CertificateAuthority/issuing").Transition)
	clients := bundlePEM(t, e.state, "clusters/prod/pki/secret-clients.yaml")
	assert.Equal(t, []string{"Example Issuing CA", "Example Issuing CA-g2"}, cns(clients))
	assert.Equal(t, []string{"Example Issuing CA", "Example Issuing CA-g2", "other"}, cns(bundlePEM(t, e.state, "clusters/prod/pki/configmap-all-clients.yaml")))
	assert.Equal(t, []string{"Example Issuing CA", "Example Issuing CA-g2"}, cns(certsOf(t, e, "clusters/prod/pki/secret-dev.yaml", "ca.crt")))
	// The new generation chains to the same root, which stays out of every client-CA file.
	next := certsOf(t, e, "ca/issuing@next.yaml", "tls.crt")[0]
	root := certsOf(t, e, "ca/root.yaml", "tls.crt")[0]
	assert.Equal(t, root.SubjectKeyId, next.AuthorityKeyId)
	require.NotNil(t, next.MaxPathLen)
	assert.Equal(t, 0, next.MaxPathLen, "pathLen as declared")
	// The trust changes come first in the plan.
	var trustPaths []string
	for _, f := range res.Plan.TrustFiles() {
		trustPaths = append(trustPaths, f.Path)
	}
	assert.Subset(t, trustPaths, []string{"clusters/prod/pki/secret-clients.yaml", "clusters/prod/pki/configmap-all-clients.yaml", "clusters/prod/pki/secret-dev.yaml"})
	// The leaves it issues trust the root: their ca.crt does not change.
	assert.Equal(t, plan.ActionKeep, res.Plan.Action("Certificate/web").Action, "%v", res.Plan.Action("Certificate/web").Reasons)
}

// TestCARotationDeclaredOnANewCA makes the CA at the declared generation
// directly: nothing trusts it yet, so there is nothing to stage.
func TestCARotationDeclaredOnANewCA(t *testing.T) {
	e := newEnv(t, kubeadmExample)
	declareRotation(t, e, "    demo-etcd-ca:\n      generation: 3\n")
	res := e.run(t0, &e.ids)
	assert.Nil(t, res.Plan.Action("CertificateAuthority/demo-etcd-ca").Rotation)
	assert.Equal(t, "etcd-ca-g3", certsOf(t, e, "ca/demo-etcd-ca.yaml", "tls.crt")[0].Subject.CommonName)
	assert.Equal(t, "3", annotation(t, e, "ca/demo-etcd-ca.yaml", plan.AnnotationGeneration))
	assert.False(t, e.run(t0.Add(time.Hour), nil).Plan.Changes())
}

// TestCARotationBackwardsIsRefused: a generation below the one that signs
// (after Drop) points at its declaration.
func TestCARotationBackwardsIsRefused(t *testing.T) {
	e := newEnv(t, kubeadmExample)
	declareRotation(t, e, "    demo-ca:\n      generation: 2\n")
	e.run(t0, &e.ids)
	e.edit("kubeadm.yaml", "generation: 2", "generation: 1")
	_, err := e.tryRun(t0.Add(time.Hour), &e.ids)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kubeadm.yaml:")
	assert.Contains(t, err.Error(), "spec.rotations.demo-ca.generation")
	assert.Contains(t, err.Error(), "rotate forward with generation 3")
}

// TestKeyPairRotation walks the service-account key through its phases: the
// verify list holds both public keys from Add until Drop, the signing key
// changes at Switch, and the JWK Set follows with kube-apiserver's key ids.
func TestKeyPairRotation(t *testing.T) {
	e := newEnv(t, kubeadmExample)
	e.run(t0, &e.ids)
	const sa = "clusters/demo/kube-system/secret-demo-sa.yaml"
	oldPub := value(t, e, sa, "tls.pub")
	declareRotation(t, e, "    demo-sa:\n      generation: 2\n      soak: 1h\n      tokenLifetime: 3h\n")

	before := e.snapshot()
	res := e.run(t0.Add(time.Hour), &e.ids)
	assert.Equal(t, plan.TransitionAdd, rotationOf(t, res.Plan, "KeyPair/demo-sa").Transition)
	assert.Equal(t, []string{sa}, changedFiles(before, e.snapshot()), "a key pair rotates in its own record")
	keys := verifyKeys(t, value(t, e, sa, plan.KeyVerifyList))
	require.Len(t, keys, 2)
	assert.Equal(t, oldPub, value(t, e, sa, "tls.pub"), "the old key still signs")
	assertJWKS(t, value(t, e, sa, plan.KeyJWKS), keys)
	signing, other := openKeys(t, e, sa)
	assert.True(t, sign.KeyMatches(signing["tls.key"], keys[0]))
	assert.True(t, sign.KeyMatches(other[plan.KeyNext], keys[1]))

	assert.False(t, e.run(t0.Add(90*time.Minute), nil).Plan.Changes())
	res = e.run(t0.Add(2*time.Hour), &e.ids)
	assert.Equal(t, plan.TransitionSwitch, rotationOf(t, res.Plan, "KeyPair/demo-sa").Transition)
	signing, other = openKeys(t, e, sa)
	assert.True(t, sign.KeyMatches(signing["tls.key"], keys[1]), "the new key signs")
	assert.True(t, sign.KeyMatches(other[plan.KeyPrevious], keys[0]))
	assert.Len(t, verifyKeys(t, value(t, e, sa, plan.KeyVerifyList)), 2)

	// The drop waits for the longest token lifetime, not only the soak.
	assert.False(t, e.run(t0.Add(4*time.Hour), nil).Plan.Changes())
	res = e.run(t0.Add(5*time.Hour), &e.ids)
	assert.Equal(t, plan.TransitionDrop, rotationOf(t, res.Plan, "KeyPair/demo-sa").Transition)
	left := verifyKeys(t, value(t, e, sa, plan.KeyVerifyList))
	require.Len(t, left, 1)
	assert.True(t, sign.KeyMatches(signing["tls.key"], left[0]))
	assertJWKS(t, value(t, e, sa, plan.KeyJWKS), left)
	_, other = openKeys(t, e, sa)
	assert.True(t, sign.KeyMatches(other[plan.KeyRetired], keys[0]), "retire: keep holds the old key, encrypted")
	assert.Empty(t, other[plan.KeyPrevious])
}

func verifyKeys(t *testing.T, pemKeys string) []crypto.PublicKey {
	t.Helper()
	var out []crypto.PublicKey
	rest := []byte(pemKeys)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		require.NoError(t, err)
		out = append(out, k)
	}
}

func assertJWKS(t *testing.T, doc string, keys []crypto.PublicKey) {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid, Kty, Alg, Use string
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(doc), &set))
	require.Len(t, set.Keys, len(keys))
	for i, k := range keys {
		kid, err := apply.KeyID(k)
		require.NoError(t, err)
		assert.Equal(t, kid, set.Keys[i].Kid)
		assert.Equal(t, "sig", set.Keys[i].Use)
		assert.Equal(t, "ES256", set.Keys[i].Alg)
	}
}

// openKeys decrypts a key pair's record: tls.key, and the other keys it holds.
func openKeys(t *testing.T, e *env, path string) (signing, other map[string]crypto.Signer) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.state, path))
	require.NoError(t, err)
	op, err := secrets.OpenSealed(raw, e.ids)
	require.NoError(t, err)
	signing, other = map[string]crypto.Signer{}, map[string]crypto.Signer{}
	for k, v := range op.StringData() {
		if !strings.HasSuffix(k, ".key") {
			continue
		}
		key, err := sign.ParsePrivateKeyPEM([]byte(v))
		require.NoError(t, err)
		if k == "tls.key" {
			signing[k] = key
		} else {
			other[k] = key
		}
	}
	return signing, other
}
