package topology

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

func init() { registerPreset("kcp", expandKCP) }

// Defaults of the kcp preset: kcp-operator's lifetimes are cert-manager's
// (90 days); gitca renews without an operator in the cluster, so longer
// lifetimes with a fixed renewal margin are the safer default.
const (
	DefaultKCPNamespace       = "kcp"
	DefaultKCPPort            = 6443
	DefaultKCPClusterDomain   = "cluster.local"
	DefaultKCPCAValidity      = 87600 * time.Hour // ten years
	DefaultKCPCARenewBefore   = 720 * time.Hour   // thirty days
	DefaultKCPLeafValidity    = 8760 * time.Hour  // one year
	DefaultKCPLeafRenewBefore = 168 * time.Hour   // seven days
)

// DefaultKCPDropGroups is kcp-front-proxy's default --authentication-drop-groups.
var DefaultKCPDropGroups = []string{"system:masters", "system:kcp:logical-cluster-admin"}

// AnnotationKCPRootShard names the root shard a generated object belongs to.
const AnnotationKCPRootShard = "gitca.dev/kcp-root-shard"

// Placeholders of the chart's names, as kcp-operator's documentation writes them.
const (
	kcpRootShardVar  = "$rootshard"
	kcpFrontProxyVar = "$frontproxy"
)

// kcpPKICA is the root above every root shard. In the chart, kcp-pki-bootstrap
// is a cert-manager SelfSigned Issuer: it has no certificate and no key, and
// only makes kcp-pki-ca sign itself. A gitca CA without an issuer is exactly
// that, so kcp-pki-ca is the self-signed root and nothing stands for the
// bootstrap issuer; a CA in its place would be a second key above the tree
// that no component trusts or needs.
const kcpPKICA = "kcp-pki-ca"

// kcpRow is one object of a root shard in the "Certificate Management" chart.
//
// Naming: name is the chart's name with its placeholders filled in, and is the
// Secret name and the common name. Names without $rootshard appear once per
// root shard in the chart (kcp-etcd-client-ca, kcp, ...), but a gitca object
// name must be unique across the topology, so those objects are called
// <rootshard>-<name> in gitca (alpha-kcp-etcd-client-ca) while their Secret,
// in the root shard's namespace, keeps the chart's name (kcp-etcd-client-ca).
type kcpRow struct {
	ca      bool
	name    string // chart name with placeholders
	issuer  string // chart name of the issuing CA, placeholders allowed
	profile Profile
	orgs    []string
	pathLen int                                                                          // CAs only
	sans    func(e *kcpEnv, r *kcpRootShardEnv, fp *kcpComponentEnv) (dns, ips []string) // leafs only
	perFP   bool                                                                         // one per front-proxy of the root shard
}

// kcpChart is the per-root-shard part of the chart, in its order. Every CA
// below <rootshard>-ca signs leafs only (pathLen 0), so no certificate a
// component is handed can mint further CAs.
var kcpChart = []kcpRow{
	{ca: true, name: "$rootshard-ca", issuer: kcpPKICA, pathLen: 1},
	{ca: true, name: "kcp-etcd-client-ca", issuer: "$rootshard-ca"},
	{ca: true, name: "kcp-etcd-peer-ca", issuer: "$rootshard-ca"},
	{ca: true, name: "$rootshard-server-ca", issuer: "$rootshard-ca"},
	{ca: true, name: "$rootshard-requestheader-client-ca", issuer: "$rootshard-ca"},
	{ca: true, name: "$rootshard-client-ca", issuer: "$rootshard-ca"},
	{ca: true, name: "kcp-service-account-ca", issuer: "$rootshard-ca"},

	// etcd serves kcp and also dials itself (gRPC gateway), hence peer rather than server.
	{name: "kcp-etcd", issuer: "kcp-etcd-client-ca", profile: ProfilePeer, sans: kcpEtcdSANs},
	{name: "kcp-etcd-client", issuer: "kcp-etcd-client-ca", profile: ProfileClient},
	{name: "kcp-etcd-peer", issuer: "kcp-etcd-peer-ca", profile: ProfilePeer, sans: kcpEtcdSANs},
	{name: "kcp", issuer: "$rootshard-server-ca", profile: ProfileServer, sans: kcpRootShardSANs},
	{name: "$rootshard-$frontproxy-server", issuer: "$rootshard-server-ca", profile: ProfileServer, sans: kcpFrontProxySANs, perFP: true},
	{name: "kcp-virtual-workspaces", issuer: "$rootshard-server-ca", profile: ProfileServer, sans: kcpRootShardSANs},
	// The front-proxy authenticates to kcp with these and passes the user on in
	// X-Remote-* headers, which kcp believes only from the request-header CA's clients.
	{name: "$rootshard-$frontproxy-requestheader", issuer: "$rootshard-requestheader-client-ca", profile: ProfileClient, perFP: true},
	{name: "kcp-front-proxy-vw-client", issuer: "$rootshard-requestheader-client-ca", profile: ProfileClient},
	// The front-proxy's own identity towards the shards (it reads logical clusters to route).
	{name: "$rootshard-$frontproxy-kubeconfig", issuer: "$rootshard-client-ca", profile: ProfileClient,
		orgs: []string{"system:masters"}, perFP: true},
	{name: "kcp-internal-admin-kubeconfig", issuer: "$rootshard-client-ca", profile: ProfileClient, orgs: []string{"system:masters"}},
	{name: "kcp-service-account", issuer: "kcp-service-account-ca", profile: ProfileClient},
}

// kcpAdminUsers mirrors the users and contexts of kcp's own admin.kubeconfig
// ("Authentication": batteries admin). A Kubeconfig holds one user, so
// each user is its own Kubeconfig object; contexts go to the user kcp gives them.
var kcpAdminUsers = []struct {
	user     string
	groups   []string
	contexts []ContextSpec
}{
	{"shard-admin", []string{"system:masters"}, []ContextSpec{{Name: "system:admin", Path: "/clusters/system:admin"}, {Name: "shard-base", Path: "/clusters/base"}}},
	{"kcp-admin", []string{"system:kcp:admin"}, []ContextSpec{{Name: "root", Path: "/clusters/root"}, {Name: "base", Path: "/clusters/base"}}},
	// kcp gives "user" credentials but no context of its own: four contexts in all.
	{"user", nil, nil},
}

// kcpEnv is a kcp preset after its own validation and defaulting.
type kcpEnv struct {
	p            *Preset
	k            *KCPPreset
	keyAlgorithm KeyAlgorithm
	caPolicy     ValidityPolicy
	leafPolicy   ValidityPolicy
	rootShards   []*kcpRootShardEnv
	// components maps every component name to what it is, for kubeconfig targets.
	components map[string]*kcpComponentEnv
	errs       ErrorList
}

// kcpComponentEnv is a root shard, shard, front-proxy or virtual workspace, defaulted.
type kcpComponentEnv struct {
	kind      string // "RootShard", "Shard", "FrontProxy", "VirtualWorkspace"
	c         *KCPComponent
	fp        *KCPFrontProxy // front-proxies only
	rs        *kcpRootShardEnv
	field     string // spec.kcp.rootShards[0].frontProxies[1]
	cluster   string
	namespace string
	port      int
	dns, ips  []string // ExtraSANs split
}

type kcpRootShardEnv struct {
	kcpComponentEnv
	r             *KCPRootShard
	clusterDomain string
	etcdDNS       []string
	etcdIPs       []string
	shards        []*kcpComponentEnv
	frontProxies  []*kcpComponentEnv
	vws           []*kcpComponentEnv
}

func (e *kcpEnv) add(field, msg, allowed string) {
	e.errs = append(e.errs, errAt(e.p.Origin, field, msg, allowed))
}

// expandKCP turns a kcp Preset into the kcp-operator PKI of every root shard,
// the per-component client-CA bundles and the kcp Kubeconfigs. Problems in the
// preset's own fields come back as an ErrorList and no objects, as for kubeadm.
func expandKCP(p *Preset) (*Expansion, error) {
	e := newKCPEnv(p)
	if err := e.errs.Err(); err != nil {
		return nil, err
	}
	x := &Expansion{}
	e.pkiRoots(x)
	for _, r := range e.rootShards {
		e.rootShardPKI(x, r)
		e.clientCABundles(x, r)
		if r.r.AdminKubeconfig {
			e.adminKubeconfigs(x, r)
		}
	}
	for i := range e.k.Kubeconfigs {
		e.kubeconfig(x, i)
	}
	e.overrides(x)
	e.tokenKeys(x)
	if err := e.errs.Err(); err != nil {
		return nil, err
	}
	return x, nil
}

const allowedKCPDuration = "a positive Go duration such as 8760h, or whole days such as 365d"

func newKCPEnv(p *Preset) *kcpEnv {
	const f = "spec.kcp"
	e := &kcpEnv{p: p, k: p.Spec.Kcp, components: map[string]*kcpComponentEnv{}}
	k := e.k
	if k == nil {
		e.add(f, `spec.kcp is required for a Preset of type "kcp"`, "a kcp section with at least one root shard")
		return e
	}
	cluster, namespace := k.Cluster, k.Namespace
	namespace = cmp.Or(namespace, DefaultKCPNamespace)
	switch {
	case cluster == "" && p.Metadata.Name == "":
		e.add(f+".cluster", "cluster is required when the Preset has no name", allowedName)
	case cluster == "":
		cluster = p.Metadata.Name
		if !isDNS1123Subdomain(cluster) {
			e.add(f+".cluster", fmt.Sprintf("cluster defaults to the Preset name %q, which is not a valid cluster name", cluster), allowedName+"; or set cluster")
		}
	case !isDNS1123Subdomain(cluster):
		e.add(f+".cluster", fmt.Sprintf("invalid cluster %q", cluster), allowedName)
	}
	if !isDNS1123Label(namespace) {
		e.add(f+".namespace", fmt.Sprintf("invalid namespace %q", namespace), allowedNamespace)
	}

	e.keyAlgorithm = k.KeyAlgorithm
	e.keyAlgorithm = cmp.Or(e.keyAlgorithm, DefaultKeyAlgorithm)
	e.checkKeyAlgorithm(f+".keyAlgorithm", k.KeyAlgorithm)
	e.caPolicy = e.policy(f+".ca.", k.CA, ValidityPolicy{Validity: NewDuration(DefaultKCPCAValidity), RenewBefore: NewDuration(DefaultKCPCARenewBefore)})
	e.leafPolicy = e.policy(f+".leaf.", k.Leaf, ValidityPolicy{Validity: NewDuration(DefaultKCPLeafValidity), RenewBefore: NewDuration(DefaultKCPLeafRenewBefore)})
	if e.leafPolicy.Validity.Duration > e.caPolicy.Validity.Duration {
		e.add(f+".leaf.validity", fmt.Sprintf("leaf validity %s is longer than the CA validity %s", e.leafPolicy.Validity, e.caPolicy.Validity),
			"at most the CA validity: a certificate cannot outlive its issuer")
	}

	if len(k.RootShards) == 0 {
		e.add(f+".rootShards", "at least one root shard is required", "a list of {name, hostname}")
	}
	placed := map[string]string{} // cluster/namespace → root shard field
	for i := range k.RootShards {
		r := &k.RootShards[i]
		rf := fmt.Sprintf("%s.rootShards[%d]", f, i)
		re := &kcpRootShardEnv{r: r, clusterDomain: r.ClusterDomain}
		ce := e.component("RootShard", &r.KCPComponent, nil, rf, cluster, namespace)
		re.kcpComponentEnv = *ce
		re.rs = re
		if e.components[r.Name] == ce {
			e.components[r.Name] = &re.kcpComponentEnv
		}
		re.clusterDomain = cmp.Or(re.clusterDomain, DefaultKCPClusterDomain)
		if !isDNSName(re.clusterDomain) || strings.HasPrefix(re.clusterDomain, "*") {
			e.add(rf+".clusterDomain", fmt.Sprintf("invalid clusterDomain %q", re.clusterDomain), "a DNS domain such as cluster.local")
		}
		re.etcdDNS, re.etcdIPs = e.splitSANs(rf+".etcdSANs", r.EtcdSANs)
		// The chart's shared names (kcp-etcd-client-ca, kcp, ...) are Secret names,
		// so two root shards in one namespace would overwrite each other's Secrets.
		key := re.cluster + "/" + re.namespace
		if first, dup := placed[key]; dup {
			e.add(rf+".namespace", fmt.Sprintf("root shard %q shares namespace %q of cluster %q with %s; the chart's Secret names (kcp-etcd-client-ca, kcp, ...) would collide",
				r.Name, re.namespace, re.cluster, first), "one namespace per root shard")
		} else {
			placed[key] = rf
		}
		for j := range r.Shards {
			re.shards = append(re.shards, e.component("Shard", &r.Shards[j], nil, fmt.Sprintf("%s.shards[%d]", rf, j), re.cluster, re.namespace))
		}
		for j := range r.FrontProxies {
			fp := &r.FrontProxies[j]
			ff := fmt.Sprintf("%s.frontProxies[%d]", rf, j)
			fe := e.component("FrontProxy", &fp.KCPComponent, fp, ff, re.cluster, re.namespace)
			for _, l := range []struct {
				field  string
				groups []string
			}{{"dropGroups", fp.DropGroups}, {"passOnGroups", fp.PassOnGroups}} {
				for n, g := range l.groups {
					if strings.TrimSpace(g) == "" {
						e.add(fmt.Sprintf("%s.%s[%d]", ff, l.field, n), fmt.Sprintf("invalid group %q", g), "a group name, or a prefix followed by *")
					}
				}
			}
			re.frontProxies = append(re.frontProxies, fe)
		}
		for j := range r.VirtualWorkspaces {
			re.vws = append(re.vws, e.component("VirtualWorkspace", &r.VirtualWorkspaces[j], nil, fmt.Sprintf("%s.virtualWorkspaces[%d]", rf, j), re.cluster, re.namespace))
		}
		for _, c := range append(append(append([]*kcpComponentEnv{}, re.shards...), re.frontProxies...), re.vws...) {
			c.rs = re
		}
		e.rootShards = append(e.rootShards, re)
	}
	return e
}

// component validates and defaults the fields every component has, and
// registers its name, which must be unique across the preset: the names become
// parts of Secret and object names and are what kubeconfig targets refer to.
func (e *kcpEnv) component(kind string, c *KCPComponent, fp *KCPFrontProxy, field, cluster, namespace string) *kcpComponentEnv {
	ce := &kcpComponentEnv{kind: kind, c: c, fp: fp, field: field, cluster: c.Cluster, namespace: c.Namespace, port: c.Port}
	ce.cluster = cmp.Or(ce.cluster, cluster)
	ce.namespace = cmp.Or(ce.namespace, namespace)
	if ce.port == 0 {
		ce.port = DefaultKCPPort
	}
	switch first, dup := e.components[c.Name]; {
	case c.Name == "":
		e.add(field+".name", "name is required", allowedNamespace)
	case !isDNS1123Label(c.Name):
		e.add(field+".name", fmt.Sprintf("invalid name %q", c.Name), allowedNamespace)
	case dup:
		e.add(field+".name", fmt.Sprintf("duplicate component name %q, first at %s", c.Name, first.field), "a name unique among the preset's root shards, shards, front-proxies and virtual workspaces")
	default:
		e.components[c.Name] = ce
	}
	switch {
	case c.Hostname == "":
		e.add(field+".hostname", "hostname is required: clients reach the "+kind+" under it and its certificate carries it", allowedDNSName)
	case !isDNSName(c.Hostname) || strings.HasPrefix(c.Hostname, "*"):
		e.add(field+".hostname", fmt.Sprintf("invalid hostname %q", c.Hostname), allowedDNSName)
	}
	if ce.port < 1 || ce.port > 65535 {
		e.add(field+".port", fmt.Sprintf("invalid port %d", c.Port), "1-65535; default 6443")
	}
	if c.Cluster != "" && !isDNS1123Subdomain(c.Cluster) {
		e.add(field+".cluster", fmt.Sprintf("invalid cluster %q", c.Cluster), allowedName)
	}
	if c.Namespace != "" && !isDNS1123Label(c.Namespace) {
		e.add(field+".namespace", fmt.Sprintf("invalid namespace %q", c.Namespace), allowedNamespace)
	}
	ce.dns, ce.ips = e.splitSANs(field+".extraSANs", c.ExtraSANs)
	if ref := c.ClientCABundleRef; ref != nil {
		set := 0
		for _, s := range []string{ref.CA, ref.Bundle, ref.File} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			e.add(field+".clientCABundleRef", fmt.Sprintf("clientCABundleRef must set exactly one of file, bundle, ca; this one sets %d", set),
				"file: a PEM file in the topology repo; bundle: a TrustBundle; ca: a CertificateAuthority")
		}
	}
	return ce
}

func (e *kcpEnv) splitSANs(field string, sans []string) (dns, ips []string) {
	for i, s := range sans {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			ips = append(ips, a.String())
		} else if isDNSName(s) {
			dns = append(dns, s)
		} else {
			e.add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("invalid SAN %q", s), allowedDNSName+"; or "+allowedIP)
		}
	}
	return dns, ips
}

// checkKeyAlgorithm reports an unknown algorithm; empty means the default.
func (e *kcpEnv) checkKeyAlgorithm(field string, a KeyAlgorithm) {
	if a != "" && !slices.Contains(KeyAlgorithms, a) {
		e.add(field, fmt.Sprintf("unknown keyAlgorithm %q", a), "one of "+joinStrings(KeyAlgorithms))
	}
}

// tokenKeys rejects an Ed25519 service-account key, at the field that chose it:
// kcp signs and verifies service-account tokens with RSA and ECDSA keys only.
func (e *kcpEnv) tokenKeys(x *Expansion) {
	for _, r := range e.rootShards {
		name := objectName("kcp-service-account", r, nil)
		c := find(x.Certificates, name, func(c *Certificate) string { return c.Metadata.Name })
		if c == nil || c.Spec.KeyAlgorithm != Ed25519 {
			continue
		}
		field := "spec.kcp.keyAlgorithm"
		for i, o := range e.k.Certificates {
			if o.Name == name && o.KeyAlgorithm != "" {
				field = fmt.Sprintf("spec.kcp.certificates[%d].keyAlgorithm", i)
			}
		}
		e.add(field, fmt.Sprintf("Ed25519 cannot be used for %s: kcp cannot sign or verify service-account tokens with an Ed25519 key", name),
			"one of "+joinStrings(slices.DeleteFunc(slices.Clone(KeyAlgorithms), func(a KeyAlgorithm) bool { return a == Ed25519 }))+
				"; override keyAlgorithm of "+name+" under spec.kcp.certificates")
	}
}

// policy completes p from def the way Config defaults do: a validity without
// renewBefore keeps def's renewBefore when it fits, else renews a third before.
func (e *kcpEnv) policy(prefix string, p, def ValidityPolicy) ValidityPolicy {
	out := ValidityPolicy{Validity: p.Validity, RenewBefore: p.RenewBefore}
	if out.Validity != nil && out.Validity.Duration <= 0 {
		e.add(prefix+"validity", fmt.Sprintf("validity must be positive, got %s", out.Validity), allowedKCPDuration)
		out.Validity = nil
	}
	if out.RenewBefore != nil && out.RenewBefore.Duration <= 0 {
		e.add(prefix+"renewBefore", fmt.Sprintf("renewBefore must be positive, got %s", out.RenewBefore), allowedKCPDuration)
		out.RenewBefore = nil
	}
	ownRenewBefore := out.RenewBefore != nil
	fillValidity(&out, def, false)
	if ownRenewBefore && out.RenewBefore.Duration >= out.Validity.Duration {
		e.add(prefix+"renewBefore", fmt.Sprintf("renewBefore %s must be shorter than validity %s", out.RenewBefore, out.Validity), "less than the validity")
	}
	return out
}

func (e *kcpEnv) origin() Origin {
	o := e.p.Origin
	o.Preset = e.p.Metadata.Name
	return o
}

func clonePolicy(p ValidityPolicy) ValidityPolicy {
	return ValidityPolicy{Validity: NewDuration(p.Validity.Duration), RenewBefore: NewDuration(p.RenewBefore.Duration)}
}

// pkiRoots adds kcp-pki-ca, the self-signed root shared by every root shard.
// Its key stays in the state's ca/: no component needs it. pathLen 2 leaves
// room for exactly <rootshard>-ca and the CAs below it.
func (e *kcpEnv) pkiRoots(x *Expansion) {
	two := 2
	x.CAs = append(x.CAs, &CertificateAuthority{APIVersion: APIVersion, Kind: KindCertificateAuthority, Origin: e.origin(),
		Metadata: ObjectMeta{Name: kcpPKICA},
		Spec: CASpec{Subject: Subject{CommonName: kcpPKICA}, KeyAlgorithm: e.keyAlgorithm,
			ValidityPolicy: clonePolicy(e.caPolicy), PathLen: &two}})
}

// chartName fills the placeholders of a chart name.
func chartName(name string, r *kcpRootShardEnv, fp *kcpComponentEnv) string {
	name = strings.ReplaceAll(name, kcpRootShardVar, r.c.Name)
	if fp != nil {
		name = strings.ReplaceAll(name, kcpFrontProxyVar, fp.c.Name)
	}
	return name
}

// objectName is the gitca name of a chart object: the chart name when it
// already carries the root shard, else prefixed with it (see kcpRow).
func objectName(chart string, r *kcpRootShardEnv, fp *kcpComponentEnv) string {
	if chart == kcpPKICA {
		return chart
	}
	n := chartName(chart, r, fp)
	if !strings.Contains(chart, kcpRootShardVar) {
		n = r.c.Name + "-" + n
	}
	return n
}

// KCPObjectName is the gitca object name of a chart name ("kcp-etcd-client-ca",
// "$rootshard-server-ca") for a root shard, so tools and tests can find objects
// by the names the kcp-operator documentation uses.
func KCPObjectName(chart, rootShard, frontProxy string) string {
	r := &kcpRootShardEnv{kcpComponentEnv: kcpComponentEnv{c: &KCPComponent{Name: rootShard}}}
	var fp *kcpComponentEnv
	if frontProxy != "" {
		fp = &kcpComponentEnv{c: &KCPComponent{Name: frontProxy}}
	}
	return objectName(chart, r, fp)
}

func (e *kcpEnv) annotations(r *kcpRootShardEnv) map[string]string {
	return map[string]string{AnnotationKCPRootShard: r.c.Name}
}

// rootShardPKI adds the chart's objects of one root shard, plus a serving
// certificate per shard and virtual workspace, issued by the root shard's server CA.
func (e *kcpEnv) rootShardPKI(x *Expansion, r *kcpRootShardEnv) {
	for i := range kcpChart {
		row := &kcpChart[i]
		if !row.perFP {
			e.chartObject(x, row, r, nil)
			continue
		}
		for _, fp := range r.frontProxies {
			e.chartObject(x, row, r, fp)
		}
	}
	for _, c := range append(append([]*kcpComponentEnv{}, r.shards...), r.vws...) {
		name := r.c.Name + "-" + c.c.Name + "-server"
		dns, ips := componentSANs(c, c.c.Name+kcpServiceSuffix[c.kind], r.clusterDomain)
		x.Certificates = append(x.Certificates, &Certificate{APIVersion: APIVersion, Kind: KindCertificate, Origin: e.origin(),
			Metadata: ObjectMeta{Name: name, Annotations: e.annotations(r)},
			Spec: CertificateSpec{Issuer: objectName("$rootshard-server-ca", r, nil), Profile: ProfileServer,
				Subject: Subject{CommonName: name}, DNSNames: dns, IPAddresses: ips, KeyAlgorithm: e.keyAlgorithm,
				ValidityPolicy: clonePolicy(e.leafPolicy), Secret: SecretRef{Cluster: c.cluster, Namespace: c.namespace, Name: name}}})
	}
}

func (e *kcpEnv) chartObject(x *Expansion, row *kcpRow, r *kcpRootShardEnv, fp *kcpComponentEnv) {
	name := chartName(row.name, r, fp)
	obj := objectName(row.name, r, fp)
	meta := ObjectMeta{Name: obj, Annotations: e.annotations(r)}
	issuer := objectName(row.issuer, r, fp)
	if row.ca {
		pl := row.pathLen
		x.CAs = append(x.CAs, &CertificateAuthority{APIVersion: APIVersion, Kind: KindCertificateAuthority, Origin: e.origin(), Metadata: meta,
			Spec: CASpec{Issuer: issuer, Subject: Subject{CommonName: name}, KeyAlgorithm: e.keyAlgorithm,
				ValidityPolicy: clonePolicy(e.caPolicy), PathLen: &pl}})
		if row.name == "$rootshard-ca" {
			return
		}
		// Components read a CA from its Secret's tls.crt (as --client-ca-file,
		// --requestheader-client-ca-file, etcd's --trusted-ca-file). That Secret
		// is a bundle of exactly this CA, without its key and without its
		// parents: a parent in there would become a trust anchor for every
		// certificate below it, request-header clients included.
		x.TrustBundles = append(x.TrustBundles, &TrustBundle{APIVersion: APIVersion, Kind: KindTrustBundle, Origin: e.origin(), Metadata: meta,
			Spec: TrustBundleSpec{Sources: []BundleSource{{CA: obj}},
				Secret: &SecretRef{Cluster: r.cluster, Namespace: r.namespace, Name: name}}})
		return
	}
	c := &Certificate{APIVersion: APIVersion, Kind: KindCertificate, Origin: e.origin(), Metadata: meta,
		Spec: CertificateSpec{Issuer: issuer, Profile: row.profile,
			Subject:      Subject{CommonName: name, Organizations: slices.Clone(row.orgs)},
			KeyAlgorithm: e.keyAlgorithm, ValidityPolicy: clonePolicy(e.leafPolicy),
			Secret: SecretRef{Cluster: r.cluster, Namespace: r.namespace, Name: name}}}
	if fp != nil {
		c.Spec.Secret.Cluster, c.Spec.Secret.Namespace = fp.cluster, fp.namespace
	}
	if row.sans != nil {
		c.Spec.DNSNames, c.Spec.IPAddresses = row.sans(e, r, fp)
	}
	x.Certificates = append(x.Certificates, c)
}

// kcpServiceSuffix names each component's in-cluster Service after kcp-operator's.
var kcpServiceSuffix = map[string]string{
	"RootShard":        "-kcp",
	"Shard":            "-shard-kcp",
	"FrontProxy":       "-front-proxy",
	"VirtualWorkspace": "-virtual-workspace",
}

// serviceNames are the names a Service is reachable under inside the cluster.
func serviceNames(svc, ns, domain string) []string {
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + domain}
}

// componentSANs: the external host name, the in-cluster Service names and the extra SANs.
func componentSANs(c *kcpComponentEnv, svc, domain string) (dns, ips []string) {
	dns = append([]string{c.c.Hostname}, serviceNames(svc, c.namespace, domain)...)
	return dedupe(append(dns, c.dns...)), dedupe(slices.Clone(c.ips))
}

// kcpEtcdSANs: etcd usually runs next to kcp (localhost) or as a Service.
func kcpEtcdSANs(_ *kcpEnv, r *kcpRootShardEnv, _ *kcpComponentEnv) (dns, ips []string) {
	dns = append([]string{"localhost"}, serviceNames(r.c.Name+"-etcd", r.namespace, r.clusterDomain)...)
	return dedupe(append(dns, r.etcdDNS...)), dedupe(append([]string{"127.0.0.1", "::1"}, r.etcdIPs...))
}

func kcpRootShardSANs(_ *kcpEnv, r *kcpRootShardEnv, _ *kcpComponentEnv) (dns, ips []string) {
	return componentSANs(&r.kcpComponentEnv, r.c.Name+kcpServiceSuffix["RootShard"], r.clusterDomain)
}

// kcpFrontProxySANs also carry the root shard's host name: kcp-operator points
// kubeconfigs for a front-proxy at the root shard's external name.
func kcpFrontProxySANs(_ *kcpEnv, r *kcpRootShardEnv, fp *kcpComponentEnv) (dns, ips []string) {
	dns, ips = componentSANs(fp, fp.c.Name+kcpServiceSuffix["FrontProxy"], r.clusterDomain)
	return dedupe(append(dns, r.c.Hostname)), ips
}

// clientCABundleName is the TrustBundle (and Secret) holding the client CAs a component trusts.
func clientCABundleName(r *kcpRootShardEnv, c *kcpComponentEnv) string {
	if c == &r.kcpComponentEnv || c == nil {
		return r.c.Name + "-client-ca-bundle"
	}
	return r.c.Name + "-" + c.c.Name + "-client-ca-bundle"
}

// clientCABundles renders the document's inheritance table, one bundle per component:
//
//	RootShard        root client CA + RootShard's clientCABundleRef
//	Shard            root client CA + RootShard's clientCABundleRef + Shard's
//	FrontProxy       root client CA + RootShard's clientCABundleRef + FrontProxy's
//	VirtualWorkspace root client CA + RootShard's clientCABundleRef + VirtualWorkspace's
//
// The others inherit the root shard's bundle by reference, so a change there
// reaches every component below it in the same run.
func (e *kcpEnv) clientCABundles(x *Expansion, r *kcpRootShardEnv) {
	rootBundle := clientCABundleName(r, nil)
	add := func(c *kcpComponentEnv, first BundleSource) {
		name := clientCABundleName(r, c)
		srcs := []BundleSource{first}
		if ref := c.c.ClientCABundleRef; ref != nil {
			srcs = append(srcs, *ref)
		}
		x.TrustBundles = append(x.TrustBundles, &TrustBundle{APIVersion: APIVersion, Kind: KindTrustBundle, Origin: e.origin(),
			Metadata: ObjectMeta{Name: name, Annotations: e.annotations(r)},
			Spec:     TrustBundleSpec{Sources: srcs, Secret: &SecretRef{Cluster: c.cluster, Namespace: c.namespace, Name: name}}})
	}
	add(&r.kcpComponentEnv, BundleSource{CA: objectName("$rootshard-client-ca", r, nil)})
	for _, list := range [][]*kcpComponentEnv{r.shards, r.frontProxies, r.vws} {
		for _, c := range list {
			add(c, BundleSource{Bundle: rootBundle})
		}
	}
}

func (c *kcpComponentEnv) url() string {
	return "https://" + c.c.Hostname + ":" + strconv.Itoa(c.port)
}

// adminKubeconfigs mirrors kcp's admin.kubeconfig: one Kubeconfig per user
// (each with its own certificate and renewal), all merged into one kubeconfig
// Secret <rootshard>-admin-kubeconfig with the three users and four contexts,
// straight at the root shard: the front-proxy would drop system:masters.
func (e *kcpEnv) adminKubeconfigs(x *Expansion, r *kcpRootShardEnv) {
	merged := r.c.Name + "-admin-kubeconfig"
	for _, u := range kcpAdminUsers {
		name := r.c.Name + "-admin-" + u.user
		x.Kubeconfigs = append(x.Kubeconfigs, &Kubeconfig{APIVersion: APIVersion, Kind: KindKubeconfig, Origin: e.origin(),
			Metadata: ObjectMeta{Name: name, Annotations: e.annotations(r)},
			Spec: KubeconfigSpec{Issuer: objectName("$rootshard-client-ca", r, nil), Username: u.user, Groups: slices.Clone(u.groups),
				Target:   KubeconfigTarget{Name: r.c.Name, Server: r.url(), CA: objectName("$rootshard-server-ca", r, nil)},
				Contexts: slices.Clone(u.contexts), KeyAlgorithm: e.keyAlgorithm, ValidityPolicy: clonePolicy(e.leafPolicy),
				Secret:                SecretRef{Cluster: r.cluster, Namespace: r.namespace, Name: merged},
				MergeInto:             merged,
				AllowPrivilegedGroups: slices.Contains(u.groups, "system:masters"),
				OmitKubeconfigGroup:   true}})
	}
}

// KCPGroupDropped reports whether a kcp-front-proxy with these flags strips
// group g from a client certificate before forwarding: drop (nil means kcp's
// default) matches, or pass-on is set and does not match. "prefix*" matches a prefix.
func KCPGroupDropped(drop, passOn []string, g string) bool {
	if drop == nil {
		drop = DefaultKCPDropGroups
	}
	match := func(pats []string) bool {
		for _, p := range pats {
			if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(g, pre) || p == g {
				return true
			}
		}
		return false
	}
	return match(drop) || len(passOn) > 0 && !match(passOn)
}

// kubeconfig expands one kcp Kubeconfig: issued by the target's root shard
// client CA, pointing at the target with its server CA.
func (e *kcpEnv) kubeconfig(x *Expansion, i int) {
	k := &e.k.Kubeconfigs[i]
	f := fmt.Sprintf("spec.kcp.kubeconfigs[%d]", i)
	var target *kcpComponentEnv
	refs := 0
	for _, ref := range []struct {
		field, kind string
		r           *KCPObjectRef
	}{{"frontProxyRef", "FrontProxy", k.Target.FrontProxyRef}, {"shardRef", "Shard", k.Target.ShardRef}, {"rootShardRef", "RootShard", k.Target.RootShardRef}} {
		if ref.r == nil {
			continue
		}
		refs++
		c := e.components[ref.r.Name]
		if c == nil || c.kind != ref.kind {
			e.add(f+".target."+ref.field+".name", fmt.Sprintf("%s %q does not exist in this preset", ref.kind, ref.r.Name), existing(ref.kind+"s", e.componentNames(ref.kind)))
			continue
		}
		target = c
	}
	if refs != 1 {
		e.add(f+".target", fmt.Sprintf("a kubeconfig must target exactly one of frontProxyRef, shardRef, rootShardRef; this one sets %d", refs), "")
	}
	if target == nil {
		return
	}
	r := target.rs
	name := k.Name
	if target.kind == "FrontProxy" && !k.AllowDroppedGroups {
		groups := slices.Clone(k.Groups)
		if name != "" {
			groups = append(groups, "kubeconfig:"+name)
		}
		for _, g := range groups {
			if KCPGroupDropped(target.fp.DropGroups, target.fp.PassOnGroups, g) {
				field := f + ".groups"
				if j := slices.Index(k.Groups, g); j >= 0 {
					field = fmt.Sprintf("%s[%d]", field, j)
				}
				e.add(field, fmt.Sprintf("front-proxy %q drops group %q before forwarding to kcp, so the kubeconfig would silently not carry it", target.c.Name, g),
					"target the shard or root shard directly, change the front-proxy's dropGroups/passOnGroups, or set allowDroppedGroups: true")
			}
		}
	}
	ctxs := slices.Clone(k.Contexts)
	if len(ctxs) == 0 {
		// kcp-operator's contexts (internal/resources/kubeconfig/secret.go).
		ctxs = []ContextSpec{{Name: "default", Path: "/clusters/root"}, {Name: "base"}}
		if target.kind != "FrontProxy" {
			ctxs = append(ctxs, ContextSpec{Name: "shard-base"})
		}
	}
	secret := SecretRef{Cluster: r.cluster, Namespace: r.namespace, Name: name + "-kubeconfig"}
	if k.Secret != nil {
		if k.Secret.Cluster != "" {
			secret.Cluster = k.Secret.Cluster
		}
		if k.Secret.Namespace != "" {
			secret.Namespace = k.Secret.Namespace
		}
		if k.Secret.Name != "" {
			secret.Name = k.Secret.Name
		}
	}
	alg := k.KeyAlgorithm
	alg = cmp.Or(alg, e.keyAlgorithm)
	e.checkKeyAlgorithm(f+".keyAlgorithm", k.KeyAlgorithm)
	var authz *Authorization
	if k.Authorization != nil {
		a := *k.Authorization
		if a.ClusterRoleBindings != nil {
			b := *a.ClusterRoleBindings
			b.ClusterRoles = slices.Clone(b.ClusterRoles)
			a.ClusterRoleBindings = &b
		}
		authz = &a
	}
	x.Kubeconfigs = append(x.Kubeconfigs, &Kubeconfig{APIVersion: APIVersion, Kind: KindKubeconfig, Origin: e.origin(),
		Metadata: ObjectMeta{Name: name, Annotations: e.annotations(r)},
		Spec: KubeconfigSpec{Issuer: objectName("$rootshard-client-ca", r, nil), Username: k.Username, Groups: slices.Clone(k.Groups),
			Target:   KubeconfigTarget{Name: target.c.Name, Server: target.url(), CA: objectName("$rootshard-server-ca", r, nil)},
			Contexts: ctxs, KeyAlgorithm: alg, ValidityPolicy: e.policy(f+".", k.ValidityPolicy, e.leafPolicy),
			Secret: secret, Authorization: authz, AllowPrivilegedGroups: k.AllowPrivilegedGroups}})
}

func (e *kcpEnv) componentNames(kind string) []string {
	var out []string
	for n, c := range e.components {
		if c.kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// overrides applies spec.kcp.certificates to the generated objects by name.
func (e *kcpEnv) overrides(x *Expansion) {
	for i, o := range e.k.Certificates {
		f := fmt.Sprintf("spec.kcp.certificates[%d]", i)
		var alg *KeyAlgorithm
		var pol *ValidityPolicy
		def := e.leafPolicy
		if ca := find(x.CAs, o.Name, caName); ca != nil {
			alg, pol, def = &ca.Spec.KeyAlgorithm, &ca.Spec.ValidityPolicy, e.caPolicy
		} else if c := find(x.Certificates, o.Name, func(c *Certificate) string { return c.Metadata.Name }); c != nil {
			alg, pol = &c.Spec.KeyAlgorithm, &c.Spec.ValidityPolicy
		} else if k := find(x.Kubeconfigs, o.Name, func(k *Kubeconfig) string { return k.Metadata.Name }); k != nil {
			alg, pol = &k.Spec.KeyAlgorithm, &k.Spec.ValidityPolicy
		} else {
			e.add(f+".name", fmt.Sprintf("no CA, certificate or kubeconfig %q is generated by this preset", o.Name), existing("generated objects", generatedNames(x)))
			continue
		}
		if o.KeyAlgorithm != "" {
			*alg = o.KeyAlgorithm
			e.checkKeyAlgorithm(f+".keyAlgorithm", o.KeyAlgorithm)
		}
		if o.Validity != nil || o.RenewBefore != nil {
			*pol = e.policy(f+".", o.ValidityPolicy, def)
		}
	}
}

func generatedNames(x *Expansion) []string {
	var out []string
	for _, o := range x.CAs {
		out = append(out, o.Metadata.Name)
	}
	for _, o := range x.Certificates {
		out = append(out, o.Metadata.Name)
	}
	for _, o := range x.Kubeconfigs {
		out = append(out, o.Metadata.Name)
	}
	return out
}
