package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the CLI in process and captures stdout and stderr.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, err := os.Pipe()
	require.NoError(t, err)
	re, we, err := os.Pipe()
	require.NoError(t, err)
	os.Stdout, os.Stderr = wo, we
	outC, errC := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outC <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errC <- string(b) }()
	code = run(context.Background(), args)
	wo.Close()
	we.Close()
	os.Stdout, os.Stderr = oldOut, oldErr
	return code, <-outC, <-errC
}

const validHead = `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: root
spec:
  validity: 87600h
`

// TestMalformedTopologies: each case exits 1, names file:line:col and the
// field, and leaves the state directory untouched (not even created).
func TestMalformedTopologies(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"yaml syntax", "kind: [unclosed\n", `bad.yaml:1:\d+: `},
		{"tab indentation", "kind: Certificate\n\tmetadata: {}\n", `bad.yaml:\d+:\d+: `},
		{"wrong apiVersion", "apiVersion: gitca.dev/v2\nkind: Certificate\nmetadata: {name: a}\n", `bad.yaml:1:13: apiVersion: `},
		{"unknown kind", "apiVersion: gitca.dev/v1alpha1\nkind: Certificat\nmetadata: {name: a}\n", `bad.yaml:2:7: kind: .*Certificate`},
		{"unknown field", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec:\n  issuer: root\n  profile: server\n  dnsName: [a]\n  secret: {cluster: c}\n", `bad.yaml:7:3: spec.dnsName: `},
		{"wrong type", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec:\n  issuer: root\n  profile: server\n  dnsNames: a.example\n  secret: {cluster: c}\n", `bad.yaml:7:13: spec.dnsNames: `},
		{"missing name", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {}\nspec: {issuer: root, profile: server, secret: {cluster: c}}\n", `bad.yaml:\d+:\d+: metadata.name: `},
		{"bad name", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: Web_1}\nspec: {issuer: root, profile: server, secret: {cluster: c}}\n", `bad.yaml:3:\d+: metadata.name: `},
		{"duplicate name", "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: root}\n", `base.yaml:4:9: metadata.name: duplicate CertificateAuthority "root", first declared at bad.yaml:2:1`},
		{"missing issuer", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: nope, profile: server, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.issuer: .*nope`},
		{"issuer is a certificate", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, secret: {cluster: c}}\n---\napiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: b}\nspec: {issuer: a, profile: server, secret: {cluster: c}}\n", `bad.yaml:9:\d+: spec.issuer: .*Certificate`},
		{"issuer cycle", "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: x}\nspec: {issuer: y}\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: y}\nspec: {issuer: x}\n", `bad.yaml:\d+:\d+: spec.issuer: .*cycle`},
		{"leaf outlives issuer", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, validity: 100000h, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.validity: `},
		{"bad DNS name", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec:\n  issuer: root\n  profile: server\n  dnsNames: [ok.example, bad..example]\n  secret: {cluster: c}\n", `bad.yaml:7:\d+: spec.dnsNames\[1\]: `},
		{"bad IP", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec:\n  issuer: root\n  profile: server\n  ipAddresses: [10.0.0.300]\n  secret: {cluster: c}\n", `bad.yaml:7:\d+: spec.ipAddresses\[0\]: `},
		{"bad URI", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec:\n  issuer: root\n  profile: server\n  uris: [not a uri]\n  secret: {cluster: c}\n", `bad.yaml:7:\d+: spec.uris\[0\]: `},
		{"bad duration", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, validity: 1year, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.validity: `},
		{"negative duration", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, validity: -5h, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.validity: `},
		{"renewBefore >= validity", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, validity: 100h, renewBefore: 100h, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.renewBefore: `},
		{"unknown key algorithm", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, keyAlgorithm: DSA, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.keyAlgorithm: .*ECDSA-P256`},
		{"unknown profile", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: both, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.profile: .*server`},
		{"unknown rotation policy", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server, rotationPolicy: Sometimes, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.rotationPolicy: `},
		{"no secret cluster", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: root, profile: server}\n", `bad.yaml:\d+:\d+: spec.secret.cluster: `},
		{"kubeconfig without username", "apiVersion: gitca.dev/v1alpha1\nkind: Kubeconfig\nmetadata: {name: k}\nspec: {issuer: root, target: {server: https://a:6443, ca: root}, secret: {cluster: c}}\n", `bad.yaml:\d+:\d+: spec.username: `},
		{"kubeconfig http server", "apiVersion: gitca.dev/v1alpha1\nkind: Kubeconfig\nmetadata: {name: k}\nspec: {issuer: root, username: u, target: {server: http://a:6443, ca: root}, secret: {cluster: c}}\n", `bad.yaml:4:\d+: spec.target.server: `},
		{"system:masters without opt-in", "apiVersion: gitca.dev/v1alpha1\nkind: Kubeconfig\nmetadata: {name: k}\nspec:\n  issuer: root\n  username: u\n  groups: [system:masters]\n  target: {server: https://a:6443, ca: root}\n  secret: {cluster: c}\n", `bad.yaml:7:\d+: spec.groups\[0\]: `},
		{"bundle source with two refs", "apiVersion: gitca.dev/v1alpha1\nkind: TrustBundle\nmetadata: {name: b}\nspec:\n  sources: [{ca: root, bundle: b2}]\n  configMap: {cluster: c}\n", `bad.yaml:5:\d+: spec.sources\[0\]: `},
		{"bundle file outside the repo", "apiVersion: gitca.dev/v1alpha1\nkind: TrustBundle\nmetadata: {name: b}\nspec:\n  sources: [{file: ../../etc/ssl/cert.pem}]\n  configMap: {cluster: c}\n", `bad.yaml:5:\d+: spec.sources\[0\].file: `},
		{"imported CA with an issuer", "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: imp}\nspec: {issuer: root, import: {certificate: ca.crt}}\n", `bad.yaml:4:\d+: spec`},
		{"unknown preset type", "apiVersion: gitca.dev/v1alpha1\nkind: Preset\nmetadata: {name: p}\nspec: {type: openshift}\n", `bad.yaml:4:\d+: spec.type: .*kubeadm`},
		{"kubeadm preset bad node IP", "apiVersion: gitca.dev/v1alpha1\nkind: Preset\nmetadata: {name: p}\nspec:\n  type: kubeadm\n  kubeadm:\n    controlPlaneEndpoint: 10.0.0.1:6443\n    nodes: [{name: n1, advertiseAddress: 10.0.0.256}]\n", `bad.yaml:8:\d+: spec.kubeadm.nodes\[0\].advertiseAddress: `},
		{"bad age recipient", "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata: {name: c}\nspec:\n  reconciler: {age: [age1notakey]}\n", `bad.yaml:5:\d+: spec.reconciler.age\[0\]: `},
	}
	require.GreaterOrEqual(t, len(cases), 25)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			topo := filepath.Join(dir, "topology")
			require.NoError(t, os.MkdirAll(topo, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(topo, "base.yaml"), []byte(validHead), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(topo, "bad.yaml"), []byte(tc.yaml), 0o644))
			state := filepath.Join(dir, "state")
			for _, verb := range []string{"plan", "render"} {
				code, stdout, stderr := runCLI(t, verb, "--topology", topo, "--state", state)
				assert.Equal(t, 1, code, "%s: stdout=%s", verb, stdout)
				assert.Regexp(t, regexp.MustCompile(tc.want), stderr, verb)
				assert.NoDirExists(t, state, "nothing is written")
			}
		})
	}
}

func TestOutputFlagIsChecked(t *testing.T) {
	code, _, stderr := runCLI(t, "plan", "--topology", "x", "--state", "y", "-o", "xml")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `--output "xml" is not supported`)
}

func TestKeygenNeverPrintsTheIdentity(t *testing.T) {
	out := filepath.Join(t.TempDir(), "age.key")
	code, stdout, _ := runCLI(t, "keygen", "--out", out)
	require.Equal(t, 0, code)
	assert.Regexp(t, `^age1[0-9a-z]+\n$`, stdout)
	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, bytes.Contains(b, []byte("AGE-SECRET-KEY-")))
	// A second keygen must not overwrite an identity.
	code, _, _ = runCLI(t, "keygen", "--out", out)
	assert.Equal(t, 1, code)
}

// TestPlanVerify: --verify opens every record, so it needs an identity and
// says so; with one, a freshly rendered state verifies clean.
func TestPlanVerify(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "age.key")
	code, rcp, _ := runCLI(t, "keygen", "--out", key)
	require.Equal(t, 0, code)
	t.Setenv("SOPS_AGE_RECIPIENTS", strings.TrimSpace(rcp))
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	state := filepath.Join(dir, "state")
	now := "2026-11-23T00:00:00Z"
	code, _, stderr := runCLI(t, "render", "--topology", "../../examples/kubeadm", "--state", state, "--now", now)
	require.Equal(t, 0, code, stderr)

	code, _, stderr = runCLI(t, "plan", "--topology", "../../examples/kubeadm", "--state", state, "--now", now, "--verify")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "an age identity is needed to verify the state (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)")

	t.Setenv("SOPS_AGE_KEY_FILE", key)
	code, stdout, stderr := runCLI(t, "plan", "--topology", "../../examples/kubeadm", "--state", state, "--now", now, "--verify", "--detailed-exitcode")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "Plan (2026-11-23T00:00:00Z):")
}
