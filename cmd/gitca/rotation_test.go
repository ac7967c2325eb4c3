package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// changedIn lists the files a commit of a bare repository changes, sorted.
func changedIn(t testing.TB, bare, rev string) []string {
	t.Helper()
	out := git(t, bare, "diff-tree", "--no-commit-id", "--name-only", "-r", rev)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// TestRotationWalkThrough is the operator's view of a CA rotation: a
// render, `gitca rotate ca`, then one commit per phase (Add, Switch, Drop),
// no commit while a soak runs, and a plan that says before each phase what
// it will do and from when.
func TestRotationWalkThrough(t *testing.T) {
	topo := newTopology(t, copyDir(t, filepath.Join("..", "..", "render", "testdata", "basic")))
	state := newBare(t, "state")
	e := newEnv(t)
	cache := t.TempDir()
	commits := func() string { return git(t, state, "rev-list", "--count", "main") }

	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
	require.Equal(t, "1", commits())

	// The declaration: one line group in the file that declares the CA.
	before, err := os.ReadFile(filepath.Join(topo.work, "cas.yaml"))
	require.NoError(t, err)
	out := e.mustRun(t, "rotate", "ca", "root", "--topology", topo.work, "--state", checkout(t, state, "main"), "--soak", "12h")
	assert.Contains(t, out.stdout, "cas.yaml: spec.rotation.generation: 2 (was 1)")
	after, err := os.ReadFile(filepath.Join(topo.work, "cas.yaml"))
	require.NoError(t, err)
	assert.Equal(t, strings.Replace(string(before), "  name: root\nspec:\n", "  name: root\nspec:\n  rotation:\n    generation: 2\n    soak: 12h\n", 1), string(after))
	topo.push(t, "rotate root", nil)

	t1 := t0.Add(time.Hour)
	plan := e.mustRun(t, "plan", "--topology", topo.work, "--state", checkout(t, state, "main"), "--now", rfc3339(t1))
	assert.Contains(t, plan.stdout, "CertificateAuthority/root@next")
	assert.Contains(t, plan.stdout, "rotation-add")
	assert.Contains(t, plan.stdout, "next, from "+rfc3339(t1.Add(12*time.Hour)))

	records := []string{"ca/issuing.yaml", "ca/other.yaml", "ca/root.yaml", "clusters/prod/pki/configmap-roots.yaml",
		"clusters/prod/pki/secret-client.yaml", "clusters/prod/pki/secret-db-peer.yaml", "clusters/prod/pki/secret-issuing-ca.yaml",
		"clusters/prod/pki/secret-ops.yaml", "clusters/prod/pki/secret-web.yaml"}
	with := func(extra ...string) []string {
		out := append([]string{".gitca/index.json"}, records...)
		out = append(out, extra...)
		return sortedStrings(out)
	}

	// Add: the new generation enters every trust file below and beside the root.
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t1)...)
	require.Equal(t, "2", commits())
	assert.Equal(t, with("ca/root@next.yaml"), changedIn(t, state, "main"))
	assert.Contains(t, git(t, state, "log", "-1", "--format=%B", "main"), "rotation-add")

	// Mid-soak: no commit, and the plan says what comes.
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t1.Add(11*time.Hour))...)
	require.Equal(t, "2", commits())
	plan = e.mustRun(t, "plan", "--topology", topo.work, "--state", checkout(t, state, "main"), "--now", rfc3339(t1.Add(11*time.Hour)))
	assert.Contains(t, plan.stdout, "No object changes")
	assert.Contains(t, plan.stdout, "phase add since "+rfc3339(t1))
	assert.Contains(t, plan.stdout, "switch: generation 2 signs and the 2 object(s) it issues are reissued")
	// gitca status shows the phase, and since when, in the CA table.
	st := e.mustRun(t, "status", "--state", checkout(t, state, "main"), "--now", rfc3339(t1.Add(11*time.Hour)))
	assert.Regexp(t, `(?m)^root\s.*\sadd since `+regexp.QuoteMeta(t1.Format("Jan 02, 2006 15:04 MST"))+`\s+ok$`, st.stdout)

	// Switch: the new generation signs; the old one stays in every trust file.
	t2 := t1.Add(12 * time.Hour)
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t2)...)
	require.Equal(t, "3", commits())
	assert.Equal(t, with("ca/root@next.yaml", "ca/root@previous.yaml"), changedIn(t, state, "main"))
	assert.Contains(t, git(t, state, "log", "-1", "--format=%B", "main"), "rotation-switch")

	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t2.Add(6*time.Hour))...)
	require.Equal(t, "3", commits())

	// Drop: the old generation leaves; its key is kept, retired.
	t3 := t2.Add(12 * time.Hour)
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t3)...)
	require.Equal(t, "4", commits())
	assert.Equal(t, with("ca/root@previous.yaml", "ca/retired/root@g1.yaml"), changedIn(t, state, "main"))
	assert.Contains(t, git(t, state, "log", "-1", "--format=%B", "main"), "rotation-drop")

	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t3.Add(24*time.Hour))...)
	require.Equal(t, "4", commits())
	assert.Contains(t, files(t, state, "main"), "ca/retired/root@g1.yaml")
	assert.NotContains(t, files(t, state, "main"), "ca/root@previous.yaml")
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestRevokeKubeconfig: the Kubeconfig and its RBAC leave in the next
// commit, which also starts its issuer's rotation; the plan dates when the
// revoked certificate stops being trusted, and from Drop on the client-CA
// bundle that holds the issuer no longer verifies it, while the other
// kubeconfig, reissued at Switch, still does.
func TestRevokeKubeconfig(t *testing.T) {
	topoFiles := copyDir(t, filepath.Join("..", "..", "render", "testdata", "basic"))
	topoFiles["clients.yaml"] = `apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: client-ca
spec:
  sources:
    - ca: issuing
  configMap:
    cluster: prod
---
apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: bob
spec:
  issuer: issuing
  username: bob
  target:
    server: https://api.prod.example.com:6443
    ca: root
  validity: 720h
  secret:
    cluster: prod
`
	topo := newTopology(t, topoFiles)
	state := newBare(t, "state")
	e := newEnv(t)
	cache := t.TempDir()
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
	revoked := kubeconfigClientCert(t, readState(t, state, "main").Primary["Kubeconfig/ops"].PlainValues()["tls.crt"])

	out := e.mustRun(t, "revoke", "kubeconfig", "ops", "--topology", topo.work, "--state", checkout(t, state, "main"), "--soak", "1h")
	assert.Contains(t, out.stdout, "leafs.yaml: removed Kubeconfig ops")
	assert.Contains(t, out.stdout, "cas.yaml: CertificateAuthority issuing rotates to generation 2")
	topo.push(t, "revoke ops", nil)

	t1 := t0.Add(time.Minute)
	plan := e.mustRun(t, "plan", "--topology", topo.work, "--state", checkout(t, state, "main"), "--now", rfc3339(t1))
	assert.Contains(t, plan.stdout, "revoked: issuing generation 1, which signed it, leaves every trust file at Drop, from "+rfc3339(t1.Add(2*time.Hour))+" at the earliest")
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t1)...)
	changed := changedIn(t, state, "main")
	assert.Contains(t, changed, "clusters/prod/pki/secret-ops.yaml")
	assert.Contains(t, changed, "clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml")
	assert.Contains(t, changed, "ca/issuing@next.yaml")
	assert.NotContains(t, files(t, state, "main"), "clusters/prod/pki/secret-ops.yaml")

	verifies := func(cert string) bool {
		t.Helper()
		pool := x509.NewCertPool()
		for _, f := range []string{"clusters/prod/pki/configmap-client-ca.yaml"} {
			raw, err := os.ReadFile(filepath.Join(checkout(t, state, "main"), f))
			require.NoError(t, err)
			var cm struct {
				Data map[string]string `json:"data"`
			}
			require.NoError(t, yaml.Unmarshal(raw, &cm))
			require.True(t, pool.AppendCertsFromPEM([]byte(cm.Data["ca.crt"])))
		}
		c := kubeconfigClientCert(t, cert)
		_, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: c.NotBefore.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err == nil
	}
	assert.True(t, verifies(pemOf(revoked)), "Add: the revoked certificate still verifies; Kubernetes has no revocation list")
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t1.Add(time.Hour))...)   // Switch
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t1.Add(2*time.Hour))...) // Drop
	assert.Contains(t, changedIn(t, state, "main"), "ca/retired/issuing@g1.yaml")
	assert.False(t, verifies(pemOf(revoked)), "Drop: the revoked certificate is refused")
	assert.True(t, verifies(readState(t, state, "main").Primary["Kubeconfig/bob"].PlainValues()["tls.crt"]), "the other kubeconfig, reissued at Switch, is trusted")
}

func kubeconfigClientCert(t testing.TB, pemCert string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(pemCert))
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
