package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretsNeverInOutput feeds every secret-bearing input (an age identity
// or a PEM key where a recipient belongs, a token in the environment, in a
// file, in a URL, the key files themselves) into every failing path of every
// command, and checks that no output, stdout or stderr, carries any of it.
func TestSecretsNeverInOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs some sixty gitca processes")
	}
	e := newEnv(t)
	e.usePlainBinary(t)
	idFile, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	var identity string
	for _, l := range strings.Split(string(idFile), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			identity = l
		}
	}
	require.NotEmpty(t, identity)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	var tok [20]byte
	_, _ = rand.Read(tok[:])
	token := "ghp_" + hex.EncodeToString(tok[:])

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tokenFile := write("token", token+"\n")
	sshKeyFile := write("id_ecdsa", pemKey)
	knownHosts := write("known_hosts", "")
	topo := filepath.Join("..", "..", "render", "testdata", "basic")
	// A topology whose Config names a secret where a recipient belongs.
	badTopo := filepath.Join(dir, "bad-topology")
	require.NoError(t, os.CopyFS(badTopo, os.DirFS(topo)))
	write("bad-topology/config.yaml", "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata:\n  name: gitca\nspec:\n  reconciler:\n    age: ["+identity+"]\n    breakGlass: ["+strings.ReplaceAll(strings.TrimSpace(pemKey), "\n", "\\n")+"]\n  clusters:\n    - name: prod\n      namespace: pki\n")
	// A topology that quotes secrets in its own errors: whatever the
	// validator says about a value, the boundary scrubs it.
	leakTopo := filepath.Join(dir, "leak-topology")
	require.NoError(t, os.CopyFS(leakTopo, os.DirFS(topo)))
	write("leak-topology/leak.yaml", "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: leak\nspec:\n  issuer: issuing\n  profile: server\n  dnsNames: ["+token+".example.com, "+identity+"]\n  secret:\n    cluster: prod\n")
	// A state that fails to read: a link, and a record that names a secret.
	badState := filepath.Join(dir, "bad-state")
	write("bad-state/clusters/prod/pki/secret-web.yaml", "metadata:\n  annotations:\n    gitca.dev/object: Certificate/web\n    gitca.dev/role: "+identity+"\n  name: [\n")
	require.NoError(t, os.Symlink(e.keyFile, filepath.Join(badState, "age.key")))
	linkedState := newBare(t, "linked-state")
	lt := &topoRepo{bare: linkedState, work: filepath.Join(t.TempDir(), "linked-work")}
	git(t, dir, "init", "-q", "-b", "main", lt.work)
	git(t, lt.work, "remote", "add", "origin", linkedState)
	require.NoError(t, os.MkdirAll(filepath.Join(lt.work, "clusters"), 0o755))
	require.NoError(t, os.Symlink(e.keyFile, filepath.Join(lt.work, "clusters", "prod")))
	lt.push(t, "a link to the key file", map[string]string{"README.md": "state\n"})
	cache := t.TempDir()
	unreachable := "https://127.0.0.1:1/pki/topology.git"
	stateBare := newBare(t, "state")
	goodTopo := newTopology(t, copyDir(t, topo)).bare

	// Secrets, as the full value and as pieces that must not show either.
	secretsOut := []string{identity, identity[len("AGE-SECRET-KEY-"):], token, strings.Split(pemKey, "\n")[1], strings.Split(pemKey, "\n")[2]}

	inputs := []struct {
		name string
		env  []string
	}{
		{"identity in SOPS_AGE_RECIPIENTS", []string{"SOPS_AGE_RECIPIENTS=" + identity}},
		{"PEM key in SOPS_AGE_RECIPIENTS", []string{"SOPS_AGE_RECIPIENTS=" + pemKey}},
		{"identity in SOPS_AGE_KEY, token in GITCA_GIT_TOKEN", []string{"SOPS_AGE_KEY=" + identity, "SOPS_AGE_KEY_FILE=", "GITCA_GIT_TOKEN=" + token}},
		{"key file is the SSH key", []string{"SOPS_AGE_KEY_FILE=" + sshKeyFile}},
	}
	paths := [][]string{
		{"plan", "--topology", leakTopo, "--state", t.TempDir()},
		{"plan", "--topology", topo, "--state", badState},
		{"plan", "--topology", badTopo, "--state", t.TempDir()},
		{"render", "--topology", topo, "--state", badState},
		{"render", "--topology", badTopo, "--state", t.TempDir()},
		{"render", "--topology", topo, "--state", filepath.Join(dir, "fresh-state"), "--now", rfc3339(t0)},
		{"export", "kubeadm", "--state", badState, "--node", "cp-0", "--out", t.TempDir()},
		{"reconcile", "--topology", unreachable, "--state", stateBare, "--cache-dir", cache, "--https-token-file", tokenFile},
		{"reconcile", "--topology", strings.Replace(unreachable, "https://", "https://git:"+token+"@", 1), "--state", stateBare, "--cache-dir", cache},
		{"reconcile", "--topology", "ssh://git@127.0.0.1:1/pki/topology.git", "--state", stateBare, "--cache-dir", cache, "--ssh-key-file", sshKeyFile, "--ssh-known-hosts", knownHosts},
		{"reconcile", "--topology", "ssh://git@127.0.0.1:1/pki/topology.git", "--state", stateBare, "--cache-dir", cache, "--ssh-key-file", tokenFile, "--ssh-known-hosts", tokenFile},
		{"reconcile", "--topology", newTopology(t, copyDir(t, badTopo)).bare, "--state", stateBare, "--cache-dir", cache},
		// The state's own repository holds a link: the run fails after both checkouts.
		{"reconcile", "--topology", goodTopo, "--state", linkedState, "--cache-dir", cache, "--now", rfc3339(t0)},
	}
	// The long-running loop logs a failed run and goes on: its log is scrubbed too.
	t.Run("reconcile loop log", func(t *testing.T) {
		run := *e
		run.vars = append(append([]string(nil), e.vars...), "GITCA_GIT_TOKEN="+token)
		cmd, stdout, stderr := run.command(context.Background(), "reconcile", "--topology", newTopology(t, copyDir(t, leakTopo)).bare,
			"--state", stateBare, "--cache-dir", t.TempDir(), "--interval", "1h")
		require.NoError(t, cmd.Start())
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(stderr.String(), "run failed") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait())
		out := stdout.String() + stderr.String()
		assert.Contains(t, out, "invalid DNS name")
		for _, s := range secretsOut {
			assert.NotContains(t, out, s)
		}
	})

	for _, in := range inputs {
		for _, args := range paths {
			run := *e
			run.vars = append(append([]string(nil), e.vars...), in.env...)
			r := run.run(t, args...)
			out := r.stdout + r.stderr
			for _, s := range secretsOut {
				if !assert.NotContains(t, out, s, "%s: gitca %s", in.name, strings.Join(args, " ")) {
					t.Logf("output:\n%s", out)
				}
			}
			assert.NotContains(t, out, "goroutine ", "no stack trace")
		}
	}
}
