package render

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	kusttypes "sigs.k8s.io/kustomize/api/types"
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

// AnnotationContentHash is a digest of an object's public content (its
// certificates and the spec that made them), never of private values or
// ciphertext: it changes exactly when the certificates change, so a workload
// can copy it into its pod template and roll then, and only then.
const AnnotationContentHash = "gitca.dev/content-hash"

// ContentHash is "sha256:<hex>" over the given parts, each length-prefixed so
// that moving bytes from one part to the next changes the digest.
func ContentHash(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Emit adds the files derived from the topology and the final certificates —
// trust bundles, RBAC, one kustomization per cluster overlay, the Flux
// Kustomization or Argo CD Application that applies it, .sops.yaml — to
// Apply's output, and keeps only what actually differs from the state.
// Bundles and kustomizations are recomputed on every run from the certificates
// the run ends with, so a CA that changes updates every bundle holding it in
// the same commit.
func Emit(t *topology.Topology, p *Plan, st *secrets.State, out *Output) (*Tree, error) {
	want := map[string][]byte{} // every file gitca manages, with its desired bytes (nil: keep as is)
	sealed := map[string]bool{} // files that carry a sops block
	for _, a := range p.Actions {
		if a.Action == ActionDelete {
			continue
		}
		want[a.Path] = nil
		sealed[a.Path] = true
		if a.Desired.Copy != nil {
			want[a.Desired.Copy.Path] = nil
			sealed[a.Desired.Copy.Path] = true
		}
	}
	for path, rec := range out.Records {
		want[path] = rec.Raw
		sealed[path] = true
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
			if _, dup := want[path]; dup {
				return nil, fmt.Errorf("%s/%s: spec.authorization.clusterRoleBindings: %s is rendered twice (another kubeconfig or workspace path maps to the same file)",
					topology.KindKubeconfig, k.Metadata.Name, path)
			}
			want[path] = b
		}
	}
	if err := checkOverlayNames(t, want); err != nil {
		return nil, err
	}
	files, err := overlayFiles(t, want, sealed)
	if err != nil {
		return nil, err
	}
	for path, b := range files {
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
		old, err := stateBytes(st, path)
		if err == nil && bytes.Equal(old, b) {
			continue
		}
		tree.Write[path] = b
	}
	// What is not wanted goes: files in gitca's directories, and the records
	// the plan deletes or moves (also outside them, e.g. under the custom path
	// of a cluster that left the topology) — unless another object now writes
	// the same path.
	deletes := map[string]bool{}
	for _, f := range st.Files {
		if managedPath(t, f) {
			deletes[f] = true
		}
	}
	for _, d := range out.Deletes {
		deletes[d] = true
	}
	for f := range deletes {
		if _, ok := want[f]; !ok {
			tree.Delete = append(tree.Delete, f)
		}
	}
	sort.Strings(tree.Delete)
	return tree, nil
}

// Where the GitOps objects that apply each overlay live: outside clusters/, so
// an overlay never contains (and applies) the object that points at it, and
// one directory per cluster, so a cluster's bootstrap points at its own.
const (
	FluxDir = "flux"
	ArgoDir = "argocd"
)

// managedPath: gitca owns ca/, clusters/ (and overlays moved elsewhere by
// spec.clusters[].path), flux/, argocd/ and .sops.yaml; anything else in the
// state repo (a README, CI files) is left alone.
func managedPath(t *topology.Topology, p string) bool {
	if p == ".sops.yaml" {
		return true
	}
	for _, d := range []string{"ca/", "clusters/", FluxDir + "/", ArgoDir + "/"} {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	for _, c := range t.Config.Spec.Clusters {
		if c.Path != "" && strings.HasPrefix(p, ClusterDir(t, c.Name)+"/") {
			return true
		}
	}
	return false
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

// bundleSpecJSON is what a bundle is made from, canonically: its sources in
// the order written (order is not significant for the result, but a reordering
// is still an edit someone made).
func bundleSpecJSON(b *topology.TrustBundle) []byte {
	j, err := json.Marshal(b.Spec.Sources)
	if err != nil {
		panic(err) // a slice of string structs always marshals
	}
	return j
}

func bundleMeta(dl Delivery, b *topology.TrustBundle, pem string) manifestMeta {
	spec := bundleSpecJSON(b)
	sum := sha256.Sum256(spec)
	ann := map[string]string{}
	for k, v := range b.Metadata.Annotations {
		ann[k] = v
	}
	ann[secrets.AnnotationObject] = topology.KindTrustBundle + "/" + b.Metadata.Name
	ann[secrets.AnnotationSpecHash] = "sha256:" + hex.EncodeToString(sum[:])
	ann[AnnotationContentHash] = ContentHash(spec, []byte(pem))
	return manifestMeta{Name: dl.Name, Namespace: dl.Namespace, Labels: managedLabels(), Annotations: ann}
}

func configMap(dl Delivery, b *topology.TrustBundle, pem string) plainObject {
	return plainObject{APIVersion: "v1", Kind: "ConfigMap", Metadata: bundleMeta(dl, b, pem), Data: map[string]string{"ca.crt": pem}}
}

// bundleSecret holds only public certificates, so it is not sealed; kcp reads
// client-CA bundles from a Secret's tls.crt.
func bundleSecret(dl Delivery, b *topology.TrustBundle, pem string) plainObject {
	return plainObject{APIVersion: "v1", Kind: "Secret", Type: "Opaque", Metadata: bundleMeta(dl, b, pem), StringData: map[string]string{"tls.crt": pem}}
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
		ref := roleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role}
		subjects := []rbacSubject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: group}}
		spec, err := json.Marshal(struct {
			RoleRef  roleRef       `json:"roleRef"`
			Subjects []rbacSubject `json:"subjects"`
		}{ref, subjects})
		if err != nil {
			panic(err) // plain strings always marshal
		}
		sum := sha256.Sum256(spec)
		obj := clusterRoleBinding{
			APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding",
			Metadata: manifestMeta{Name: name, Labels: managedLabels(),
				Annotations: map[string]string{
					secrets.AnnotationObject:   topology.KindKubeconfig + "/" + k.Metadata.Name,
					secrets.AnnotationSpecHash: "sha256:" + hex.EncodeToString(sum[:]),
				}},
			RoleRef:  ref,
			Subjects: subjects,
		}
		p := path.Join(ClusterDir(t, overlayName(crb.Cluster)), "rbac", "clusterrolebinding-"+fileSafe(name)+".yaml")
		out[p] = mustYAML(obj)
	}
	return out
}

// overlayName maps a binding target to an overlay: a cluster name as is, a kcp
// workspace path (root:org:team) to one overlay per workspace, its separators
// made file-safe (root-org-team). checkOverlayNames refuses the collisions
// that mapping can cause.
func overlayName(cluster string) string { return fileSafe(cluster) }

// fileSafe keeps file names portable: ':' is not allowed on every filesystem.
func fileSafe(s string) string { return strings.ReplaceAll(s, ":", "-") }

// checkOverlayNames refuses two binding targets that land in one overlay
// directory — root:org-team and root:org:team both map to root-org-team, and a
// workspace path can map onto a cluster's name — since one overlay is applied
// to one place and the bindings would be granted where they were not asked for.
func checkOverlayNames(t *topology.Topology, want map[string][]byte) error {
	targets := map[string]string{} // overlay dir -> the target that claimed it
	claim := func(dir, target string) error {
		if prev, ok := targets[dir]; ok && prev != target {
			return fmt.Errorf("overlay %s would receive both %q and %q: rename one of them (a kcp workspace path's ':' becomes '-' in the directory name)", dir, prev, target)
		}
		targets[dir] = target
		return nil
	}
	for _, c := range t.Config.Spec.Clusters {
		if err := claim(ClusterDir(t, c.Name), c.Name); err != nil {
			return err
		}
	}
	secretCluster := func(r topology.SecretRef) error { return claim(ClusterDir(t, r.Cluster), r.Cluster) }
	for _, o := range t.Certificates {
		if err := secretCluster(o.Spec.Secret); err != nil {
			return err
		}
	}
	for _, o := range t.KeyPairs {
		if err := secretCluster(o.Spec.Secret); err != nil {
			return err
		}
	}
	for _, o := range t.CAs {
		if o.Spec.Secret != nil {
			if err := secretCluster(*o.Spec.Secret); err != nil {
				return err
			}
		}
	}
	for _, b := range t.TrustBundles {
		for _, r := range []*topology.SecretRef{b.Spec.ConfigMap, b.Spec.Secret} {
			if r != nil {
				if err := secretCluster(*r); err != nil {
					return err
				}
			}
		}
	}
	for _, k := range t.Kubeconfigs {
		if err := secretCluster(k.Spec.Secret); err != nil {
			return err
		}
	}
	for _, k := range t.Kubeconfigs {
		if a := k.Spec.Authorization; a != nil && a.ClusterRoleBindings != nil {
			c := a.ClusterRoleBindings.Cluster
			if err := claim(ClusterDir(t, overlayName(c)), c); err != nil {
				return fmt.Errorf("%s/%s: spec.authorization.clusterRoleBindings.cluster: %w", topology.KindKubeconfig, k.Metadata.Name, err)
			}
		}
	}
	return nil
}

// overlay is one directory Flux or Argo CD applies to one cluster (or kcp workspace).
type overlay struct {
	name    string
	dir     string
	flavour topology.Flavour
	files   []string // relative to dir, sorted
	// workspace is the kcp workspace path (root:org:team) the overlay is for,
	// empty for a cluster.
	workspace string
}

// overlaysOf groups the managed files by overlay. Overlays that are not in the
// Config (kcp workspaces, clusters only named by a SecretRef) get the defaults.
func overlaysOf(t *topology.Topology, want map[string][]byte) []*overlay {
	byDir := map[string]*overlay{}
	for p := range want {
		dir := overlayDirOf(t, p)
		if dir == "" {
			continue
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if rel == "kustomization.yaml" || rel == ksopsGeneratorFile {
			continue
		}
		o := byDir[dir]
		if o == nil {
			o = &overlay{dir: dir, name: strings.TrimPrefix(dir, "clusters/")}
			for _, c := range t.Config.Spec.Clusters {
				if ClusterDir(t, c.Name) == dir {
					o.name = c.Name
				}
			}
			o.flavour = t.Cluster(o.name).Flavour
			o.workspace = workspaceOf(t, dir)
			byDir[dir] = o
		}
		o.files = append(o.files, rel)
	}
	out := make([]*overlay, 0, len(byDir))
	for _, d := range slices.Sorted(maps.Keys(byDir)) {
		sort.Strings(byDir[d].files)
		out = append(out, byDir[d])
	}
	return out
}

// workspaceOf is the kcp workspace path whose bindings land in dir, if any.
func workspaceOf(t *topology.Topology, dir string) string {
	for _, k := range t.Kubeconfigs {
		if a := k.Spec.Authorization; a != nil && a.ClusterRoleBindings != nil {
			if c := a.ClusterRoleBindings.Cluster; strings.Contains(c, ":") && ClusterDir(t, overlayName(c)) == dir {
				return c
			}
		}
	}
	return ""
}

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

// ksopsGeneratorFile is the KSOPS generator of a ksops-flavour overlay.
const ksopsGeneratorFile = "ksops-generator.yaml"

// overlayFiles writes, per overlay, its kustomization.yaml (and for the ksops
// flavour its KSOPS generator), plus the object that makes the GitOps agent
// apply it.
//
// Flux decrypts sealed files itself (decryption.provider: sops), so every file
// is a plain resource. Argo CD does not: sealed Secrets go through the KSOPS
// generator, which decrypts them during the build, and everything else stays a
// resource.
func overlayFiles(t *topology.Topology, want map[string][]byte, sealed map[string]bool) (map[string][]byte, error) {
	out := map[string][]byte{}
	opts := deliveryOptionsOf(t)
	for _, o := range overlaysOf(t, want) {
		k := kusttypes.Kustomization{TypeMeta: kusttypes.TypeMeta{APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind}}
		switch o.flavour {
		case topology.FlavourKSOPS:
			var files []string
			for _, f := range o.files {
				if sealed[o.dir+"/"+f] {
					files = append(files, "./"+f)
				} else {
					k.Resources = append(k.Resources, f)
				}
			}
			if len(files) > 0 {
				k.Generators = []string{ksopsGeneratorFile}
				out[o.dir+"/"+ksopsGeneratorFile] = mustYAML(ksopsGenerator(o.name, files))
			}
			if opts.ArgoRepoURL == "" {
				return nil, fmt.Errorf("cluster %s uses flavour ksops: set the Config annotation %s to the state repo's URL, for its Argo CD Application", o.name, AnnotationArgoRepoURL)
			}
			out[path.Join(ArgoDir, o.name, "gitca-application.yaml")] = mustYAML(argoApplication(o, opts))
		default:
			k.Resources = o.files
			out[path.Join(FluxDir, o.name, "gitca-kustomization.yaml")] = mustYAML(fluxKustomization(o, opts))
		}
		out[o.dir+"/kustomization.yaml"] = mustYAML(k)
	}
	return out, nil
}

// Config annotations that set how overlays are handed to Flux and Argo CD,
// with the defaults a stock `flux bootstrap` or Argo CD install expects. They
// are annotations until the Config schema grows fields for them.
const (
	AnnotationFluxSource     = "gitca.dev/flux-source"            // [namespace/]name of the GitRepository holding the state repo; default flux-system/flux-system
	AnnotationFluxDecryption = "gitca.dev/flux-decryption-secret" // Secret in the Flux namespace holding the cluster's age key; default sops-age
	AnnotationFluxInterval   = "gitca.dev/flux-interval"          // default 10m
	AnnotationArgoRepoURL    = "gitca.dev/argocd-repo-url"        // the state repo as Argo CD fetches it; required for ksops clusters
	AnnotationArgoRevision   = "gitca.dev/argocd-revision"        // default HEAD
	AnnotationArgoProject    = "gitca.dev/argocd-project"         // default default
	AnnotationArgoNamespace  = "gitca.dev/argocd-namespace"       // default argocd
	DefaultFluxNamespace     = "flux-system"
	// AnnotationKCPWorkspace marks a workspace overlay's Flux Kustomization
	// with the workspace path it must be pointed at.
	AnnotationKCPWorkspace      = "gitca.dev/kcp-workspace"
	DefaultFluxSource           = "flux-system"
	DefaultFluxDecryptionSecret = "sops-age"
)

type deliveryOptions struct {
	FluxNamespace, FluxSource, FluxDecryptionSecret, FluxInterval string
	ArgoRepoURL, ArgoRevision, ArgoProject, ArgoNamespace         string
}

func deliveryOptionsOf(t *topology.Topology) deliveryOptions {
	a := t.Config.Metadata.Annotations
	get := func(k, def string) string {
		if v := strings.TrimSpace(a[k]); v != "" {
			return v
		}
		return def
	}
	o := deliveryOptions{
		FluxNamespace:        DefaultFluxNamespace,
		FluxSource:           get(AnnotationFluxSource, DefaultFluxSource),
		FluxDecryptionSecret: get(AnnotationFluxDecryption, DefaultFluxDecryptionSecret),
		FluxInterval:         get(AnnotationFluxInterval, "10m"),
		ArgoRepoURL:          get(AnnotationArgoRepoURL, ""),
		ArgoRevision:         get(AnnotationArgoRevision, "HEAD"),
		ArgoProject:          get(AnnotationArgoProject, "default"),
		ArgoNamespace:        get(AnnotationArgoNamespace, "argocd"),
	}
	if ns, name, ok := strings.Cut(o.FluxSource, "/"); ok {
		o.FluxNamespace, o.FluxSource = ns, name
	}
	return o
}

type objectRef struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type fluxKustomizationSpec struct {
	Interval  string    `json:"interval"`
	Path      string    `json:"path"`
	Prune     bool      `json:"prune"`
	SourceRef objectRef `json:"sourceRef"`
	// KubeConfig points Flux at a remote API server: a kcp workspace is not
	// the cluster Flux runs in.
	KubeConfig *struct {
		SecretRef objectRef `json:"secretRef"`
	} `json:"kubeConfig,omitempty"`
	Decryption struct {
		Provider  string    `json:"provider"`
		SecretRef objectRef `json:"secretRef"`
	} `json:"decryption"`
}

type fluxKustomizationObject struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Metadata   manifestMeta          `json:"metadata"`
	Spec       fluxKustomizationSpec `json:"spec"`
}

// fluxKustomization makes Flux's kustomize-controller apply the overlay and
// decrypt its sealed Secrets with the cluster's age key.
func fluxKustomization(o *overlay, opts deliveryOptions) fluxKustomizationObject {
	k := fluxKustomizationObject{
		APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization",
		Metadata: manifestMeta{Name: "gitca-" + fileSafe(o.name), Namespace: opts.FluxNamespace, Labels: managedLabels()},
		Spec: fluxKustomizationSpec{
			Interval:  opts.FluxInterval,
			Path:      "./" + o.dir,
			Prune:     true,
			SourceRef: objectRef{Kind: "GitRepository", Name: opts.FluxSource},
		},
	}
	k.Spec.Decryption.Provider = "sops"
	k.Spec.Decryption.SecretRef = objectRef{Name: opts.FluxDecryptionSecret}
	if o.workspace != "" {
		// Applied to Flux's own cluster, a workspace's bindings would grant
		// roles there. Name a kubeconfig Secret for the workspace instead: until
		// someone provides it, Flux fails closed.
		k.Metadata.Annotations = map[string]string{AnnotationKCPWorkspace: o.workspace}
		k.Spec.KubeConfig = &struct {
			SecretRef objectRef `json:"secretRef"`
		}{objectRef{Name: "gitca-" + fileSafe(o.name) + "-kubeconfig"}}
	}
	return k
}

type argoApplicationObject struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   manifestMeta `json:"metadata"`
	Spec       struct {
		Project string `json:"project"`
		Source  struct {
			RepoURL        string `json:"repoURL"`
			TargetRevision string `json:"targetRevision"`
			Path           string `json:"path"`
		} `json:"source"`
		Destination struct {
			Name string `json:"name"`
		} `json:"destination"`
		SyncPolicy struct {
			Automated struct {
				Prune    bool `json:"prune"`
				SelfHeal bool `json:"selfHeal"`
			} `json:"automated"`
		} `json:"syncPolicy"`
	} `json:"spec"`
}

// argoApplication makes Argo CD sync the overlay into the cluster registered
// under the overlay's name. Its repo-server needs the ksops binary and
// kustomize.buildOptions "--enable-alpha-plugins --enable-exec".
func argoApplication(o *overlay, opts deliveryOptions) argoApplicationObject {
	var a argoApplicationObject
	a.APIVersion, a.Kind = "argoproj.io/v1alpha1", "Application"
	a.Metadata = manifestMeta{Name: "gitca-" + fileSafe(o.name), Namespace: opts.ArgoNamespace, Labels: managedLabels()}
	a.Spec.Project = opts.ArgoProject
	a.Spec.Source.RepoURL = opts.ArgoRepoURL
	a.Spec.Source.TargetRevision = opts.ArgoRevision
	a.Spec.Source.Path = o.dir
	a.Spec.Destination.Name = o.name
	a.Spec.SyncPolicy.Automated.Prune = true
	a.Spec.SyncPolicy.Automated.SelfHeal = true
	return a
}

type ksopsGeneratorObject struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   manifestMeta `json:"metadata"`
	Files      []string     `json:"files"`
}

// ksopsGenerator is KSOPS's exec KRM function form (ksops v4), which
// `kustomize build --enable-alpha-plugins --enable-exec` runs.
func ksopsGenerator(name string, files []string) ksopsGeneratorObject {
	return ksopsGeneratorObject{
		APIVersion: "viaduct.ai/v1", Kind: "ksops",
		Metadata: manifestMeta{Name: "gitca-" + fileSafe(name) + "-secrets",
			Annotations: map[string]string{"config.kubernetes.io/function": "exec:\n  path: ksops\n"}},
		Files: files,
	}
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
	for _, c := range slices.Sorted(maps.Keys(clusters)) {
		rules = append(rules, secrets.CreationRule{PathRegex: "^" + regexp.QuoteMeta(ClusterDir(t, c)) + "/", Age: r.ForCluster(c)})
	}
	return secrets.SopsConfig(rules)
}
