package topology

// KCPPreset describes a kcp installation the way kcp-operator's resources do:
// root shards, each with its shards, front-proxies and virtual workspaces, and
// Kubeconfigs that target one of them. It expands into the issuer tree of the
// kcp-operator "Certificate Management" chart (see preset_kcp.go for the names).
//
// Every root shard's objects are delivered into its own cluster and namespace,
// under the Secret names of the chart; the gitca object names carry the root
// shard's name so that two root shards never collide inside gitca.
type KCPPreset struct {
	Cluster   string `json:"cluster,omitempty"`   // default overlay of every root shard; default the Preset name
	Namespace string `json:"namespace,omitempty"` // default namespace of every root shard; default "kcp"
	// KeyAlgorithm of every generated key; default ECDSA-P256. Ed25519 is refused
	// because the service-account key signs tokens, which kcp cannot do with Ed25519.
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm,omitempty"`
	// CA and Leaf are the validity policies of every generated CA (default 87600h,
	// renewed 720h before) and leaf (default 8760h, renewed 168h before).
	CA   ValidityPolicy `json:"ca,omitempty"`
	Leaf ValidityPolicy `json:"leaf,omitempty"`
	// Certificates overrides key algorithm and validity of single generated
	// objects, by gitca object name ("alpha-kcp", "alpha-server-ca").
	Certificates []KCPCertificateOverride `json:"certificates,omitempty"`
	RootShards   []KCPRootShard           `json:"rootShards"`
	Kubeconfigs  []KCPKubeconfig          `json:"kubeconfigs,omitempty"`
}

// KCPCertificateOverride changes one generated CA, certificate or kubeconfig.
type KCPCertificateOverride struct {
	Name         string       `json:"name"`
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm,omitempty"`
	ValidityPolicy
}

// KCPComponent is what every kcp server component has: a name, the host name
// clients reach it under, and the extra client CAs it trusts.
type KCPComponent struct {
	Name     string `json:"name"`
	Hostname string `json:"hostname"`
	Port     int    `json:"port,omitempty"` // default 6443
	// Cluster and Namespace place the component's Secrets; default the root shard's.
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// ExtraSANs are added to the component's serving certificate: DNS names or IP addresses.
	ExtraSANs []string `json:"extraSANs,omitempty"`
	// ClientCABundleRef adds client CAs this component trusts, on top of what it
	// inherits (see the inheritance table in preset_kcp.go): a PEM file in the
	// topology repo with one or more certificates, a TrustBundle or a CA.
	ClientCABundleRef *BundleSource `json:"clientCABundleRef,omitempty"`
}

// KCPRootShard is one root shard and everything connected to it.
type KCPRootShard struct {
	KCPComponent
	ClusterDomain string `json:"clusterDomain,omitempty"` // default cluster.local, for in-cluster service names
	// EtcdSANs are added to the etcd server and peer certificates.
	EtcdSANs []string `json:"etcdSANs,omitempty"`
	// AdminKubeconfig adds kubeconfigs mirroring kcp's own admin.kubeconfig
	// (users shard-admin, kcp-admin and user), pointing at the root shard directly.
	AdminKubeconfig   bool            `json:"adminKubeconfig,omitempty"`
	Shards            []KCPComponent  `json:"shards,omitempty"`
	FrontProxies      []KCPFrontProxy `json:"frontProxies,omitempty"`
	VirtualWorkspaces []KCPComponent  `json:"virtualWorkspaces,omitempty"`
}

// KCPFrontProxy is a kcp-front-proxy. DropGroups and PassOnGroups mirror its
// --authentication-drop-groups and --authentication-pass-on-groups flags:
// unset DropGroups means kcp's default (system:masters,
// system:kcp:logical-cluster-admin), an empty list drops nothing; unset or empty
// PassOnGroups passes every group; "prefix*" matches a prefix; dropping wins.
type KCPFrontProxy struct {
	KCPComponent
	DropGroups   []string `json:"dropGroups,omitempty"`
	PassOnGroups []string `json:"passOnGroups,omitempty"`
}

// KCPKubeconfig is kcp-operator's Kubeconfig: a client certificate signed by
// the target's root shard client CA, wrapped in a kubeconfig for the target.
type KCPKubeconfig struct {
	Name     string              `json:"name"`
	Username string              `json:"username"`
	Groups   []string            `json:"groups,omitempty"`
	Target   KCPKubeconfigTarget `json:"target"`
	// Contexts default to kcp-operator's: "default" at /clusters/root and "base"
	// at the server root, plus "shard-base" for a shard or root shard target.
	Contexts     []ContextSpec `json:"contexts,omitempty"`
	KeyAlgorithm KeyAlgorithm  `json:"keyAlgorithm,omitempty"`
	ValidityPolicy
	// Secret defaults to <name>-kubeconfig in the target root shard's cluster and namespace.
	Secret        *SecretRef     `json:"secret,omitempty"`
	Authorization *Authorization `json:"authorization,omitempty"`
	// AllowDroppedGroups accepts groups that the targeted front-proxy strips
	// before forwarding, which otherwise is an error because they would silently not apply.
	AllowDroppedGroups bool `json:"allowDroppedGroups,omitempty"`
	// AllowPrivilegedGroups is the Kubeconfig kind's opt-in for system:masters.
	AllowPrivilegedGroups bool `json:"allowPrivilegedGroups,omitempty"`
}

// KCPKubeconfigTarget names exactly one component of the preset.
type KCPKubeconfigTarget struct {
	FrontProxyRef *KCPObjectRef `json:"frontProxyRef,omitempty"`
	ShardRef      *KCPObjectRef `json:"shardRef,omitempty"`
	RootShardRef  *KCPObjectRef `json:"rootShardRef,omitempty"`
}

type KCPObjectRef struct {
	Name string `json:"name"`
}
