package plan

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// FileKind is what a file of the state tree is.
type FileKind string

const (
	FileRecord        FileKind = "record"         // a sealed Secret of one object (ca/ or an overlay)
	FileCACopy        FileKind = "ca-copy"        // a CA delivered into a cluster, sealed
	FileBundle        FileKind = "trust-bundle"   // a TrustBundle's ConfigMap or Secret
	FileRBAC          FileKind = "rbac"           // a ClusterRoleBinding of a Kubeconfig
	FileKustomization FileKind = "kustomization"  // an overlay's kustomization.yaml or KSOPS generator
	FileGitOps        FileKind = "gitops"         // what makes Flux or Argo CD apply an overlay
	FileSopsConfig    FileKind = "sops-config"    // .sops.yaml
	FileIndex         FileKind = "index"          // the state index
	FileStray         FileKind = "unknown"        // a file in gitca's directories that nothing produces
	FileNamespace     FileKind = "namespace"      // a Namespace an overlay writes into
	fileKindUnplanned FileKind = "unplanned-file" // never in a plan: emit's consistency check names it
)

// derived is a file computed from the topology and public certificates only.
type derived struct {
	kind  FileKind
	owner string
	bytes []byte // nil while a CA it holds is still to be signed (plan time)
	// pending names the CAs this run signs anew that the file holds.
	pending []string
	// certs are a bundle's members, as far as they are known.
	certs []*x509.Certificate
}

// CASource gives the certificates a CA's trust holds after the run: its
// own, and during a rotation its other live generation's. pending names
// those the run signs anew, whose certificates are not known yet (at plan time).
type CASource func(name string) (certs []*x509.Certificate, pending []string)

// derive computes every file that is not a sealed record: trust bundles,
// RBAC, each overlay's kustomization (and KSOPS generator), the GitOps
// objects that apply the overlays, and .sops.yaml. The plan calls it with the
// certificates it knows; emit calls it again with the certificates the run
// ends with, so both see the same function and the same bytes.
func (p *Plan) derive(cas CASource) (map[string]*derived, error) {
	t, l := p.Topology, p.Layout
	out := map[string]*derived{}
	sealed := map[string]bool{}
	for _, a := range p.Objects {
		if a.Action == ActionDelete || a.waitsForCert() {
			continue // no file an overlay could list yet
		}
		sealed[a.Path] = true
		if a.Desired.Copy != nil {
			sealed[a.Desired.Copy.Path] = true
		}
	}
	for _, b := range t.TrustBundles {
		certs, pending, err := p.BundleCerts(b.Metadata.Name, cas)
		if err != nil {
			return nil, err
		}
		var pem string
		if len(pending) == 0 {
			pem = string(sign.EncodeCertsPEM(certs...))
		}
		add := func(path string, obj plainObject) {
			d := &derived{kind: FileBundle, owner: topology.KindTrustBundle + "/" + b.Metadata.Name, pending: pending, certs: certs}
			if len(pending) == 0 {
				d.bytes = mustYAML(obj)
			}
			out[path] = d
		}
		if b.Spec.ConfigMap != nil {
			dl := l.ConfigMap(*b.Spec.ConfigMap)
			add(dl.Path, configMap(dl, b, pem))
		}
		if b.Spec.Secret != nil {
			dl := l.Secret(*b.Spec.Secret)
			add(dl.Path, bundleSecret(dl, b, pem))
		}
	}
	for _, k := range t.Kubeconfigs {
		for path, b := range clusterRoleBindings(l, k) {
			if _, dup := out[path]; dup || sealed[path] {
				return nil, fmt.Errorf("%s/%s: spec.authorization.clusterRoleBindings: %s is rendered twice (another kubeconfig or workspace path maps to the same file)",
					topology.KindKubeconfig, k.Metadata.Name, path)
			}
			out[path] = &derived{kind: FileRBAC, owner: topology.KindKubeconfig + "/" + k.Metadata.Name, bytes: b}
		}
	}
	if err := checkOverlayNames(t, l); err != nil {
		return nil, err
	}
	for path, d := range namespaces(t, l) {
		if _, dup := out[path]; dup || sealed[path] {
			return nil, fmt.Errorf("%s: a Namespace and another object would share this file", path)
		}
		out[path] = d
	}
	files := slices.Collect(maps.Keys(sealed))
	files = append(files, slices.Collect(maps.Keys(out))...)
	for _, o := range overlaysOf(t, l, files, sealed) {
		fl, ok := flavours[o.Cluster.Flavour]
		if !ok {
			return nil, fmt.Errorf("cluster %s: flavour %q has no delivery (have: %s)", o.Name, o.Cluster.Flavour, strings.Join(flavourNames(), ", "))
		}
		gen, err := fl.Overlay(t, l, o)
		if err != nil {
			return nil, err
		}
		for path, f := range gen {
			out[path] = f
		}
	}
	if cfg := sopsConfig(t, l, p.Recipients); cfg != nil {
		out[SopsConfigPath] = &derived{kind: FileSopsConfig, owner: "Config", bytes: cfg}
	}
	return out, nil
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

func mustYAML(v any) []byte {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("plan: marshal %T: %v", v, err)) // our own plain structs always marshal
	}
	return b
}

// Meta is the metadata of every object gitca writes.
type Meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ManagedLabels mark every object gitca writes.
func ManagedLabels() map[string]string {
	return map[string]string{state.LabelManagedBy: state.ManagedByValue}
}

type plainObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Type       string            `json:"type,omitempty"`
	Metadata   Meta              `json:"metadata"`
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

func bundleMeta(dl Delivery, b *topology.TrustBundle, pem string) Meta {
	spec := bundleSpecJSON(b)
	sum := sha256.Sum256(spec)
	ann := maps.Clone(b.Metadata.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[state.AnnotationObject] = topology.KindTrustBundle + "/" + b.Metadata.Name
	ann[state.AnnotationSpecHash] = "sha256:" + hex.EncodeToString(sum[:])
	ann[AnnotationContentHash] = ContentHash(spec, []byte(pem))
	return Meta{Name: dl.Name, Namespace: dl.Namespace, Labels: ManagedLabels(), Annotations: ann}
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
	Metadata   Meta          `json:"metadata"`
	RoleRef    roleRef       `json:"roleRef"`
	Subjects   []rbacSubject `json:"subjects"`
}

// clusterRoleBindings binds the kubeconfig's group (kubeconfig:<name> unless
// overridden), not its user, so two kubeconfigs with one username never share RBAC.
func clusterRoleBindings(l Layout, k *topology.Kubeconfig) map[string][]byte {
	if k.Spec.Authorization == nil || k.Spec.Authorization.ClusterRoleBindings == nil {
		return nil
	}
	crb := k.Spec.Authorization.ClusterRoleBindings
	group := cmpOr(crb.Group, "kubeconfig:"+k.Metadata.Name)
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
			Metadata: Meta{Name: name, Labels: ManagedLabels(),
				Annotations: map[string]string{
					state.AnnotationObject:   topology.KindKubeconfig + "/" + k.Metadata.Name,
					state.AnnotationSpecHash: "sha256:" + hex.EncodeToString(sum[:]),
				}},
			RoleRef:  ref,
			Subjects: subjects,
		}
		out[l.ClusterRoleBinding(crb.Cluster, name)] = mustYAML(obj)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkOverlayNames refuses two targets that land in one overlay directory —
// root:org-team and root:org:team both map to root-org-team, and a workspace
// path can map onto a cluster's name — since one overlay is applied to one
// place and the bindings would be granted where they were not asked for.
func checkOverlayNames(t *topology.Topology, l Layout) error {
	targets := map[string]string{} // overlay dir -> the target that claimed it
	claim := func(target string) error {
		dir := l.ClusterDir(target)
		if prev, ok := targets[dir]; ok && prev != target {
			return fmt.Errorf("overlay %s would receive both %q and %q: rename one of them (a kcp workspace path's ':' becomes '-' in the directory name)", dir, prev, target)
		}
		targets[dir] = target
		return nil
	}
	for _, c := range t.Config.Spec.Clusters {
		if err := claim(c.Name); err != nil {
			return err
		}
	}
	for _, r := range secretRefs(t) {
		if err := claim(r.Cluster); err != nil {
			return err
		}
	}
	for _, k := range t.Kubeconfigs {
		if a := k.Spec.Authorization; a != nil && a.ClusterRoleBindings != nil {
			if err := claim(a.ClusterRoleBindings.Cluster); err != nil {
				return fmt.Errorf("%s/%s: spec.authorization.clusterRoleBindings.cluster: %w", topology.KindKubeconfig, k.Metadata.Name, err)
			}
		}
	}
	return nil
}

// secretRefs lists every place the topology delivers into.
func secretRefs(t *topology.Topology) []topology.SecretRef {
	out := sealedRefs(t)
	for _, b := range t.TrustBundles {
		for _, r := range []*topology.SecretRef{b.Spec.ConfigMap, b.Spec.Secret} {
			if r != nil {
				out = append(out, *r)
			}
		}
	}
	return out
}

// sealedRefs lists the places the topology delivers sealed records into.
func sealedRefs(t *topology.Topology) []topology.SecretRef {
	var out []topology.SecretRef
	for _, o := range t.Certificates {
		out = append(out, o.Spec.Secret)
	}
	for _, o := range t.KeyPairs {
		out = append(out, o.Spec.Secret)
	}
	for _, o := range t.CAs {
		if o.Spec.Secret != nil {
			out = append(out, *o.Spec.Secret)
		}
	}
	for _, k := range t.Kubeconfigs {
		out = append(out, k.Spec.Secret)
	}
	return out
}

// Overlay is one directory Flux or Argo CD applies to one cluster (or kcp workspace).
type Overlay struct {
	Name    string
	Dir     string
	Cluster topology.Cluster
	Files   []string        // relative to Dir, sorted
	Sealed  map[string]bool // of Files, those that carry a sops block
	// Workspace is the kcp workspace path (root:org:team) the overlay is for,
	// empty for a cluster.
	Workspace string
}

// overlaysOf groups files by overlay. Overlays that are not in the Config
// (kcp workspaces, clusters only named by a SecretRef) get the defaults.
func overlaysOf(t *topology.Topology, l Layout, files []string, sealed map[string]bool) []*Overlay {
	byDir := map[string]*Overlay{}
	for _, p := range files {
		dir := l.OverlayDir(p)
		if dir == "" || IsKustomization(p) {
			continue
		}
		o := byDir[dir]
		if o == nil {
			o = &Overlay{Dir: dir, Name: strings.TrimPrefix(dir, clustersDir+"/"), Sealed: map[string]bool{}}
			for _, c := range t.Config.Spec.Clusters {
				if l.ClusterDir(c.Name) == dir {
					o.Name = c.Name
				}
			}
			o.Cluster = t.Cluster(o.Name)
			o.Workspace = workspaceOf(t, l, dir)
			byDir[dir] = o
		}
		rel := strings.TrimPrefix(p, dir+"/")
		o.Files = append(o.Files, rel)
		if sealed[p] {
			o.Sealed[rel] = true
		}
	}
	out := make([]*Overlay, 0, len(byDir))
	for _, d := range slices.Sorted(maps.Keys(byDir)) {
		sort.Strings(byDir[d].Files)
		out = append(out, byDir[d])
	}
	return out
}

// workspaceOf is the kcp workspace path whose bindings land in dir, if any.
func workspaceOf(t *topology.Topology, l Layout, dir string) string {
	for _, k := range t.Kubeconfigs {
		if a := k.Spec.Authorization; a != nil && a.ClusterRoleBindings != nil {
			if c := a.ClusterRoleBindings.Cluster; strings.Contains(c, ":") && l.ClusterDir(c) == dir {
				return c
			}
		}
	}
	return ""
}

// sopsConfig lets people edit or decrypt state files with the sops CLI using the
// same recipients gitca used; nil when no recipients are known.
func sopsConfig(t *topology.Topology, l Layout, r Recipients) []byte {
	if len(r.ForCA()) == 0 {
		return nil
	}
	rules := []secrets.CreationRule{{PathRegex: "^" + regexp.QuoteMeta(caDir) + "/", Age: r.ForCA()}}
	clusters := map[string]bool{}
	for _, c := range t.Config.Spec.Clusters {
		clusters[c.Name] = true
	}
	for _, ref := range sealedRefs(t) {
		clusters[ref.Cluster] = true
	}
	for _, c := range slices.Sorted(maps.Keys(clusters)) {
		rules = append(rules, secrets.CreationRule{PathRegex: "^" + regexp.QuoteMeta(l.ClusterDir(c)) + "/", Age: r.ForCluster(c)})
	}
	return secrets.SopsConfig(rules)
}

// WantedFiles is every file gitca manages once the run is done, with its
// bytes: the derived files computed with the certificates cas gives (Apply's,
// so nothing is pending), and nil for each record, which Apply seals.
func (p *Plan) WantedFiles(cas CASource) (map[string][]byte, error) {
	der, err := p.derive(cas)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(der)+len(p.Objects))
	for path, d := range der {
		if d.bytes == nil {
			return nil, fmt.Errorf("%s: %s has no certificate yet", path, strings.Join(d.pending, ", "))
		}
		out[path] = d.bytes
	}
	for _, a := range p.Objects {
		if a.Action == ActionDelete {
			continue
		}
		out[a.Path] = nil
		if a.Desired.Copy != nil {
			out[a.Desired.Copy.Path] = nil
		}
	}
	for path := range p.off.keep {
		out[path] = nil
	}
	return out, nil
}
