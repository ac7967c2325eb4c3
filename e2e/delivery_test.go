package e2e

import (
	"errors"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// deliveryViewer is a Kubeconfig added to examples/kubeadm: a client
// certificate of the cluster CA whose RBAC binds its group to pod-reader.
// Not view: view is an aggregated ClusterRole whose rules
// kube-controller-manager fills in, and this harness runs no controller
// manager, so view grants nothing here.
const deliveryViewer = `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: e2e-viewer
spec:
  issuer: demo-ca
  username: e2e-viewer
  groups: [e2e-readers]
  target:
    server: https://127.0.0.1:6443
    ca: demo-ca
  validity: 24h
  secret:
    cluster: demo
  authorization:
    clusterRoleBindings:
      cluster: demo
      clusterRoles: [pod-reader]
`

// podReader is the ClusterRole the viewer is bound to.
const podReader = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pod-reader
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
`

// deliveryTool finds a CLI that `make tools` installs into GOPATH/bin, which
// go test does not put on PATH.
func deliveryTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join(build.Default.GOPATH, "bin", name); isExecutable(p) == nil {
		return p
	}
	t.Skipf("%s not installed: run `make tools`", name)
	return ""
}

// canI asks the API server whether the kubeconfig's identity may do something.
func canI(t *testing.T, api *APIServer, kubeconfig string, args ...string) bool {
	t.Helper()
	out, err := api.Kubectl(kubeconfig, append([]string{"auth", "can-i"}, args...)...)
	switch strings.TrimSpace(out) {
	case "yes":
		return true
	case "no":
		return false // kubectl exits 1 for "no"
	}
	t.Fatalf("kubectl auth can-i %s: %q %v", strings.Join(args, " "), out, err)
	return false
}

// TestDeliveredKubeconfigAndRBAC renders examples/kubeadm plus a viewer
// kubeconfig, boots the real kube-apiserver from the export, and checks what
// Flux would apply: the overlay builds and the API server accepts it, the
// rendered kubeconfig authenticates as its user and groups, and its binding
// grants exactly its role.
func TestDeliveredKubeconfigAndRBAC(t *testing.T) {
	RequireE2E(t)
	bins := RequireBinaries(t)
	kustomize := deliveryTool(t, "kustomize")
	sops := deliveryTool(t, "sops")
	root := RepoRoot(t)
	dir := t.TempDir()

	topo := filepath.Join(dir, "topology")
	if err := os.CopyFS(topo, os.DirFS(filepath.Join(root, ExampleTopology))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(topo, "e2e-viewer.yaml"), []byte(deliveryViewer), 0o644); err != nil {
		t.Fatal(err)
	}
	exp, err := RenderAndExport(root, topo, dir, "cp-0")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, state, cp0 := exp.AgeKeyFile, exp.StateDir, exp.Nodes["cp-0"]
	sopsEnv := []string{"SOPS_AGE_KEY_FILE=" + keyFile, "SOPS_DISABLE_VERSION_CHECK=1"}

	etcd := StartEtcd(t, bins, EtcdConfig{Name: "cp-0", PKIDir: filepath.Join(cp0, "pki"), IP: NodeIP["cp-0"]})
	api := StartAPIServer(t, bins, APIServerConfig{Dir: cp0, IP: NodeIP["cp-0"], EtcdServers: []string{etcd.ClientURL}})
	admin := filepath.Join(cp0, "super-admin.conf")

	// The viewer's kubeconfig as a consumer gets it: decrypted from its Secret.
	// It holds a private key, so it stays in the test's temporary directory.
	secret := filepath.Join(state, "clusters", ExampleCluster, "kube-system", "secret-e2e-viewer.yaml")
	kc, err := RunCommand(sops, []string{"--decrypt", "--extract", `["stringData"]["kubeconfig"]`, secret}, sopsEnv)
	if err != nil {
		t.Fatal(err)
	}
	viewer := filepath.Join(dir, "e2e-viewer.conf")
	if err := os.WriteFile(viewer, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("the overlay builds after decryption and the API server accepts it", func(t *testing.T) {
		plain := filepath.Join(t.TempDir(), "state")
		if err := os.CopyFS(plain, os.DirFS(state)); err != nil {
			t.Fatal(err)
		}
		overlay := filepath.Join(plain, "clusters", ExampleCluster)
		err := filepath.WalkDir(overlay, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "secret-") {
				return err
			}
			_, err = RunCommand(sops, []string{"--decrypt", "--in-place", p}, sopsEnv)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		built, err := RunCommand(kustomize, []string{"build", overlay}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(built, "ENC[") || strings.Contains(built, "\nsops:") {
			t.Fatal("the decrypted build still holds sops material")
		}
		manifests := filepath.Join(t.TempDir(), "overlay.yaml")
		if err := os.WriteFile(manifests, []byte(built), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"client", "server"} {
			out, err := api.Kubectl(admin, "apply", "--dry-run="+mode, "-f", manifests)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=%s: %v", mode, err)
			}
			if !strings.Contains(out, "clusterrolebinding.rbac.authorization.k8s.io/gitca:kubeconfig:e2e-viewer:pod-reader") {
				t.Errorf("dry-run=%s did not include the viewer's binding:\n%s", mode, out)
			}
		}
	})

	t.Run("the rendered kubeconfig authenticates as its user and groups", func(t *testing.T) {
		user, groups, err := whoami(api, viewer)
		if err != nil {
			t.Fatal(err)
		}
		if user != "e2e-viewer" {
			t.Errorf("user %q, want e2e-viewer", user)
		}
		for _, g := range []string{"e2e-readers", "kubeconfig:e2e-viewer"} {
			if !slices.Contains(groups, g) {
				t.Errorf("groups %v: want %s", groups, g)
			}
		}
	})

	t.Run("its binding grants exactly its role", func(t *testing.T) {
		role := filepath.Join(t.TempDir(), "pod-reader.yaml")
		if err := os.WriteFile(role, []byte(podReader), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := api.Kubectl(admin, "apply", "-f", role); err != nil {
			t.Fatal(err)
		}
		if canI(t, api, viewer, "list", "pods", "-n", "default") {
			t.Fatal("the viewer can list pods before its binding is applied")
		}
		crb := filepath.Join(state, "clusters", ExampleCluster, "rbac", "clusterrolebinding-gitca-kubeconfig-e2e-viewer-pod-reader.yaml")
		if _, err := api.Kubectl(admin, "apply", "-f", crb); err != nil {
			t.Fatal(err)
		}
		// The RBAC authorizer sees new bindings through an informer.
		err := waitFor(api.Process, 15*time.Second, 500*time.Millisecond, func() error {
			if !canI(t, api, viewer, "list", "pods", "-n", "default") {
				return errors.New("cannot list pods")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the viewer after its binding was applied: %v", err)
		}
		for _, c := range []struct {
			args []string
			want bool
		}{
			{[]string{"list", "pods", "-n", "kube-system"}, true}, // a ClusterRoleBinding: every namespace
			{[]string{"watch", "pods", "-A"}, true},
			{[]string{"get", "configmaps", "-n", "default"}, false},
			{[]string{"create", "pods", "-n", "default"}, false},
			{[]string{"delete", "pods", "-n", "default"}, false},
			{[]string{"delete", "namespaces"}, false},
			{[]string{"get", "secrets", "-n", "kube-system"}, false},
			{[]string{"create", "clusterrolebindings"}, false},
		} {
			if got := canI(t, api, viewer, c.args...); got != c.want {
				t.Errorf("can-i %s: %v, want %v", strings.Join(c.args, " "), got, c.want)
			}
		}
		// The group, not the user, is bound: the same username without the
		// kubeconfig's group gets nothing.
		out, err := api.Kubectl(admin, "auth", "can-i", "list", "pods", "-n", "default", "--as=e2e-viewer")
		if strings.TrimSpace(out) != "no" {
			t.Errorf("--as=e2e-viewer without its group: %q %v, want no", out, err)
		}
		out, err = api.Kubectl(admin, "auth", "can-i", "list", "pods", "-n", "default", "--as=e2e-viewer", "--as-group=kubeconfig:e2e-viewer")
		if strings.TrimSpace(out) != "yes" {
			t.Errorf("--as-group=kubeconfig:e2e-viewer: %q %v, want yes", out, err)
		}
	})
}
