package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// etcdClients are two client certificates of the kubeadm example's etcd CA,
// exported next to kubeadm's own (pki/etcd/<name>.crt and .key).
const etcdClients = `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: backup-client
  annotations:
    gitca.dev/kubeadm-file: pki/etcd/backup-client
    gitca.dev/cluster: demo
spec:
  issuer: demo-etcd-ca
  profile: client
  subject:
    commonName: backup
  secret:
    cluster: demo
    namespace: kube-system
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: monitor-client
  annotations:
    gitca.dev/kubeadm-file: pki/etcd/monitor-client
    gitca.dev/cluster: demo
spec:
  issuer: demo-etcd-ca
  profile: client
  subject:
    commonName: monitor
  secret:
    cluster: demo
    namespace: kube-system
`

// TestEtcdCRLRefusesARevokedClientCertificate runs the real etcd with the
// exported revocation list of the kubeadm example's etcd CA
// (--client-crl-file=pki/etcd/ca.crl): a client certificate removed from
// the topology is refused after the next render and export, while the
// others keep working, without restarting etcd.
func TestEtcdCRLRefusesARevokedClientCertificate(t *testing.T) {
	RequireE2E(t)
	bins := RequireBinaries(t)
	root := RepoRoot(t)
	dir := t.TempDir()
	gitca, err := BuildGitca(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	topo, state, node := filepath.Join(dir, "topology"), filepath.Join(dir, "state"), filepath.Join(dir, "cp-0")
	if err := os.CopyFS(topo, os.DirFS(filepath.Join(root, ExampleTopology))); err != nil {
		t.Fatal(err)
	}
	clients := filepath.Join(topo, "etcd-clients.yaml")
	if err := os.WriteFile(clients, []byte(etcdClients), 0o644); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "age.key")
	out, err := gitcaRun(root, gitca, nil, "keygen", "--out", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"SOPS_AGE_RECIPIENTS=" + strings.TrimSpace(out), "SOPS_AGE_KEY_FILE=" + keyFile}
	run := func(args ...string) string {
		t.Helper()
		out, err := gitcaRun(root, gitca, env, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("render", "--topology", topo, "--state", state)
	run("export", "kubeadm", "--state", state, "--node", "cp-0", "--out", node)
	pki := filepath.Join(node, "pki")
	crl := filepath.Join(pki, "etcd", "ca.crl")
	etcd := StartEtcd(t, bins, EtcdConfig{Name: "cp-0", PKIDir: pki, IP: NodeIP["cp-0"], ExtraArgs: []string{"--client-crl-file=" + crl}})

	// A copy of the backup client's credentials, kept where gitca cannot reach.
	kept := filepath.Join(dir, "kept")
	if err := os.MkdirAll(kept, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"backup-client.crt", "backup-client.key"} {
		copyFile(t, filepath.Join(pki, "etcd", f), filepath.Join(kept, f))
	}
	put := func(cert, key, k string) error {
		_, err := RunCommand(bins.Etcdctl, []string{"--endpoints=" + etcd.ClientURL, "--cacert=" + filepath.Join(pki, "etcd", "ca.crt"),
			"--cert=" + cert, "--key=" + key, "--dial-timeout=3s", "--command-timeout=5s", "put", k, "v"}, []string{"ETCDCTL_API=3"})
		return err
	}
	backup := func() error {
		return put(filepath.Join(kept, "backup-client.crt"), filepath.Join(kept, "backup-client.key"), "/backup")
	}
	monitor := func() error {
		return put(filepath.Join(pki, "etcd", "monitor-client.crt"), filepath.Join(pki, "etcd", "monitor-client.key"), "/monitor")
	}
	for name, f := range map[string]func() error{"backup": backup, "monitor": monitor} {
		if err := f(); err != nil {
			t.Fatalf("%s client before the revocation: %v", name, err)
		}
	}

	// The backup client leaves the topology: the next render lists it, the
	// next export hands etcd the list.
	if err := os.WriteFile(clients, []byte(strings.SplitN(etcdClients, "---\n", 2)[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := run("plan", "--topology", topo, "--state", state)
	if !strings.Contains(plan, "crl-revoked (Certificate/backup-client (serial ") {
		t.Fatalf("the plan does not revoke the backup client:\n%s", plan)
	}
	run("render", "--topology", topo, "--state", state)
	run("export", "kubeadm", "--state", state, "--node", "cp-0", "--out", node)

	if err := backup(); err == nil {
		t.Error("etcd accepted the revoked backup client certificate")
	}
	if err := monitor(); err != nil {
		t.Errorf("the monitor client after the revocation: %v", err)
	}
	if _, err := etcd.Ctl("endpoint", "health"); err != nil {
		t.Errorf("the healthcheck client after the revocation: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(etcd.Log(), "revoked") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(etcd.Log(), "revoked") {
		t.Errorf("etcd's log names no revoked certificate:\n%s", tail(etcd.Log(), 20))
	}
}
