package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// openssl runs the real openssl CLI in dir: the offline machine.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	_, err := exec.LookPath("openssl")
	require.NoError(t, err, "these tests need the openssl CLI (make tools installs it)")
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "openssl %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// offlineRoot makes a self-signed root with openssl in dir: name.crt and name.key.
func offlineRoot(t *testing.T, dir, name, cn string) {
	t.Helper()
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+".key", "-out", name+".crt", "-days", "3650", "-subj", "/CN="+cn,
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
}

// signCSR signs a request with a root's key as a person does offline, with
// the extensions of ext (an -extfile), and writes out.
func signCSR(t *testing.T, dir, csr, root, ext string, days int, out string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ext.cnf"), []byte(ext), 0o600))
	openssl(t, dir, "x509", "-req", "-in", csr, "-CA", root+".crt", "-CAkey", root+".key",
		"-days", fmt.Sprint(days), "-extfile", "ext.cnf", "-out", out)
}

const offlineTopology = `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
spec:
  clusters:
    - name: prod
      namespace: pki
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: offline-root
spec:
  import:
    certificate: root.crt
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: issuing
spec:
  issuer: offline-root
  subject:
    commonName: Issuing CA
  pathLen: 0
  validity: 43800h
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: web
spec:
  issuer: issuing
  profile: server
  dnsNames: [web.example.com]
  secret:
    cluster: prod
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: roots
spec:
  sources:
    - ca: offline-root
    - ca: issuing
  configMap:
    cluster: prod
`

// caExt is what a person signing an intermediate with pathLen 0 writes.
const caExt = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"

// withSigned declares the signed certificate and returns the line and column
// its value is at, as errors name them.
func withSigned(t *testing.T, topo, file string) string {
	t.Helper()
	p := filepath.Join(topo, "pki.yaml")
	doc := strings.Replace(offlineTopology, "  pathLen: 0\n", "  pathLen: 0\n  signedCertificate: "+file+"\n", 1)
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
	for i, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "  signedCertificate: ") {
			return fmt.Sprintf("pki.yaml:%d:%d: spec.signedCertificate: CertificateAuthority/issuing: %s: ", i+1, len("  signedCertificate: ")+1, file)
		}
	}
	t.Fatal("no signedCertificate line")
	return ""
}

// TestOfflineRootRoundTrip is an intermediate below an offline root, as a
// person runs it: the plan shows it waiting, gitca csr writes its key and a
// request into the state, openssl signs the request with the offline key,
// the certificate is committed to the topology, and the next render installs
// it and signs what is below it. Certificates that do not fit are refused,
// naming the file, the line and what is wrong.
func TestOfflineRootRoundTrip(t *testing.T) {
	offline := t.TempDir() // the machine the offline key never leaves
	topo, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	offlineRoot(t, offline, "root", "Offline Root")
	rootCrt, err := os.ReadFile(filepath.Join(offline, "root.crt"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(topo, "root.crt"), rootCrt, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(topo, "pki.yaml"), []byte(offlineTopology), 0o644))
	// openssl stamps the real time; every gitca run gets its clock injected from it.
	now := time.Now().UTC().Truncate(time.Second).Add(time.Minute)
	at := func(d time.Duration) string { return rfc3339(now.Add(d)) }
	e := newEnv(t)
	args := func(cmd string, d time.Duration, extra ...string) []string {
		return append([]string{cmd, "--topology", topo, "--state", state, "--now", at(d)}, extra...)
	}

	out := e.mustRun(t, args("render", 0)...)
	assert.Regexp(t, `CertificateAuthority/issuing\s+wait\s.*csr-pending \(no key yet: gitca csr issuing makes one and a request for offline-root to sign\)`, out.stdout)
	assert.Regexp(t, `Certificate/web\s+wait\s.*csr-pending \(CertificateAuthority/issuing waits for its certificate\)`, out.stdout)
	assert.NoFileExists(t, filepath.Join(state, "ca", "issuing.yaml"), "nothing is made for a CA that waits")
	assert.NoFileExists(t, filepath.Join(state, "clusters", "prod", "pki", "secret-web.yaml"))

	out = e.mustRun(t, args("csr", time.Minute, "issuing")...)
	assert.Contains(t, out.stdout, "csr-requested (a new key, and ca/issuing.csr asks offline-root for its certificate)")
	csr := filepath.Join(state, "ca", "issuing.csr")
	req := openssl(t, offline, "req", "-in", csr, "-noout", "-verify", "-text")
	assert.Contains(t, req, "Subject: CN = Issuing CA")
	assert.Regexp(t, `Basic Constraints: critical\s+CA:TRUE, pathlen:0`, req, "the request asks for what the topology declares")
	record, err := os.ReadFile(filepath.Join(state, "ca", "issuing.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(record), "tls.key: ENC[", "the key is sealed")
	assert.NotContains(t, string(record), "tls.crt")
	status := e.mustRun(t, "status", "--state", state, "--topology", topo, "--now", at(time.Minute))
	assert.Regexp(t, `issuing\s.*offline-root\s.*csr-pending`, status.stdout)

	// A run while the request waits changes nothing and says what it waits for.
	out = e.run(t, args("plan", 2*time.Minute, "--detailed-exitcode")...)
	assert.Equal(t, 0, out.code, out.stderr)
	assert.Contains(t, out.stdout, "csr-pending (ca/issuing.csr waits for offline-root's signature: commit the certificate and set spec.signedCertificate)")

	t.Run("refusals name the file, the line and what is wrong", func(t *testing.T) {
		offlineRoot(t, offline, "other", "Other Root")
		openssl(t, offline, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", "stranger.key", "-out", "stranger.csr", "-subj", "/CN=Issuing CA")
		for _, tc := range []struct {
			name, csr, root, ext string
			days                 int
			later                time.Duration
			want                 string
		}{
			{"other key", "stranger.csr", "root", caExt, 365, 0, "its public key is not the one gitca holds for issuing"},
			{"not a CA", csr, "root", "basicConstraints=critical,CA:FALSE\n", 365, 0, "not a CA certificate: basicConstraints CA:TRUE is missing"},
			{"wrong issuer", csr, "other", caExt, 365, 0, "not signed by offline-root (spec.issuer, CN=Offline Root): its issuer is CN=Other Root"},
			{"pathLen wrong", csr, "root", "basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign\n", 365, 0, "pathLen 1, the topology asks for 0 (spec.pathLen)"},
			{"expired", csr, "root", caExt, 1, 48 * time.Hour, "expired "},
		} {
			t.Run(tc.name, func(t *testing.T) {
				file := strings.ReplaceAll(tc.name, " ", "-") + ".crt"
				signCSR(t, offline, tc.csr, tc.root, tc.ext, tc.days, filepath.Join(topo, file))
				prefix := withSigned(t, topo, file)
				before := snapshotDir(t, state)
				for _, cmd := range []string{"plan", "render"} {
					out := e.run(t, args(cmd, 3*time.Minute+tc.later)...)
					require.Equal(t, 1, out.code, out.stdout)
					assert.Contains(t, out.stderr, prefix+tc.want)
				}
				assert.Equal(t, before, snapshotDir(t, state), "a refusal writes nothing")
			})
		}
	})

	signCSR(t, offline, csr, "root", caExt, 1825, filepath.Join(topo, "issuing.crt"))
	withSigned(t, topo, "issuing.crt")
	out = e.mustRun(t, args("render", 4*time.Minute)...)
	assert.Regexp(t, `CertificateAuthority/issuing\s+reissue\s.*csr-signed \(issuing.crt, signed by offline-root`, out.stdout)
	assert.Regexp(t, `Certificate/web\s+create`, out.stdout)
	assert.Regexp(t, `ca/issuing.csr\s+delete\s+csr\s+csr-signed`, out.stdout)
	assert.NoFileExists(t, csr, "the request is answered")
	// The leaf chains to the offline root through the certificate signed offline.
	web := plainValues(t, e, filepath.Join(state, "clusters", "prod", "pki", "secret-web.yaml"))
	require.NoError(t, os.WriteFile(filepath.Join(offline, "web.crt"), []byte(web["tls.crt"]), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(offline, "issuing.crt"), []byte(plainValues(t, e, filepath.Join(state, "ca", "issuing.yaml"))["tls.crt"]), 0o600))
	assert.Contains(t, openssl(t, offline, "verify", "-CAfile", "root.crt", "-untrusted", "issuing.crt", "web.crt"), "web.crt: OK")
	roots := plainValues(t, e, filepath.Join(state, "clusters", "prod", "pki", "configmap-roots.yaml"))
	assert.Equal(t, 2, strings.Count(roots["ca.crt"], "BEGIN CERTIFICATE"), "the bundle holds the intermediate once it is signed")

	out = e.run(t, args("plan", 5*time.Minute, "--detailed-exitcode")...)
	assert.Equal(t, 0, out.code, "%s\n%s", out.stdout, out.stderr)
}

// snapshotDir is every file's bytes under dir.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	}))
	return out
}

// plainValues are the readable values of a state file: a Secret's
// stringData (its keys stay sealed) or a ConfigMap's data.
func plainValues(t *testing.T, _ *env, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		StringData map[string]string `json:"stringData"`
		Data       map[string]string `json:"data"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc), path)
	out := doc.Data
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range doc.StringData {
		out[k] = v
	}
	return out
}
