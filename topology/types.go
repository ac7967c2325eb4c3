// Package topology loads, defaults, validates and expands the declared PKI of a topology repo.
package topology

import (
	"time"
)

// APIVersion is the only schema version gitca reads today.
const APIVersion = "gitca.dev/v1alpha1"

// Kinds of documents a topology repo may hold.
const (
	KindConfig               = "Config"
	KindCertificateAuthority = "CertificateAuthority"
	KindCertificate          = "Certificate"
	KindKeyPair              = "KeyPair"
	KindKubeconfig           = "Kubeconfig"
	KindTrustBundle          = "TrustBundle"
	KindPreset               = "Preset"
)

// Position is where a value was declared, so every error can point at it.
type Position struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// Origin records where a document came from and where each of its fields sits.
// Fields are keyed by their dotted path as a user writes it ("spec.dnsNames[2]").
// Objects expanded from a Preset point at the Preset document.
type Origin struct {
	Position
	Fields map[string]Position `json:"-"`
	// Preset names the Preset that generated this object, empty for hand-written ones.
	Preset string `json:"preset,omitempty"`
}

// At returns the position of a field path, falling back to the closest declared parent
// and finally to the document itself.
func (o Origin) At(path string) Position {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := o.Fields[p]; ok {
			return pos
		}
	}
	return o.Position
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.':
			return p[:i]
		case '[':
			return p[:i]
		}
	}
	return ""
}

// ObjectMeta is the subset of Kubernetes metadata a topology object has.
// Annotations are copied onto every rendered object, which is how presets
// tell exporters where a file belongs (see AnnotationKubeadmFile).
type ObjectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Well-known annotations gitca writes or reads.
const (
	AnnotationKubeadmFile = "gitca.dev/kubeadm-file" // path below the kubeadm root, without extension ("pki/etcd/server", "admin.conf")
	AnnotationNode        = "gitca.dev/node"         // node a per-node object belongs to
	AnnotationCluster     = "gitca.dev/cluster"      // kubeadm cluster a preset object belongs to
)

// Duration is a time.Duration written as Go duration text ("8760h", "30m"), or whole days ("365d").
type Duration struct{ time.Duration }

// KeyAlgorithm names a private key type and size.
type KeyAlgorithm string

const (
	ECDSAP256 KeyAlgorithm = "ECDSA-P256"
	ECDSAP384 KeyAlgorithm = "ECDSA-P384"
	Ed25519   KeyAlgorithm = "Ed25519"
	RSA2048   KeyAlgorithm = "RSA-2048"
	RSA3072   KeyAlgorithm = "RSA-3072"
	RSA4096   KeyAlgorithm = "RSA-4096"
)

// KeyAlgorithms lists every supported algorithm in the order error messages show them.
var KeyAlgorithms = []KeyAlgorithm{ECDSAP256, ECDSAP384, Ed25519, RSA2048, RSA3072, RSA4096}

// Profile is what a leaf certificate is for; it decides its key usages.
type Profile string

const (
	ProfileServer Profile = "server" // serverAuth
	ProfileClient Profile = "client" // clientAuth
	ProfilePeer   Profile = "peer"   // serverAuth and clientAuth
)

// Profiles lists the leaf profiles in the order error messages show them.
var Profiles = []Profile{ProfileServer, ProfileClient, ProfilePeer}

// RotationPolicy says whether a renewal makes a new private key.
type RotationPolicy string

const (
	RotateAlways RotationPolicy = "Always" // a new key on every renewal (default for leafs)
	RotateNever  RotationPolicy = "Never"  // keep the key across renewals (default for CAs and key pairs)
)

// Flavour is how a cluster overlay hands encrypted Secrets to its GitOps agent.
type Flavour string

const (
	FlavourFlux  Flavour = "flux"  // Flux kustomize-controller decrypts with decryption.provider: sops
	FlavourKSOPS Flavour = "ksops" // Argo CD with the KSOPS generator
)

// Subject is the X.509 subject gitca sets.
type Subject struct {
	CommonName         string   `json:"commonName,omitempty"`
	Organizations      []string `json:"organizations,omitempty"`
	OrganizationalUnit []string `json:"organizationalUnits,omitempty"`
	Countries          []string `json:"countries,omitempty"`
	Localities         []string `json:"localities,omitempty"`
}

// ValidityPolicy is how long a certificate lives and when it is renewed.
// RenewBefore defaults to one third of Validity.
type ValidityPolicy struct {
	Validity    *Duration `json:"validity,omitempty"`
	RenewBefore *Duration `json:"renewBefore,omitempty"`
}

// SecretRef names where a rendered object is delivered: a Secret (or ConfigMap)
// in a namespace of a cluster overlay. Namespace defaults to the cluster's
// namespace, Name to the object's name.
type SecretRef struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Config holds run-wide settings. At most one Config document may exist.
type Config struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       ConfigSpec `json:"spec"`
	Origin     Origin     `json:"-"`
}

type ConfigSpec struct {
	Defaults Defaults `json:"defaults,omitempty"`
	// Reconciler lists the age recipients that can open ca/ (CA keys) and every overlay.
	// Empty means SOPS_AGE_RECIPIENTS at render time, as with the sops CLI.
	Reconciler Recipients `json:"reconciler,omitempty"`
	// Clusters lists the delivery targets. While it is empty, any cluster a
	// SecretRef names exists with the defaults (flux, namespace "default",
	// reconciler recipients only); once it lists one, every SecretRef and
	// clusterRoleBindings.cluster (except kcp workspace paths, root:org) must
	// name a listed cluster, Presets' own clusters included.
	Clusters []Cluster `json:"clusters,omitempty"`
	// StateRepository is the state repo as the clusters' GitOps agents fetch
	// it. When set, gitca writes each flux cluster's GitRepository (the
	// cluster's flux.source) and uses the URL as Argo CD's repoURL default.
	StateRepository *StateRepository `json:"stateRepository,omitempty"`
	// AllowDelete names objects ("<Kind>/<name>") a plan may delete although
	// the destruction guard would refuse: a CA, or most of the objects.
	AllowDelete []string `json:"allowDelete,omitempty"`
}

// Recipients are age public keys ("age1...").
type Recipients struct {
	Age []string `json:"age,omitempty"`
	// BreakGlass recipients can open ca/ too; they are meant to be kept offline.
	BreakGlass []string `json:"breakGlass,omitempty"`
}

type Defaults struct {
	KeyAlgorithm KeyAlgorithm   `json:"keyAlgorithm,omitempty"` // default ECDSA-P256
	CA           ValidityPolicy `json:"ca,omitempty"`           // default 87600h, renew 720h before
	Leaf         ValidityPolicy `json:"leaf,omitempty"`         // default 8760h, renew a third before
}

type Cluster struct {
	Name string `json:"name"`
	// Recipients are the cluster's own age keys (its Flux or Argo CD key); the
	// reconciler's recipients are always added.
	Recipients []string `json:"recipients,omitempty"`
	Flavour    Flavour  `json:"flavour,omitempty"`   // default flux
	Namespace  string   `json:"namespace,omitempty"` // default namespace for SecretRefs, default "default"
	// Path overrides the overlay directory in the state repo (default clusters/<name>).
	Path string `json:"path,omitempty"`
	// Flux is how a flux cluster's Flux applies the overlay; ArgoCD how a
	// ksops cluster's Argo CD does. Both are defaulted on every cluster; a
	// section written for the other flavour is an error. They replace the
	// Config annotations gitca.dev/flux-* and gitca.dev/argocd-*, which are
	// still read (for every cluster, where the typed field is unset) with a
	// deprecation warning.
	Flux   FluxSettings   `json:"flux,omitempty"`
	ArgoCD ArgoCDSettings `json:"argocd,omitempty"`
	// Namespaces says whether the overlay declares the Namespace objects it writes into.
	Namespaces NamespacePolicy `json:"namespaces,omitempty"`
}

// FluxSettings are the fields of the Flux Kustomization (and the source it
// reads) that apply a flux cluster's overlay. Durations are written as
// everywhere in the topology and given to Flux in Go's form ("10m", "8760h").
type FluxSettings struct {
	// Source is the Flux source holding the state repo; default the
	// GitRepository gitca-state in flux-system, which gitca writes itself.
	// (flux-system/flux-system, the old default, is the fleet repository
	// after flux bootstrap, not the state repo.)
	Source           FluxSourceRef `json:"source,omitempty"`
	Interval         *Duration     `json:"interval,omitempty"`         // default 10m
	RetryInterval    *Duration     `json:"retryInterval,omitempty"`    // default 2m: a failure is retried before the next interval
	Timeout          *Duration     `json:"timeout,omitempty"`          // default 5m
	DecryptionSecret string        `json:"decryptionSecret,omitempty"` // Secret next to the Kustomization holding the cluster's age key (a key ending in .agekey); default sops-age
	// Path is the overlay as the source sees it ("./pki/clusters/prod"); empty
	// means the overlay's directory in the state repo. Set it when the state
	// repo is a subdirectory of the source.
	Path string `json:"path,omitempty"`
}

// StateRepository is where the GitOps agents fetch the state repo from.
type StateRepository struct {
	URL      string    `json:"url"`                // ssh://, https:// or http:// as Flux's GitRepository takes it
	Branch   string    `json:"branch,omitempty"`   // default main
	Interval *Duration `json:"interval,omitempty"` // how often Flux fetches it; default 1m
	// SecretRef names the Secret, next to the GitRepository, that holds the
	// credentials (an SSH deploy key with known_hosts, or a token); none for
	// a public repository.
	SecretRef string `json:"secretRef,omitempty"`
}

// FluxSourceRef names a Flux source object, as Flux's own sourceRef does.
type FluxSourceRef struct {
	Kind      string `json:"kind,omitempty"`      // default GitRepository
	Name      string `json:"name,omitempty"`      // default gitca-state
	Namespace string `json:"namespace,omitempty"` // default flux-system
}

// ArgoCDSettings are the fields of the Argo CD Application that syncs a ksops
// cluster's overlay.
type ArgoCDSettings struct {
	RepoURL   string `json:"repoURL,omitempty"`   // the state repo as Argo CD fetches it; required for ksops clusters
	Revision  string `json:"revision,omitempty"`  // default HEAD
	Project   string `json:"project,omitempty"`   // default default
	Namespace string `json:"namespace,omitempty"` // Argo CD's namespace, where the Application lives; default argocd
}

// NamespacePolicy is whether an overlay declares the Namespace objects of the
// namespaces it writes into (except kube-system, kube-public and default):
// without them Flux applies nothing of an overlay that names a missing one.
type NamespacePolicy struct {
	// Manage defaults to true; false is for teams whose namespaces are made elsewhere.
	Manage *bool `json:"manage,omitempty"`
}

// ManagesNamespaces reports whether the overlay declares its Namespace objects.
func (c Cluster) ManagesNamespaces() bool { return c.Namespaces.Manage == nil || *c.Namespaces.Manage }

// CertificateAuthority is a self-signed root (no issuer), an intermediate
// (issuer names another CA) or an imported root (Import set).
type CertificateAuthority struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       CASpec     `json:"spec"`
	Origin     Origin     `json:"-"`
}

type CASpec struct {
	Issuer       string       `json:"issuer,omitempty"`
	Subject      Subject      `json:"subject,omitempty"` // CommonName defaults to the object name
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm,omitempty"`
	ValidityPolicy
	PathLen        *int           `json:"pathLen,omitempty"`
	RotationPolicy RotationPolicy `json:"rotationPolicy,omitempty"` // default Never
	Import         *Import        `json:"import,omitempty"`
	// Secret additionally delivers the CA (certificate and key) into a cluster
	// overlay, for components that sign with it (kube-controller-manager).
	Secret *SecretRef `json:"secret,omitempty"`
	// Rotation stages a new key generation through Add, Switch and Drop.
	Rotation *Rotation `json:"rotation,omitempty"`
	// CRL publishes a revocation list signed by this CA: `crl: true`, or
	// its validity and renewBefore.
	CRL *CRLPolicy `json:"crl,omitempty"`
	// SignedCertificate is the certificate an offline issuer (an imported
	// CA without its key) signed for this CA's CSR (gitca csr): a path
	// relative to the topology root. Until it is set, the CA and everything
	// below it wait.
	SignedCertificate string `json:"signedCertificate,omitempty"`
}

// Import brings an externally made root CA. Certificate and Key are paths
// relative to the topology root; Key is a SOPS-encrypted file whose
// decrypted content holds a PEM private key under "tls.key" (YAML) or is the PEM itself.
// Without Key the CA is offline: it can be trusted but not sign.
type Import struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key,omitempty"`
}

// Certificate is a leaf: server, client or peer.
type Certificate struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   ObjectMeta      `json:"metadata"`
	Spec       CertificateSpec `json:"spec"`
	Origin     Origin          `json:"-"`
}

type CertificateSpec struct {
	Issuer       string       `json:"issuer"`
	Profile      Profile      `json:"profile"`
	Subject      Subject      `json:"subject,omitempty"` // CommonName defaults to the object name
	DNSNames     []string     `json:"dnsNames,omitempty"`
	IPAddresses  []string     `json:"ipAddresses,omitempty"`
	URIs         []string     `json:"uris,omitempty"`
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm,omitempty"`
	ValidityPolicy
	RotationPolicy RotationPolicy `json:"rotationPolicy,omitempty"` // default Always
	Secret         SecretRef      `json:"secret"`
}

// KeyPair is a bare key pair, such as the service-account signing key.
type KeyPair struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       KeyPairSpec `json:"spec"`
	Origin     Origin      `json:"-"`
}

type KeyPairSpec struct {
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm,omitempty"`
	Secret       SecretRef    `json:"secret"`
	// Rotation stages a new key with a verify list (old and new public keys).
	Rotation *Rotation `json:"rotation,omitempty"`
}

// Kubeconfig is a client certificate wrapped in a kubeconfig, with optional RBAC.
// Its certificate carries O=groups plus "kubeconfig:<name>" so RBAC can bind the
// object rather than the user.
type Kubeconfig struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   ObjectMeta     `json:"metadata"`
	Spec       KubeconfigSpec `json:"spec"`
	Origin     Origin         `json:"-"`
}

type KubeconfigSpec struct {
	Issuer       string           `json:"issuer"`
	Username     string           `json:"username"`
	Groups       []string         `json:"groups,omitempty"`
	Target       KubeconfigTarget `json:"target"`
	Contexts     []ContextSpec    `json:"contexts,omitempty"` // default: one context named after the object
	KeyAlgorithm KeyAlgorithm     `json:"keyAlgorithm,omitempty"`
	ValidityPolicy
	RotationPolicy RotationPolicy `json:"rotationPolicy,omitempty"` // default Always
	Secret         SecretRef      `json:"secret"`
	Authorization  *Authorization `json:"authorization,omitempty"`
	// AllowPrivilegedGroups accepts groups such as system:masters that a
	// front-proxy would otherwise drop or that grant unchecked power.
	AllowPrivilegedGroups bool `json:"allowPrivilegedGroups,omitempty"`
	// OmitKubeconfigGroup leaves out the "kubeconfig:<name>" organization; kubeadm's
	// own kubeconfigs (system:node:*, system:kube-scheduler) must match exactly.
	OmitKubeconfigGroup bool `json:"omitKubeconfigGroup,omitempty"`
	// MergeInto writes this kubeconfig's user, clusters and contexts into one
	// kubeconfig shared with every Kubeconfig that names the same MergeInto
	// (kcp's admin.kubeconfig holds three users and four contexts), in the
	// Secret of spec.secret (whose name defaults to MergeInto) instead of a
	// Secret of its own. Each member keeps its own certificate and renewal.
	MergeInto string `json:"mergeInto,omitempty"`
}

// KubeconfigTarget is the API server a kubeconfig talks to.
// CA names a CertificateAuthority or TrustBundle whose certificates verify the server.
type KubeconfigTarget struct {
	// Name is the cluster entry's name inside the kubeconfig; default the object name.
	Name          string `json:"name,omitempty"`
	Server        string `json:"server"`
	CA            string `json:"ca"`
	TLSServerName string `json:"tlsServerName,omitempty"`
}

// ContextSpec is one kubeconfig context; Path is appended to the server URL
// (kcp workspaces: "/clusters/root").
type ContextSpec struct {
	Name      string `json:"name"`
	Path      string `json:"path,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

type Authorization struct {
	ClusterRoleBindings *ClusterRoleBindings `json:"clusterRoleBindings,omitempty"`
}

// ClusterRoleBindings binds the group kubeconfig:<name> to ClusterRoles in Cluster,
// a cluster overlay name or a kcp workspace path (root:org:team).
type ClusterRoleBindings struct {
	Cluster      string   `json:"cluster"`
	ClusterRoles []string `json:"clusterRoles"`
	// Group overrides the bound group (default kubeconfig:<name>); kubeadm binds
	// kubeadm:cluster-admins, which its admin.conf carries.
	Group string `json:"group,omitempty"`
	// Name overrides the ClusterRoleBinding name when exactly one role is bound
	// (default gitca:kubeconfig:<name>:<role>); kubeadm's is kubeadm:cluster-admins.
	Name string `json:"name,omitempty"`
}

// TrustBundle is a merged, de-duplicated, sorted set of CA certificates.
type TrustBundle struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   ObjectMeta      `json:"metadata"`
	Spec       TrustBundleSpec `json:"spec"`
	Origin     Origin          `json:"-"`
}

type TrustBundleSpec struct {
	Sources []BundleSource `json:"sources"`
	// ConfigMap receives the bundle under "ca.crt"; Secret under "tls.crt" (as kcp reads it).
	ConfigMap *SecretRef `json:"configMap,omitempty"`
	Secret    *SecretRef `json:"secret,omitempty"`
}

// BundleSource is exactly one of: a CA, another bundle (inheritance), or a PEM
// file in the topology repo (one or more concatenated certificates).
type BundleSource struct {
	CA     string `json:"ca,omitempty"`
	Bundle string `json:"bundle,omitempty"`
	File   string `json:"file,omitempty"`
}

// Preset expands into the objects above. Exactly one of the typed sections is set,
// matching Type.
type Preset struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       PresetSpec `json:"spec"`
	Origin     Origin     `json:"-"`
}

type PresetSpec struct {
	Type    string         `json:"type"` // kubeadm
	Kubeadm *KubeadmPreset `json:"kubeadm,omitempty"`
	Kcp     *KCPPreset     `json:"kcp,omitempty"`
	// Rotations declares the rotation of CAs and key pairs the preset
	// generates, by the generated object's name (demo-ca, demo-sa).
	Rotations map[string]*Rotation `json:"rotations,omitempty"`
}

// KubeadmPreset describes one kubeadm control plane; it expands into the whole kubeadm PKI.
type KubeadmPreset struct {
	ClusterName          string        `json:"clusterName"`           // overlay the Secrets land in; default the Preset name
	ControlPlaneEndpoint string        `json:"controlPlaneEndpoint"`  // host:port the kubeconfigs point at
	Namespace            string        `json:"namespace,omitempty"`   // default kube-system
	Nodes                []KubeadmNode `json:"nodes"`                 // control-plane nodes, first is the default for export
	ExtraSANs            []string      `json:"extraSANs,omitempty"`   // added to the apiserver certificate
	ServiceCIDR          string        `json:"serviceCIDR,omitempty"` // default 10.96.0.0/12
	DNSDomain            string        `json:"dnsDomain,omitempty"`   // default cluster.local
	KeyAlgorithm         KeyAlgorithm  `json:"keyAlgorithm,omitempty"`
	CAValidity           *Duration     `json:"caValidity,omitempty"`   // default 87600h (10 years)
	CertValidity         *Duration     `json:"certValidity,omitempty"` // default 8760h (1 year)
	// CA imports the cluster root CA ("ca") instead of generating it.
	CA *Import `json:"ca,omitempty"`
	// BindPort is the port every node's kube-apiserver listens on, unless the
	// node sets its own; default 6443 (kubeadm's localAPIEndpoint.bindPort).
	BindPort int `json:"bindPort,omitempty"`
}

type KubeadmNode struct {
	Name             string `json:"name"`
	AdvertiseAddress string `json:"advertiseAddress"`
	// BindPort overrides the preset's bindPort for this node. controller-manager.conf
	// and scheduler.conf point at https://<advertiseAddress>:<bindPort>.
	BindPort int `json:"bindPort,omitempty"`
}

// Topology is the loaded, defaulted, validated and preset-expanded desired PKI.
// Every slice is sorted by name, so iteration order never depends on file order.
type Topology struct {
	// Root is the directory the topology was loaded from; imported files are relative to it.
	Root         string
	Config       Config
	CAs          []*CertificateAuthority
	Certificates []*Certificate
	KeyPairs     []*KeyPair
	Kubeconfigs  []*Kubeconfig
	TrustBundles []*TrustBundle
	Presets      []*Preset
	// Warnings are what Load accepted but a user should change (deprecated
	// fields), each "file:line:col: field: what to do instead", sorted.
	Warnings []string
}
