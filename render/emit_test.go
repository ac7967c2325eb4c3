package render

import (
	"bytes"
	"errors"
	"flag"
	"go/build"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/plan"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/gitca-dev/gitca/state"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// updateGolden: -update, or UPDATE_GOLDEN=1 as the kcp golden test reads it.
func updateGolden() bool { return *update || os.Getenv("UPDATE_GOLDEN") != "" }

// goldenFile reports whether a rendered file holds no random material
// (no keys, certificates or ciphertext) and so can be pinned byte for byte.
func goldenFile(p string) bool {
	switch {
	case p == ".sops.yaml", strings.HasSuffix(p, "/kustomization.yaml"), strings.HasSuffix(p, "/"+"ksops-generator.yaml"):
		return true
	case strings.HasPrefix(p, "flux/"), strings.HasPrefix(p, "argocd/"), strings.Contains(p, "/rbac/"):
		return true
	}
	return false
}

// withRecipient makes the delivery topology also encrypt to the test's own
// identity, so its files can be decrypted.
func (e *env) withRecipient() {
	e.edit("config.yaml", "    age:\n", "    age:\n      - "+e.recipient+"\n")
}

func TestDeliveryGolden(t *testing.T) {
	for _, c := range []struct {
		name, topo string
		sopsYAML   bool // .sops.yaml is pinned only where the recipients are fixed
	}{
		{"delivery", "testdata/delivery", true},
		{"basic", "testdata/basic", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.topo)
			e.run(t0, nil)
			got := map[string][]byte{}
			for p, v := range e.snapshot() {
				if goldenFile(p) && (c.sopsYAML || p != ".sops.yaml") {
					got[p] = []byte(v[strings.IndexByte(v, 0)+1:])
				}
			}
			dir := filepath.Join("testdata", "golden", c.name)
			if updateGolden() {
				require.NoError(t, os.RemoveAll(dir))
				for p, b := range got {
					f := filepath.Join(dir, filepath.FromSlash(p))
					require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
					require.NoError(t, os.WriteFile(f, b, 0o644))
				}
			}
			want := map[string][]byte{}
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				want[filepath.ToSlash(rel)] = b
				return err
			})
			require.NoError(t, err, "run `go test ./render/ -run TestDeliveryGolden -update` to create the golden files")
			assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "the set of pinned files")
			for p, b := range want {
				assert.Equal(t, string(b), string(got[p]), p)
			}
		})
	}
}

func TestDeliveryLayout(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.run(t0, nil)
	files := e.snapshot()
	// Flux flavour: every file a resource, a Flux Kustomization outside the overlay.
	prod := readYAML(t, filepath.Join(e.state, "clusters/prod/kustomization.yaml"))
	assert.Equal(t, []any{
		"namespace-pki.yaml",
		"pki/configmap-api-trust.yaml", "pki/configmap-roots.yaml",
		"pki/secret-ops.yaml", "pki/secret-team-admin.yaml", "pki/secret-web.yaml",
		"rbac/clusterrolebinding-gitca-kubeconfig-ops-pod-reader.yaml", "rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml",
	}, prod["resources"])
	assert.NotContains(t, prod, "generators")
	fk := readYAML(t, filepath.Join(e.state, "flux/prod/gitca-kustomization.yaml"))
	assert.Equal(t, "kustomize.toolkit.fluxcd.io/v1", fk["apiVersion"])
	assert.Equal(t, map[string]any{
		"interval": "10m", "retryInterval": "2m", "timeout": "5m", "path": "./clusters/prod", "prune": true, "wait": true,
		"sourceRef":  map[string]any{"kind": "GitRepository", "name": "gitca-state", "namespace": "flux-system"},
		"decryption": map[string]any{"provider": "sops", "secretRef": map[string]any{"name": "sops-age"}},
	}, fk["spec"])
	// The state repo's GitRepository and a kustomization to apply both once.
	gr := readYAML(t, filepath.Join(e.state, "flux/prod/gitca-gitrepository.yaml"))
	assert.Equal(t, map[string]any{"url": "https://git.example.com/platform/state.git", "interval": "1m", "ref": map[string]any{"branch": "main"}}, gr["spec"])
	assert.Equal(t, []any{"gitca-gitrepository.yaml", "gitca-kustomization.yaml"}, readYAML(t, filepath.Join(e.state, "flux/prod/kustomization.yaml"))["resources"])
	// The namespace the overlay writes into is declared, and never pruned.
	ns := readYAML(t, filepath.Join(e.state, "clusters/prod/namespace-pki.yaml"))
	assert.Equal(t, "Namespace", ns["kind"])
	assert.Equal(t, "disabled", ns["metadata"].(map[string]any)["annotations"].(map[string]any)["kustomize.toolkit.fluxcd.io/prune"])
	assert.NotContains(t, files, "argocd/prod/gitca-application.yaml")

	// KSOPS flavour: sealed Secrets through the generator, the plain bundle Secret
	// and RBAC as resources, an Argo CD Application.
	edge := readYAML(t, filepath.Join(e.state, "clusters/edge/kustomization.yaml"))
	assert.Equal(t, []any{"certs/secret-api-trust.yaml", "namespace-certs.yaml", "rbac/clusterrolebinding-gitca-kubeconfig-edge-deployer-edit.yaml"}, edge["resources"])
	assert.Equal(t, []any{"ksops-generator.yaml"}, edge["generators"])
	gen := readYAML(t, filepath.Join(e.state, "clusters/edge", "ksops-generator.yaml"))
	assert.Equal(t, "viaduct.ai/v1", gen["apiVersion"])
	assert.Equal(t, "ksops", gen["kind"])
	assert.Equal(t, []any{"./certs/secret-edge-deployer.yaml", "./certs/secret-gateway.yaml"}, gen["files"])
	app := readYAML(t, filepath.Join(e.state, "argocd/edge/gitca-application.yaml"))
	assert.Equal(t, "Application", app["kind"])
	assert.Equal(t, map[string]any{"repoURL": "https://git.example.com/platform/state.git", "targetRevision": "HEAD", "path": "clusters/edge"},
		app["spec"].(map[string]any)["source"])
	assert.NotContains(t, files, "flux/edge/gitca-kustomization.yaml")

	// A kcp workspace path gets an overlay of its own, with a file-safe name.
	ws := readYAML(t, filepath.Join(e.state, "clusters/root-org-team/kustomization.yaml"))
	assert.Equal(t, []any{"rbac/clusterrolebinding-gitca-kubeconfig-team-admin-admin.yaml"}, ws["resources"])
	// Its Flux Kustomization must not apply into Flux's own cluster: it names a
	// kubeconfig Secret for the workspace, and fails closed until one exists.
	wsk := readYAML(t, filepath.Join(e.state, "flux/root-org-team/gitca-kustomization.yaml"))
	assert.Equal(t, map[string]any{"secretRef": map[string]any{"name": "gitca-root-org-team-kubeconfig"}}, wsk["spec"].(map[string]any)["kubeConfig"])
	assert.Equal(t, "root:org:team", wsk["metadata"].(map[string]any)["annotations"].(map[string]any)[plan.AnnotationKCPWorkspace])

	// The RBAC binds the kubeconfig's group, not its user.
	crb := readYAML(t, filepath.Join(e.state, "clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml"))
	assert.Equal(t, []any{map[string]any{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "kubeconfig:ops"}}, crb["subjects"])
	assert.Equal(t, map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, crb["roleRef"])

	// No private key in plain text anywhere, not in the generator nor the GitOps objects.
	findings, err := state.ScanPlaintextKeys(e.state)
	require.NoError(t, err)
	assert.Empty(t, findings)
}

func readYAML(t *testing.T, p string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(b, &m), p)
	return m
}

func removeDoc(t *testing.T, e *env, file, marker string) {
	t.Helper()
	p := filepath.Join(e.topo, file)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var kept []string
	found := false
	for _, d := range strings.Split(string(b), "---\n") {
		if strings.Contains(d, marker) {
			found = true
			continue
		}
		kept = append(kept, d)
	}
	require.True(t, found, "%s has no document with %q", file, marker)
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(kept, "---\n")), 0o644))
}

func TestDeliveryDeletingKubeconfigRemovesItsBindingsInOneRun(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.run(t0, nil)
	removeDoc(t, e, "pki.yaml", "name: ops\n")
	removeDoc(t, e, "pki.yaml", "name: team-admin\n")
	res := e.run(t0.Add(time.Hour), nil)
	assert.Equal(t, map[string]plan.ActionKind{"Kubeconfig/ops": plan.ActionDelete, "Kubeconfig/team-admin": plan.ActionDelete}, nonKeep(res.Plan))
	for _, p := range []string{
		"clusters/prod/pki/secret-ops.yaml",
		"clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml",
		"clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-pod-reader.yaml",
		// The workspace overlay held only the binding: it goes, and so does what applied it.
		"clusters/root-org-team/rbac/clusterrolebinding-gitca-kubeconfig-team-admin-admin.yaml",
		"clusters/root-org-team/kustomization.yaml",
		"flux/root-org-team/gitca-kustomization.yaml",
	} {
		assert.Contains(t, res.Tree.Delete, p, "deleted in the same run")
		assert.NoFileExists(t, filepath.Join(e.state, p))
	}
	assert.NoDirExists(t, filepath.Join(e.state, "clusters/root-org-team"))
	prod := readYAML(t, filepath.Join(e.state, "clusters/prod/kustomization.yaml"))
	for _, r := range prod["resources"].([]any) {
		assert.NotContains(t, r, "ops")
		assert.NotContains(t, r, "team-admin")
	}
}

func TestDeliveryFlavourSwitch(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.run(t0, nil)
	e.edit("config.yaml", "      flavour: ksops\n", "")
	// Nothing is re-signed or re-sealed: only how the overlay is handed over changes.
	res := e.run(t0.Add(time.Hour), nil)
	assert.Empty(t, nonKeep(res.Plan))
	var delivered []string // the state index (.gitca/) follows every run; it is not delivery
	for _, p := range res.Tree.Paths() {
		if !strings.HasPrefix(p, ".gitca/") {
			delivered = append(delivered, p)
		}
	}
	assert.Equal(t, []string{
		"argocd/edge/gitca-application.yaml",
		"clusters/edge/" + "ksops-generator.yaml",
		"clusters/edge/kustomization.yaml",
		"flux/edge/gitca-gitrepository.yaml",
		"flux/edge/gitca-kustomization.yaml",
		"flux/edge/kustomization.yaml",
	}, delivered)
	edge := readYAML(t, filepath.Join(e.state, "clusters/edge/kustomization.yaml"))
	assert.NotContains(t, edge, "generators")
	assert.Len(t, edge["resources"], 5)
}

func TestDeliveryErrors(t *testing.T) {
	for _, c := range []struct {
		name      string
		file, old string
		new       string
		want      string
	}{
		{"ksops without a repo URL", "config.yaml", "  stateRepository:\n    url: https://git.example.com/platform/state.git\n", "",
			`spec.clusters[1].argocd.repoURL: cluster "edge" uses flavour ksops`},
		{"workspace path colliding with another", "pki.yaml", "      cluster: edge\n      clusterRoles: [edit]", "      cluster: root:org-team\n      clusterRoles: [edit]",
			`overlay clusters/root-org-team would receive both "root:org-team" and "root:org:team"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "testdata/delivery")
			e.edit(c.file, c.old, c.new)
			require.NoError(t, os.MkdirAll(e.state, 0o755))
			before := e.snapshot()
			_, err := e.tryRun(t0, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Empty(t, changedFiles(before, e.snapshot()), "a refused run writes nothing")
		})
	}
}

func TestDeliveryWorkspacePathOntoClusterNameRefused(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	// root:org:team and a cluster literally named root-org-team would share an overlay.
	e.edit("pki.yaml", "  name: gateway\nspec:\n  issuer: edge-ca\n  profile: server\n  dnsNames: [gateway.edge.example.com]\n  validity: 2160h\n  secret:\n    cluster: edge\n",
		"  name: gateway\nspec:\n  issuer: edge-ca\n  profile: server\n  dnsNames: [gateway.edge.example.com]\n  validity: 2160h\n  secret:\n    cluster: root-org-team\n")
	e.edit("config.yaml", "  clusters:\n", "  clusters:\n    - name: root-org-team\n")
	require.NoError(t, os.MkdirAll(e.state, 0o755))
	before := e.snapshot()
	_, err := e.tryRun(t0, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Kubeconfig/team-admin")
	assert.Contains(t, err.Error(), `overlay clusters/root-org-team would receive both "root-org-team" and "root:org:team"`)
	assert.Empty(t, changedFiles(before, e.snapshot()), "a refused run writes nothing")
}

func TestDeliveryContentHash(t *testing.T) {
	e := newEnv(t, "testdata/delivery")
	e.withRecipient()
	e.run(t0, &e.ids)
	ann := func(p string) map[string]any {
		return readYAML(t, filepath.Join(e.state, p))["metadata"].(map[string]any)["annotations"].(map[string]any)
	}
	const cm = "clusters/prod/pki/configmap-api-trust.yaml"
	first := ann(cm)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, first[plan.AnnotationContentHash])
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, first[state.AnnotationSpecHash])
	// The Secret copy in the KSOPS cluster carries the same certificates, so the same digest.
	assert.Equal(t, first[plan.AnnotationContentHash], ann("clusters/edge/certs/secret-api-trust.yaml")[plan.AnnotationContentHash])

	// Leaf renewals do not touch the bundle: its hash stays.
	e.run(t0.Add(25*24*time.Hour), &e.ids)
	assert.Equal(t, first, ann(cm))

	// A re-keyed member CA changes the content hash, not the spec hash.
	e.edit("pki.yaml", "  issuer: root\n  pathLen: 0\n  validity: 43800h\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: edge-ca",
		"  issuer: root\n  pathLen: 0\n  keyAlgorithm: ECDSA-P384\n  validity: 43800h\n---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: edge-ca")
	e.run(t0.Add(26*24*time.Hour), &e.ids)
	after := ann(cm)
	assert.NotEqual(t, first[plan.AnnotationContentHash], after[plan.AnnotationContentHash])
	assert.Equal(t, first[state.AnnotationSpecHash], after[state.AnnotationSpecHash])
}

func TestContentHashSeparatesParts(t *testing.T) {
	assert.Equal(t, plan.ContentHash([]byte("a"), []byte("b")), plan.ContentHash([]byte("a"), []byte("b")))
	assert.NotEqual(t, plan.ContentHash([]byte("ab"), []byte("")), plan.ContentHash([]byte("a"), []byte("b")))
	assert.NotEqual(t, plan.ContentHash([]byte("a")), plan.ContentHash([]byte("a"), nil))
}

// --- the real kustomize, sops and kubectl CLIs on the rendered tree ---

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		// make tools installs into GOPATH/bin, which go test does not put on PATH.
		if gobin := filepath.Join(build.Default.GOPATH, "bin", name); fileExists(gobin) {
			return gobin
		}
		t.Skipf("%s not installed: run `make tools`", name)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func runTool(t *testing.T, env []string, stdin []byte, bin string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// stderr of these tools names files and fields, never decrypted values.
		return out, errors.Join(err, errors.New(stderr.String()))
	}
	return out, nil
}

// docs splits a multi-document YAML stream.
func docs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if m != nil {
			out = append(out, m)
		}
	}
}

// overlayDirsOn lists the overlay directories of a state tree and their flavour.
func overlayDirsOn(t *testing.T, state string) map[string]string {
	t.Helper()
	out := map[string]string{}
	matches, err := filepath.Glob(filepath.Join(state, "clusters", "*", "kustomization.yaml"))
	require.NoError(t, err)
	for _, m := range matches {
		dir := filepath.Dir(m)
		flavour := "flux"
		if fileExists(filepath.Join(dir, "ksops-generator.yaml")) {
			flavour = "ksops"
		}
		out[dir] = flavour
	}
	return out
}

func isSealed(t *testing.T, p string) bool {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var m map[string]any
	if yaml.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m["sops"]
	return ok
}

func TestOverlaysBuildWithKustomizeCLI(t *testing.T) {
	kustomize := lookTool(t, "kustomize")
	sops := lookTool(t, "sops")
	kubectl := lookTool(t, "kubectl")
	for _, c := range []struct{ name, topo string }{
		{"examples-kubeadm", "../examples/kubeadm"},
		{"examples-kcp", "../examples/kcp"},
		{"basic", "testdata/basic"},
		{"delivery", "testdata/delivery"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.topo)
			if c.name == "delivery" {
				e.withRecipient()
			}
			e.run(t0, &e.ids)
			sopsEnv := []string{"SOPS_AGE_KEY_FILE=" + e.keyFile, "SOPS_DISABLE_VERSION_CHECK=1"}
			// kubectl must not find a cluster: these checks are offline by design.
			kubectlEnv := []string{"KUBECONFIG=" + filepath.Join(t.TempDir(), "none"), "HOME=" + t.TempDir(), "KUBERC=off"}

			// The decrypted twin of the tree: what Flux applies after decryption.
			plain := filepath.Join(t.TempDir(), "plain")
			require.NoError(t, os.CopyFS(plain, os.DirFS(e.state)))
			var sealed int
			require.NoError(t, filepath.WalkDir(filepath.Join(plain, "clusters"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !isSealed(t, p) {
					return err
				}
				sealed++
				_, err = runTool(t, sopsEnv, nil, sops, "--decrypt", "--in-place", p)
				return err
			}))
			require.NotZero(t, sealed)

			overlays := overlayDirsOn(t, e.state)
			require.NotEmpty(t, overlays)
			for dir, flavour := range overlays {
				rel, _ := filepath.Rel(e.state, dir)
				t.Run(rel, func(t *testing.T) {
					if flavour == "ksops" {
						ksopsBuild(t, kustomize, sopsEnv, dir)
						return
					}
					out, err := runTool(t, nil, nil, kustomize, "build", dir)
					require.NoError(t, err, "kustomize build %s (sealed, as Flux reads it)", rel)
					var records int
					for _, d := range docs(t, out) {
						meta, _ := d["metadata"].(map[string]any)
						ann, _ := meta["annotations"].(map[string]any)
						if d["kind"] != "Secret" || ann[state.AnnotationRole] == nil {
							assert.NotContains(t, d, "sops", "%v: only records are sealed", meta["name"])
							continue
						}
						records++
						s, ok := d["sops"].(map[string]any)
						require.True(t, ok, "%v has no sops block", meta["name"])
						assert.NotEmpty(t, s["mac"], "%v: the sops block carries a MAC", meta["name"])
						assert.True(t, hasEncrypted(d), "%v: its private values are encrypted", meta["name"])
					}
					var sealedFiles int
					require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
						if err == nil && !d.IsDir() && isSealed(t, p) {
							sealedFiles++
						}
						return err
					}))
					assert.Equal(t, sealedFiles, records, "every sealed file of the overlay is in the build")

					out, err = runTool(t, nil, nil, kustomize, "build", filepath.Join(plain, rel))
					require.NoError(t, err, "kustomize build %s after sops -d", rel)
					assert.NotContains(t, string(out), "ENC[", "every value decrypted")
					for _, d := range docs(t, out) {
						assert.NotContains(t, d, "sops")
					}
					// kubectl apply --dry-run=client needs API discovery from a server even
					// in client mode; offline, kubectl's local mode decodes every object as
					// apply would (the e2e test runs the real dry-run against kube-apiserver).
					names, err := runTool(t, kubectlEnv, out, kubectl, "label", "--local", "-f", "-", "gitca.dev/checked=true", "-o", "name")
					require.NoError(t, err, "kubectl decodes the build of %s", rel)
					assert.Len(t, strings.Fields(string(names)), len(docs(t, out)))
				})
			}
		})
	}
}

func hasEncrypted(d map[string]any) bool {
	sd, _ := d["stringData"].(map[string]any)
	for _, v := range sd {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "ENC[") {
			return true
		}
	}
	return false
}

// ksopsBuild is what Argo CD's repo-server does with a KSOPS overlay. It needs
// the ksops binary; without it, say so (CheckOverlays still builds the overlay
// in-process on every run).
func ksopsBuild(t *testing.T, kustomize string, sopsEnv []string, dir string) {
	t.Helper()
	if _, err := exec.LookPath("ksops"); err != nil {
		t.Skip("ksops not installed (github.com/viaduct-ai/kustomize-sops is not served by the Go module proxy here): KSOPS overlay built in-process only")
	}
	out, err := runTool(t, sopsEnv, nil, kustomize, "build", "--enable-alpha-plugins", "--enable-exec", dir)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "ENC[")
	var kinds []string
	for _, d := range docs(t, out) {
		kinds = append(kinds, d["kind"].(string))
	}
	sort.Strings(kinds)
	assert.Contains(t, kinds, "Secret")
}
