package topology

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

func init() { registerPreset("kubeadm", expandKubeadm) }

// Defaults of the kubeadm preset. The validities are kubeadm's own
// (CertificateValidityPeriod, CACertificateValidityPeriod), not the Config's,
// so a cluster moved from kubeadm to gitca keeps the lifetimes it had.
const (
	DefaultKubeadmNamespace    = "kube-system"
	DefaultKubeadmServiceCIDR  = "10.96.0.0/12"
	DefaultKubeadmDNSDomain    = "cluster.local"
	DefaultKubeadmCAValidity   = 87600 * time.Hour
	DefaultKubeadmCertValidity = 8760 * time.Hour
	DefaultKubeadmBindPort     = 6443
)

// kubeadmNodeVar in a table row's common name is replaced by the node's name.
const kubeadmNodeVar = "$(node)"

// kubeadmClusterAdmins is the group kubeadm's admin.conf carries and binds to
// cluster-admin, so the credential can be revoked through RBAC unlike system:masters.
const kubeadmClusterAdmins = "kubeadm:cluster-admins"

// kubeadmRow is one object of the kubeadm PKI, after kubeadm's certlist.go
// (certificates) and kubeconfig.go (kubeconfig files).
type kubeadmRow struct {
	kind    string  // KindCertificateAuthority, KindCertificate, KindKeyPair or KindKubeconfig
	suffix  string  // object name is <cluster>-<suffix>, plus -<node> when perNode
	file    string  // kubeadm path without extension: the AnnotationKubeadmFile value
	issuer  string  // suffix of the issuing CA row
	profile Profile // certificates only
	cn      string  // common name or kubeconfig username; kubeadmNodeVar is the node's name
	orgs    []string
	sans    func(e *kubeadmEnv, n *KubeadmNode) (dns, ips []string)
	perNode bool
	// Kubeconfigs only.
	privileged bool                 // the groups include system:masters, on purpose
	rbac       *ClusterRoleBindings // Cluster is filled in at expansion
	// local points the kubeconfig at the node's own apiserver rather than the
	// control-plane endpoint, so the row is per node.
	local bool
}

// kubeadmPKI is the whole kubeadm PKI as data: table order is output order.
var kubeadmPKI = []kubeadmRow{
	{kind: KindCertificateAuthority, suffix: "ca", file: "pki/ca", cn: "kubernetes"},
	{kind: KindCertificateAuthority, suffix: "front-proxy-ca", file: "pki/front-proxy-ca", cn: "front-proxy-ca"},
	{kind: KindCertificateAuthority, suffix: "etcd-ca", file: "pki/etcd/ca", cn: "etcd-ca"},

	{kind: KindCertificate, suffix: "apiserver", file: "pki/apiserver", issuer: "ca", profile: ProfileServer,
		cn: "kube-apiserver", sans: apiServerSANs},
	{kind: KindCertificate, suffix: "apiserver-kubelet-client", file: "pki/apiserver-kubelet-client", issuer: "ca", profile: ProfileClient,
		cn: "kube-apiserver-kubelet-client", orgs: []string{kubeadmClusterAdmins}},
	{kind: KindCertificate, suffix: "front-proxy-client", file: "pki/front-proxy-client", issuer: "front-proxy-ca", profile: ProfileClient,
		cn: "front-proxy-client"},
	// etcd 3.2+ wants clientAuth on its serving certificate too, hence peer rather than server.
	{kind: KindCertificate, suffix: "etcd-server", file: "pki/etcd/server", issuer: "etcd-ca", profile: ProfilePeer,
		cn: kubeadmNodeVar, sans: etcdSANs, perNode: true},
	{kind: KindCertificate, suffix: "etcd-peer", file: "pki/etcd/peer", issuer: "etcd-ca", profile: ProfilePeer,
		cn: kubeadmNodeVar, sans: etcdSANs, perNode: true},
	{kind: KindCertificate, suffix: "etcd-healthcheck-client", file: "pki/etcd/healthcheck-client", issuer: "etcd-ca", profile: ProfileClient,
		cn: "kube-etcd-healthcheck-client"},
	{kind: KindCertificate, suffix: "apiserver-etcd-client", file: "pki/apiserver-etcd-client", issuer: "etcd-ca", profile: ProfileClient,
		cn: "kube-apiserver-etcd-client"},

	{kind: KindKeyPair, suffix: "sa", file: "pki/sa"},

	{kind: KindKubeconfig, suffix: "admin-conf", file: "admin.conf", issuer: "ca",
		cn: "kubernetes-admin", orgs: []string{kubeadmClusterAdmins},
		rbac: &ClusterRoleBindings{ClusterRoles: []string{"cluster-admin"}, Group: kubeadmClusterAdmins, Name: kubeadmClusterAdmins}},
	{kind: KindKubeconfig, suffix: "super-admin-conf", file: "super-admin.conf", issuer: "ca",
		cn: "kubernetes-super-admin", orgs: []string{"system:masters"}, privileged: true},
	// Since v1.19 kubeadm points these two at the node's own apiserver
	// (getKubeConfigSpecsBase: localAPIEndpoint), so a control plane keeps
	// working while the load balancer is down or not yet there. admin.conf,
	// super-admin.conf and kubelet.conf keep the control-plane endpoint.
	{kind: KindKubeconfig, suffix: "controller-manager-conf", file: "controller-manager.conf", issuer: "ca",
		cn: "system:kube-controller-manager", perNode: true, local: true},
	{kind: KindKubeconfig, suffix: "scheduler-conf", file: "scheduler.conf", issuer: "ca",
		cn: "system:kube-scheduler", perNode: true, local: true},
	{kind: KindKubeconfig, suffix: "kubelet-conf", file: "kubelet.conf", issuer: "ca",
		cn: "system:node:" + kubeadmNodeVar, orgs: []string{"system:nodes"}, perNode: true},

	// The data plane. The kubelet serves its API (logs, exec) on :10250 to the
	// apiserver, which authenticates with apiserver-kubelet-client; left to
	// itself the kubelet makes a self-signed certificate nobody can verify.
	// Its subject is what the kubernetes.io/kubelet-serving signer demands, so
	// a later switch to serverTLSBootstrap changes nothing a client checks.
	{kind: KindCertificate, suffix: "kubelet-serving", file: "kubelet/pki/kubelet", issuer: "ca", profile: ProfileServer,
		cn: "system:node:" + kubeadmNodeVar, orgs: []string{"system:nodes"}, sans: kubeletSANs, perNode: true},
	// The built-in ClusterRoleBinding system:node-proxier grants the user
	// system:kube-proxy what kube-proxy reads; no group is needed.
	{kind: KindKubeconfig, suffix: "kube-proxy-conf", file: "kube-proxy.conf", issuer: "ca",
		cn: "system:kube-proxy"},
}

// kubeadmEnv is a preset after its own validation and defaulting: what the SAN
// functions and the expansion read.
type kubeadmEnv struct {
	p            *Preset
	k            *KubeadmPreset
	cluster      string
	namespace    string
	dnsDomain    string
	endpoint     string // host:port as written
	endpointHost string
	serviceIP    string // first address of the (first) service CIDR, the kubernetes Service's ClusterIP
	bindPort     int    // default for nodes without their own
	caValidity   time.Duration
	certValidity time.Duration
	keyAlgorithm KeyAlgorithm
	extraDNS     []string
	extraIPs     []string
}

// apiServerSANs follows kubeadm's GetAPIServerAltNames, widened to every
// control-plane node because gitca issues one apiserver certificate for all of them.
func apiServerSANs(e *kubeadmEnv, _ *KubeadmNode) (dns, ips []string) {
	dns = []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + e.dnsDomain}
	for _, n := range e.k.Nodes {
		dns = append(dns, n.Name)
	}
	ips = []string{e.serviceIP}
	for _, n := range e.k.Nodes {
		ips = append(ips, canonicalIP(n.AdvertiseAddress))
	}
	if a, err := netip.ParseAddr(e.endpointHost); err == nil {
		ips = append(ips, a.String())
	} else {
		dns = append(dns, e.endpointHost)
	}
	dns = append(dns, e.extraDNS...)
	ips = append(ips, e.extraIPs...)
	return dedupe(dns), dedupe(ips)
}

// etcdSANs follows kubeadm's GetEtcdAltNames and GetEtcdPeerAltNames, which agree.
func etcdSANs(_ *kubeadmEnv, n *KubeadmNode) (dns, ips []string) {
	return []string{"localhost", n.Name}, dedupe([]string{"127.0.0.1", "::1", canonicalIP(n.AdvertiseAddress)})
}

// kubeletSANs are the names the apiserver dials a kubelet by: with kubeadm's
// --kubelet-preferred-address-types it is the node's InternalIP, else its name.
func kubeletSANs(_ *kubeadmEnv, n *KubeadmNode) (dns, ips []string) {
	return []string{n.Name}, []string{canonicalIP(n.AdvertiseAddress)}
}

// expandKubeadm turns a kubeadm Preset into the kubeadm PKI. Problems in the
// preset's own fields come back as an ErrorList and no objects, because objects
// built from bad input would only repeat each problem once per object.
func expandKubeadm(p *Preset) (*Expansion, error) {
	e, errs := newKubeadmEnv(p)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	x := &Expansion{}
	for i := range kubeadmPKI {
		r := &kubeadmPKI[i]
		if !r.perNode {
			e.add(x, r, nil)
			continue
		}
		for j := range e.k.Nodes {
			e.add(x, r, &e.k.Nodes[j])
		}
	}
	return x, nil
}

// newKubeadmEnv validates and defaults the preset's fields, reporting every
// problem at spec.kubeadm.<field>.
func newKubeadmEnv(p *Preset) (*kubeadmEnv, ErrorList) {
	const f = "spec.kubeadm"
	var errs ErrorList
	add := func(field, msg, allowed string) { errs = append(errs, errAt(p.Origin, field, msg, allowed)) }
	k := p.Spec.Kubeadm
	if k == nil {
		add(f, `spec.kubeadm is required for a Preset of type "kubeadm"`, "a kubeadm section with controlPlaneEndpoint and nodes")
		return nil, errs
	}
	e := &kubeadmEnv{p: p, k: k,
		cluster: k.ClusterName, namespace: k.Namespace, dnsDomain: k.DNSDomain, endpoint: k.ControlPlaneEndpoint,
		caValidity: DefaultKubeadmCAValidity, certValidity: DefaultKubeadmCertValidity, keyAlgorithm: k.KeyAlgorithm,
		bindPort: cmp.Or(k.BindPort, DefaultKubeadmBindPort),
	}
	e.namespace = cmp.Or(e.namespace, DefaultKubeadmNamespace)
	e.dnsDomain = cmp.Or(e.dnsDomain, DefaultKubeadmDNSDomain)
	e.keyAlgorithm = cmp.Or(e.keyAlgorithm, DefaultKeyAlgorithm)

	switch {
	case e.cluster == "" && p.Metadata.Name == "":
		add(f+".clusterName", "clusterName is required when the Preset has no name", allowedNamespace)
	case e.cluster == "":
		e.cluster = p.Metadata.Name
		if !isDNS1123Label(e.cluster) {
			add(f+".clusterName", fmt.Sprintf("clusterName defaults to the Preset name %q, which is not a valid cluster name", e.cluster),
				allowedNamespace+"; or set clusterName")
		}
	case !isDNS1123Label(e.cluster):
		add(f+".clusterName", fmt.Sprintf("invalid clusterName %q", e.cluster), allowedNamespace)
	}
	if !isDNS1123Label(e.namespace) {
		add(f+".namespace", fmt.Sprintf("invalid namespace %q", e.namespace), allowedNamespace)
	}
	if !isDNSName(e.dnsDomain) || strings.HasPrefix(e.dnsDomain, "*") {
		add(f+".dnsDomain", fmt.Sprintf("invalid dnsDomain %q", e.dnsDomain), "a DNS domain such as cluster.local")
	}

	const allowedEndpoint = "host:port, the host a DNS name or an IP address ([fd00::1]:6443 for IPv6), the port 1-65535"
	if e.endpoint == "" {
		add(f+".controlPlaneEndpoint", "controlPlaneEndpoint is required: the kubeconfigs point at it", allowedEndpoint)
	} else if host, err := parseEndpoint(e.endpoint); err != nil {
		add(f+".controlPlaneEndpoint", fmt.Sprintf("invalid controlPlaneEndpoint %q: %v", e.endpoint, err), allowedEndpoint)
	} else {
		e.endpointHost = host
	}

	cidrs := k.ServiceCIDR
	cidrs = cmp.Or(cidrs, DefaultKubeadmServiceCIDR)
	if ip, err := firstServiceIP(cidrs); err != nil {
		add(f+".serviceCIDR", fmt.Sprintf("invalid serviceCIDR %q: %v", cidrs, err),
			"a CIDR such as 10.96.0.0/12, or an IPv4 and an IPv6 CIDR separated by a comma for dual-stack")
	} else {
		e.serviceIP = ip
	}

	const allowedPort = "a port from 1 to 65535; default 6443"
	if !validPort(k.BindPort) {
		add(f+".bindPort", fmt.Sprintf("invalid bindPort %d", k.BindPort), allowedPort)
	}
	if len(k.Nodes) == 0 {
		add(f+".nodes", "at least one control-plane node is required", "a list of {name, advertiseAddress}")
	}
	seen := map[string]int{}
	for i, n := range k.Nodes {
		nf := fmt.Sprintf("%s.nodes[%d]", f, i)
		switch first, dup := seen[n.Name]; {
		case n.Name == "":
			add(nf+".name", "node name is required", allowedName)
		case !isDNS1123Subdomain(n.Name):
			add(nf+".name", fmt.Sprintf("invalid node name %q", n.Name), allowedName)
		case dup:
			add(nf+".name", fmt.Sprintf("duplicate node %q, first at %s.nodes[%d]", n.Name, f, first), "a name no other node of this cluster has")
		default:
			seen[n.Name] = i
		}
		switch a, err := netip.ParseAddr(n.AdvertiseAddress); {
		case n.AdvertiseAddress == "":
			add(nf+".advertiseAddress", "advertiseAddress is required: the apiserver and etcd certificates carry it", allowedIP)
		case err != nil || a.Zone() != "":
			add(nf+".advertiseAddress", fmt.Sprintf("invalid advertiseAddress %q", n.AdvertiseAddress), allowedIP)
		}
		if !validPort(n.BindPort) {
			add(nf+".bindPort", fmt.Sprintf("invalid bindPort %d", n.BindPort), "a port from 1 to 65535; default the preset's bindPort")
		}
	}

	for i, s := range k.ExtraSANs {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			e.extraIPs = append(e.extraIPs, a.String())
		} else if isDNSName(s) {
			e.extraDNS = append(e.extraDNS, s)
		} else {
			add(fmt.Sprintf("%s.extraSANs[%d]", f, i), fmt.Sprintf("invalid extra SAN %q", s), allowedDNSName+"; or "+allowedIP)
		}
	}

	if a := k.KeyAlgorithm; a != "" && !slices.Contains(KeyAlgorithms, a) {
		add(f+".keyAlgorithm", fmt.Sprintf("unknown keyAlgorithm %q", a), "one of "+joinStrings(KeyAlgorithms))
	} else if e.keyAlgorithm == Ed25519 {
		// The same algorithm makes the service-account key, and kube-apiserver signs
		// and verifies service-account tokens only with RSA and ECDSA keys.
		add(f+".keyAlgorithm", "Ed25519 cannot be used: kube-apiserver cannot sign or verify service-account tokens with an Ed25519 key (pki/sa)",
			"one of "+joinStrings(slices.DeleteFunc(slices.Clone(KeyAlgorithms), func(a KeyAlgorithm) bool { return a == Ed25519 })))
	}

	const allowedDuration = "a positive Go duration such as 8760h, or whole days such as 365d"
	if k.CAValidity != nil {
		e.caValidity = k.CAValidity.Duration
		if e.caValidity <= 0 {
			add(f+".caValidity", fmt.Sprintf("caValidity must be positive, got %s", k.CAValidity), allowedDuration)
		}
	}
	if k.CertValidity != nil {
		e.certValidity = k.CertValidity.Duration
		if e.certValidity <= 0 {
			add(f+".certValidity", fmt.Sprintf("certValidity must be positive, got %s", k.CertValidity), allowedDuration)
		}
	}
	if e.caValidity > 0 && e.certValidity > e.caValidity {
		add(f+".certValidity", fmt.Sprintf("certValidity %s is longer than caValidity %s", Duration{e.certValidity}, Duration{e.caValidity}),
			"at most the caValidity: a certificate cannot outlive its issuer")
	}

	if k.CA != nil {
		// kubeadm's root signs the apiserver, kubelet and kubeconfig certificates
		// here, so an offline root (certificate only) cannot work.
		if k.CA.Certificate == "" {
			add(f+".ca.certificate", "certificate is required to import the cluster CA", allowedFile)
		}
		if k.CA.Key == "" {
			add(f+".ca.key", "key is required: gitca signs the apiserver, kubelet and kubeconfig certificates with the cluster CA",
				"a SOPS-encrypted file in the topology repo holding the CA's PEM private key")
		}
	}
	return e, errs
}

const allowedIP = "an IPv4 or IPv6 address without zone, such as 10.0.0.1 or fd00::1"

// validPort accepts 0, which means the default.
func validPort(p int) bool { return p >= 0 && p <= 65535 }

// localAPIEndpoint is kubeadm's GetLocalAPIEndpoint: the node's own apiserver.
func (e *kubeadmEnv) localAPIEndpoint(n *KubeadmNode) string {
	return "https://" + net.JoinHostPort(canonicalIP(n.AdvertiseAddress), strconv.Itoa(cmp.Or(n.BindPort, e.bindPort)))
}

// parseEndpoint checks host:port and returns the host without brackets.
func parseEndpoint(ep string) (string, error) {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("an IP address with a zone cannot be a certificate SAN")
		}
		return host, nil
	}
	if !isDNSName(host) || strings.HasPrefix(host, "*") {
		return "", fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	return host, nil
}

// firstServiceIP returns the address kube-apiserver gives the kubernetes
// Service: the first after the network address of the first CIDR, as kubeadm's
// GetAPIServerVirtualIP does. Every CIDR of a dual-stack list must parse.
func firstServiceIP(cidrs string) (string, error) {
	parts := strings.Split(cidrs, ",")
	if len(parts) > 2 {
		return "", fmt.Errorf("at most two CIDRs, one per IP family")
	}
	var first string
	for i, s := range parts {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return "", fmt.Errorf("%q is not a CIDR", strings.TrimSpace(s))
		}
		if pfx.Masked() != pfx {
			return "", fmt.Errorf("%s has host bits set, the network is %s", pfx, pfx.Masked())
		}
		ip := pfx.Addr().Next()
		if !ip.IsValid() || !pfx.Contains(ip) {
			return "", fmt.Errorf("%s has no room for the kubernetes Service address", pfx)
		}
		if i == 0 {
			first = ip.String()
		}
	}
	if len(parts) == 2 {
		a, _ := netip.ParsePrefix(strings.TrimSpace(parts[0]))
		b, _ := netip.ParsePrefix(strings.TrimSpace(parts[1]))
		if a.Addr().Is4() == b.Addr().Is4() {
			return "", fmt.Errorf("a dual-stack list needs one IPv4 and one IPv6 CIDR")
		}
	}
	return first, nil
}

// add appends the object one row makes, for node n when the row is per node.
func (e *kubeadmEnv) add(x *Expansion, r *kubeadmRow, n *KubeadmNode) {
	name := e.cluster + "-" + r.suffix
	ann := map[string]string{AnnotationKubeadmFile: r.file, AnnotationCluster: e.cluster}
	cn := r.cn
	if n != nil {
		name += "-" + n.Name
		ann[AnnotationNode] = n.Name
		cn = strings.ReplaceAll(cn, kubeadmNodeVar, n.Name)
	}
	origin := e.p.Origin
	origin.Preset = e.p.Metadata.Name
	meta := ObjectMeta{Name: name, Annotations: ann}
	secret := SecretRef{Cluster: e.cluster, Namespace: e.namespace, Name: name}
	issuer := ""
	if r.issuer != "" {
		issuer = e.cluster + "-" + r.issuer
	}
	certPolicy := ValidityPolicy{Validity: NewDuration(e.certValidity)}

	switch r.kind {
	case KindCertificateAuthority:
		ca := &CertificateAuthority{APIVersion: APIVersion, Kind: r.kind, Metadata: meta, Origin: origin,
			Spec: CASpec{
				Subject:        Subject{CommonName: cn},
				KeyAlgorithm:   e.keyAlgorithm,
				ValidityPolicy: ValidityPolicy{Validity: NewDuration(e.caValidity)},
			}}
		if r.suffix == "ca" {
			// kube-controller-manager signs kubelet CSRs with the cluster CA, so its
			// key is delivered into the overlay; the other two CAs' keys stay in ca/.
			ca.Spec.Secret = &secret
			if e.k.CA != nil {
				imp := *e.k.CA
				ca.Spec.Import = &imp
			}
		}
		if r.suffix == "etcd-ca" {
			// etcd checks a revocation list on every client connection
			// (--client-crl-file): an etcd client certificate that leaves
			// the topology stops working the next time etcd's CRL is exported.
			ca.Spec.CRL = &CRLPolicy{}
		}
		x.CAs = append(x.CAs, ca)
	case KindCertificate:
		c := &Certificate{APIVersion: APIVersion, Kind: r.kind, Metadata: meta, Origin: origin,
			Spec: CertificateSpec{
				Issuer:         issuer,
				Profile:        r.profile,
				Subject:        Subject{CommonName: cn, Organizations: slices.Clone(r.orgs)},
				KeyAlgorithm:   e.keyAlgorithm,
				ValidityPolicy: certPolicy,
				Secret:         secret,
			}}
		if r.sans != nil {
			c.Spec.DNSNames, c.Spec.IPAddresses = r.sans(e, n)
		}
		x.Certificates = append(x.Certificates, c)
	case KindKeyPair:
		x.KeyPairs = append(x.KeyPairs, &KeyPair{APIVersion: APIVersion, Kind: r.kind, Metadata: meta, Origin: origin,
			Spec: KeyPairSpec{KeyAlgorithm: e.keyAlgorithm, Secret: secret}})
	case KindKubeconfig:
		server := "https://" + e.endpoint
		if r.local {
			server = e.localAPIEndpoint(n)
		}
		k := &Kubeconfig{APIVersion: APIVersion, Kind: r.kind, Metadata: meta, Origin: origin,
			Spec: KubeconfigSpec{
				Issuer:   issuer,
				Username: cn,
				Groups:   slices.Clone(r.orgs),
				Target:   KubeconfigTarget{Name: e.cluster, Server: server, CA: e.cluster + "-ca"},
				// kubeadm names its contexts user@cluster (kubernetes-admin@kubernetes).
				Contexts:              []ContextSpec{{Name: cn + "@" + e.cluster}},
				KeyAlgorithm:          e.keyAlgorithm,
				ValidityPolicy:        certPolicy,
				Secret:                secret,
				AllowPrivilegedGroups: r.privileged,
				OmitKubeconfigGroup:   true,
			}}
		if r.rbac != nil {
			b := *r.rbac
			b.Cluster = e.cluster
			b.ClusterRoles = slices.Clone(b.ClusterRoles)
			k.Spec.Authorization = &Authorization{ClusterRoleBindings: &b}
		}
		x.Kubeconfigs = append(x.Kubeconfigs, k)
	default:
		panic("topology: kubeadm table row of unknown kind " + r.kind)
	}
}

// canonicalIP prints an address the way certificates compare it (fd00::1, not fd00:0::1).
func canonicalIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// dedupe drops repeats, keeping first occurrences in order: the endpoint is
// often also a node's address, and a SAN listed twice is noise in the certificate.
func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, s := range xs {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
