package render

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

// Tree is the complete set of changes a run makes to the state tree.
type Tree struct {
	// Write holds every file whose bytes change, by slash path.
	Write map[string][]byte
	// Delete lists files that gitca manages and no longer produces.
	Delete []string
}

// Empty reports whether the tree changes nothing.
func (tr *Tree) Empty() bool { return len(tr.Write) == 0 && len(tr.Delete) == 0 }

// Paths lists every changed path, sorted.
func (tr *Tree) Paths() []string {
	var out []string
	for p := range tr.Write {
		out = append(out, p)
	}
	out = append(out, tr.Delete...)
	sort.Strings(out)
	return out
}

// Emit adds the files derived from the topology and the final certificates —
// trust bundles, RBAC, one kustomization per cluster overlay, .sops.yaml — to
// Apply's output, and keeps only what actually differs from the state.
func Emit(t *topology.Topology, p *Plan, st *secrets.State, out *Output) (*Tree, error) {
	want := map[string][]byte{} // every file gitca manages, with its desired bytes (nil: keep as is)
	for _, a := range p.Actions {
		if a.Action == ActionDelete {
			continue
		}
		want[a.Path] = nil
		if a.Desired.Copy != nil {
			want[a.Desired.Copy.Path] = nil
		}
	}
	for path, b := range out.Files {
		want[path] = b
	}
	caCert := func(name string) *x509.Certificate {
		if m := out.Materials[string(KindCA)+"/"+name]; m != nil {
			return m.Cert
		}
		return nil
	}
	for _, b := range t.TrustBundles {
		certs, err := BundleCerts(t, b.Metadata.Name, p.Now, caCert)
		if err != nil {
			return nil, err
		}
		pem := string(EncodeCertsPEM(certs...))
		if b.Spec.ConfigMap != nil {
			dl := delivery(t, *b.Spec.ConfigMap, "configmap")
			want[dl.Path] = mustYAML(configMap(dl, b, pem))
		}
		if b.Spec.Secret != nil {
			dl := delivery(t, *b.Spec.Secret, "secret")
			want[dl.Path] = mustYAML(bundleSecret(dl, b, pem))
		}
	}
	for _, k := range t.Kubeconfigs {
		for path, b := range clusterRoleBindings(t, k) {
			want[path] = b
		}
	}
	for path, b := range kustomizations(t, want) {
		want[path] = b
	}
	if cfg := sopsConfig(t, p.recipients); cfg != nil {
		want[".sops.yaml"] = cfg
	}

	tree := &Tree{Write: map[string][]byte{}}
	for path, b := range want {
		if b == nil {
			continue
		}
		old, err := os.ReadFile(filepath.Join(st.Root, filepath.FromSlash(path)))
		if err == nil && bytes.Equal(old, b) {
			continue
		}
		tree.Write[path] = b
	}
	for _, f := range st.Files {
		if _, ok := want[f]; ok {
			continue
		}
		if managedPath(f) {
			tree.Delete = append(tree.Delete, f)
		}
	}
	sort.Strings(tree.Delete)
	return tree, nil
}

// managedPath: gitca owns ca/, clusters/ and .sops.yaml; anything else in the
// state repo (a README, CI files) is left alone.
func managedPath(p string) bool {
	return p == ".sops.yaml" || strings.HasPrefix(p, "ca/") || strings.HasPrefix(p, "clusters/")
}

func mustYAML(v any) []byte {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("render: marshal %T: %v", v, err)) // our own plain structs always marshal
	}
	return b
}

type plainObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Type       string            `json:"type,omitempty"`
	Metadata   manifestMeta      `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
}

func bundleMeta(dl Delivery, b *topology.TrustBundle) manifestMeta {
	ann := map[string]string{secrets.AnnotationObject: topology.KindTrustBundle + "/" + b.Metadata.Name}
	for k, v := range b.Metadata.Annotations {
		ann[k] = v
	}
	return manifestMeta{Name: dl.Name, Namespace: dl.Namespace, Labels: managedLabels(), Annotations: ann}
}

func configMap(dl Delivery, b *topology.TrustBundle, pem string) plainObject {
	return plainObject{APIVersion: "v1", Kind: "ConfigMap", Metadata: bundleMeta(dl, b), Data: map[string]string{"ca.crt": pem}}
}

// bundleSecret holds only public certificates, so it is not sealed; kcp reads
// client-CA bundles from a Secret's tls.crt.
func bundleSecret(dl Delivery, b *topology.TrustBundle, pem string) plainObject {
	return plainObject{APIVersion: "v1", Kind: "Secret", Type: "Opaque", Metadata: bundleMeta(dl, b), StringData: map[string]string{"tls.crt": pem}}
}

type rbacSubject struct {
	Kind     string `json:"kind"`
	APIGroup string `json:"apiGroup"`
	Name     string `json:"name"`
}

type roleRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}

type clusterRoleBinding struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   manifestMeta  `json:"metadata"`
	RoleRef    roleRef       `json:"roleRef"`
	Subjects   []rbacSubject `json:"subjects"`
}

// clusterRoleBindings binds the kubeconfig's group (kubeconfig:<name> unless
// overridden), not its user, so two kubeconfigs with one username never share RBAC.
func clusterRoleBindings(t *topology.Topology, k *topology.Kubeconfig) map[string][]byte {
	if k.Spec.Authorization == nil || k.Spec.Authorization.ClusterRoleBindings == nil {
		return nil
	}
	crb := k.Spec.Authorization.ClusterRoleBindings
	group := crb.Group
	if group == "" {
		group = "kubeconfig:" + k.Metadata.Name
	}
	out := map[string][]byte{}
	for _, role := range crb.ClusterRoles {
		name := "gitca:kubeconfig:" + k.Metadata.Name + ":" + role
		if crb.Name != "" && len(crb.ClusterRoles) == 1 {
			name = crb.Name
		}
		obj := clusterRoleBinding{
			APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding",
			Metadata: manifestMeta{Name: name, Labels: managedLabels(),
				Annotations: map[string]string{secrets.AnnotationObject: topology.KindKubeconfig + "/" + k.Metadata.Name}},
			RoleRef:  roleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects: []rbacSubject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: group}},
		}
		p := path.Join(ClusterDir(t, overlayName(crb.Cluster)), "rbac", "clusterrolebinding-"+fileSafe(name)+".yaml")
		out[p] = mustYAML(obj)
	}
	return out
}

// overlayName maps a binding target to an overlay: a cluster name as is, a kcp
// workspace path (root:org:team) to one overlay per workspace.
func overlayName(cluster string) string { return fileSafe(cluster) }

// fileSafe keeps file names portable: ':' is not allowed on every filesystem.
func fileSafe(s string) string { return strings.ReplaceAll(s, ":", "-") }

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// kustomizations lists, per cluster overlay, every manifest gitca renders into it.
func kustomizations(t *topology.Topology, want map[string][]byte) map[string][]byte {
	byDir := map[string][]string{}
	for p := range want {
		if !strings.HasPrefix(p, "clusters/") && !isCustomClusterPath(t, p) {
			continue
		}
		dir := overlayDirOf(t, p)
		if dir == "" {
			continue
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if rel == "kustomization.yaml" {
			continue
		}
		byDir[dir] = append(byDir[dir], rel)
	}
	out := map[string][]byte{}
	for dir, res := range byDir {
		sort.Strings(res)
		out[dir+"/kustomization.yaml"] = mustYAML(kustomization{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Resources: res})
	}
	return out
}

func isCustomClusterPath(t *topology.Topology, p string) bool { return overlayDirOf(t, p) != "" }

// overlayDirOf returns the cluster overlay directory a path lives in.
func overlayDirOf(t *topology.Topology, p string) string {
	for _, c := range t.Config.Spec.Clusters {
		d := ClusterDir(t, c.Name)
		if strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	if strings.HasPrefix(p, "clusters/") {
		parts := strings.SplitN(p, "/", 3)
		if len(parts) == 3 {
			return parts[0] + "/" + parts[1]
		}
	}
	return ""
}

// sopsConfig lets people edit or decrypt state files with the sops CLI using the
// same recipients gitca used; nil when no recipients are known.
func sopsConfig(t *topology.Topology, r Recipients) []byte {
	if len(r.ForCA()) == 0 {
		return nil
	}
	rules := []secrets.CreationRule{{PathRegex: `^ca/`, Age: r.ForCA()}}
	clusters := map[string]bool{}
	for _, c := range t.Config.Spec.Clusters {
		clusters[c.Name] = true
	}
	for _, o := range t.Certificates {
		clusters[o.Spec.Secret.Cluster] = true
	}
	for _, o := range t.KeyPairs {
		clusters[o.Spec.Secret.Cluster] = true
	}
	for _, o := range t.Kubeconfigs {
		clusters[o.Spec.Secret.Cluster] = true
	}
	for _, o := range t.CAs {
		if o.Spec.Secret != nil {
			clusters[o.Spec.Secret.Cluster] = true
		}
	}
	for _, c := range sortedKeys(clusters) {
		rules = append(rules, secrets.CreationRule{PathRegex: "^" + regexpQuote(ClusterDir(t, c)) + "/", Age: r.ForCluster(c)})
	}
	return secrets.SopsConfig(rules)
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Write applies a tree to a state directory. Each file is written to a
// temporary name in its own directory and renamed into place, so a reader
// never sees half a file; the temporary files hold sealed content only.
func Write(dir string, tr *Tree) error {
	paths := make([]string, 0, len(tr.Write))
	for p := range tr.Write {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	type staged struct{ tmp, final string }
	var done []staged
	cleanup := func() {
		for _, s := range done {
			os.Remove(s.tmp)
		}
	}
	for _, p := range paths {
		final := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			cleanup()
			return err
		}
		f, err := os.CreateTemp(filepath.Dir(final), ".gitca-*")
		if err != nil {
			cleanup()
			return err
		}
		done = append(done, staged{f.Name(), final})
		if _, err := f.Write(tr.Write[p]); err != nil {
			f.Close()
			cleanup()
			return err
		}
		if err := f.Close(); err != nil {
			cleanup()
			return err
		}
		if err := os.Chmod(f.Name(), 0o644); err != nil {
			cleanup()
			return err
		}
	}
	// Every file is staged; only renames and removals remain.
	for _, s := range done {
		if err := os.Rename(s.tmp, s.final); err != nil {
			cleanup()
			return err
		}
	}
	for _, p := range tr.Delete {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil && !os.IsNotExist(err) {
			return err
		}
		removeEmptyParents(dir, filepath.Dir(filepath.Join(dir, filepath.FromSlash(p))))
	}
	return nil
}

func removeEmptyParents(root, d string) {
	for d != root && strings.HasPrefix(d, root) {
		if err := os.Remove(d); err != nil {
			return
		}
		d = filepath.Dir(d)
	}
}
