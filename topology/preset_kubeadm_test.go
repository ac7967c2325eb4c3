package topology

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kubeadmFieldPaths are the preset fields the error tests give a position to,
// each on its own line, so an error pointing at the wrong field is caught.
var kubeadmFieldPaths = []string{
	"spec.kubeadm",
	"spec.kubeadm.clusterName",
	"spec.kubeadm.controlPlaneEndpoint",
	"spec.kubeadm.namespace",
	"spec.kubeadm.nodes",
	"spec.kubeadm.nodes[0].name",
	"spec.kubeadm.nodes[0].advertiseAddress",
	"spec.kubeadm.nodes[1].name",
	"spec.kubeadm.nodes[1].advertiseAddress",
	"spec.kubeadm.nodes[2].name",
	"spec.kubeadm.nodes[2].advertiseAddress",
	"spec.kubeadm.extraSANs",
	"spec.kubeadm.extraSANs[0]",
	"spec.kubeadm.extraSANs[1]",
	"spec.kubeadm.serviceCIDR",
	"spec.kubeadm.dnsDomain",
	"spec.kubeadm.keyAlgorithm",
	"spec.kubeadm.caValidity",
	"spec.kubeadm.certValidity",
	"spec.kubeadm.ca",
	"spec.kubeadm.ca.certificate",
	"spec.kubeadm.ca.key",
	"spec.kubeadm.bindPort",
	"spec.kubeadm.nodes[1].bindPort",
}

func kubeadmOrigin() Origin {
	o := Origin{Position: Position{File: "pki/kubeadm.yaml", Line: 1, Col: 1}, Fields: map[string]Position{}}
	for i, f := range kubeadmFieldPaths {
		o.Fields[f] = Position{File: o.File, Line: 10 + i, Col: 3}
	}
	return o
}

// threeNodePreset is the preset most tests start from, written out in full.
func threeNodePreset() *Preset {
	return &Preset{
		APIVersion: APIVersion, Kind: KindPreset,
		Metadata: ObjectMeta{Name: "prod-kubeadm"},
		Origin:   kubeadmOrigin(),
		Spec: PresetSpec{Type: "kubeadm", Kubeadm: &KubeadmPreset{
			ClusterName:          "prod",
			ControlPlaneEndpoint: "api.prod.example.com:6443",
			Nodes: []KubeadmNode{
				{Name: "cp-0", AdvertiseAddress: "10.0.0.10"},
				{Name: "cp-1", AdvertiseAddress: "10.0.0.11"},
				{Name: "cp-2", AdvertiseAddress: "10.0.0.12"},
			},
			ExtraSANs:   []string{"api.example.com", "192.0.2.7"},
			ServiceCIDR: "10.100.0.0/16",
			DNSDomain:   "prod.local",
		}},
	}
}

// kubeadmObj is the part of a generated object that differs per table row.
type kubeadmObj struct {
	kind, issuer, cn, file, node string
	profile                      Profile
	orgs                         []string
	server                       string // kubeconfigs only
}

// flatten indexes an expansion by object name, failing on duplicates.
func flatten(t *testing.T, x *Expansion) (order []string, objs map[string]kubeadmObj) {
	t.Helper()
	objs = map[string]kubeadmObj{}
	put := func(name string, o kubeadmObj, ann map[string]string) {
		_, dup := objs[name]
		require.False(t, dup, "duplicate object %s", name)
		o.file, o.node = ann[AnnotationKubeadmFile], ann[AnnotationNode]
		order = append(order, name)
		objs[name] = o
	}
	for _, c := range x.CAs {
		put(c.Metadata.Name, kubeadmObj{kind: KindCertificateAuthority, issuer: c.Spec.Issuer, cn: c.Spec.Subject.CommonName, orgs: c.Spec.Subject.Organizations}, c.Metadata.Annotations)
	}
	for _, c := range x.Certificates {
		put(c.Metadata.Name, kubeadmObj{kind: KindCertificate, issuer: c.Spec.Issuer, cn: c.Spec.Subject.CommonName, orgs: c.Spec.Subject.Organizations, profile: c.Spec.Profile}, c.Metadata.Annotations)
	}
	for _, k := range x.KeyPairs {
		put(k.Metadata.Name, kubeadmObj{kind: KindKeyPair}, k.Metadata.Annotations)
	}
	for _, k := range x.Kubeconfigs {
		// A kubeconfig's certificate carries exactly its groups: every kubeadm
		// kubeconfig omits kubeconfig:<name> (checked in TestExpandKubeadmCommonFields).
		put(k.Metadata.Name, kubeadmObj{kind: KindKubeconfig, issuer: k.Spec.Issuer, cn: k.Spec.Username, orgs: k.Spec.Groups, profile: ProfileClient,
			server: k.Spec.Target.Server}, k.Metadata.Annotations)
	}
	return order, objs
}

func TestExpandKubeadmObjects(t *testing.T) {
	p := threeNodePreset()
	p.Spec.Kubeadm.BindPort = 8443
	p.Spec.Kubeadm.Nodes[2].BindPort = 9443
	x, err := expandKubeadm(p)
	require.NoError(t, err)
	order, got := flatten(t, x)

	const ca, fp, etcd = "prod-ca", "prod-front-proxy-ca", "prod-etcd-ca"
	const lb = "https://api.prod.example.com:6443"
	admins := []string{"kubeadm:cluster-admins"}
	nodes := []string{"system:nodes"}
	want := []struct {
		name string
		obj  kubeadmObj
	}{
		{"prod-ca", kubeadmObj{kind: KindCertificateAuthority, cn: "kubernetes", file: "pki/ca"}},
		{"prod-front-proxy-ca", kubeadmObj{kind: KindCertificateAuthority, cn: "front-proxy-ca", file: "pki/front-proxy-ca"}},
		{"prod-etcd-ca", kubeadmObj{kind: KindCertificateAuthority, cn: "etcd-ca", file: "pki/etcd/ca"}},
		{"prod-apiserver", kubeadmObj{kind: KindCertificate, issuer: ca, profile: ProfileServer, cn: "kube-apiserver", file: "pki/apiserver"}},
		{"prod-apiserver-kubelet-client", kubeadmObj{kind: KindCertificate, issuer: ca, profile: ProfileClient, cn: "kube-apiserver-kubelet-client", orgs: admins, file: "pki/apiserver-kubelet-client"}},
		{"prod-front-proxy-client", kubeadmObj{kind: KindCertificate, issuer: fp, profile: ProfileClient, cn: "front-proxy-client", file: "pki/front-proxy-client"}},
		{"prod-etcd-server-cp-0", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfilePeer, cn: "cp-0", file: "pki/etcd/server", node: "cp-0"}},
		{"prod-etcd-server-cp-1", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfilePeer, cn: "cp-1", file: "pki/etcd/server", node: "cp-1"}},
		{"prod-etcd-server-cp-2", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfilePeer, cn: "cp-2", file: "pki/etcd/server", node: "cp-2"}},
		{"prod-etcd-peer-cp-0", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfilePeer, cn: "cp-0", file: "pki/etcd/peer", node: "cp-0"}},
		{"prod-etcd-peer-cp-1", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfilePeer, cn: "cp-1", file: "pki/etcd/peer", node: "cp-1"}},
		{"prod-etcd-peer-cp-2", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfilePeer, cn: "cp-2", file: "pki/etcd/peer", node: "cp-2"}},
		{"prod-etcd-healthcheck-client", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfileClient, cn: "kube-etcd-healthcheck-client", file: "pki/etcd/healthcheck-client"}},
		{"prod-apiserver-etcd-client", kubeadmObj{kind: KindCertificate, issuer: etcd, profile: ProfileClient, cn: "kube-apiserver-etcd-client", file: "pki/apiserver-etcd-client"}},
		// The kubelet serving certificate has the subject the kubelet-serving signer requires, and serverAuth only.
		{"prod-kubelet-serving-cp-0", kubeadmObj{kind: KindCertificate, issuer: ca, profile: ProfileServer, cn: "system:node:cp-0", orgs: nodes, file: "kubelet/pki/kubelet", node: "cp-0"}},
		{"prod-kubelet-serving-cp-1", kubeadmObj{kind: KindCertificate, issuer: ca, profile: ProfileServer, cn: "system:node:cp-1", orgs: nodes, file: "kubelet/pki/kubelet", node: "cp-1"}},
		{"prod-kubelet-serving-cp-2", kubeadmObj{kind: KindCertificate, issuer: ca, profile: ProfileServer, cn: "system:node:cp-2", orgs: nodes, file: "kubelet/pki/kubelet", node: "cp-2"}},
		{"prod-sa", kubeadmObj{kind: KindKeyPair, file: "pki/sa"}},
		{"prod-admin-conf", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "kubernetes-admin", orgs: admins, file: "admin.conf", server: lb}},
		{"prod-super-admin-conf", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "kubernetes-super-admin", orgs: []string{"system:masters"}, file: "super-admin.conf", server: lb}},
		// kubeadm >= 1.19: the node's own apiserver, at the node's bindPort or the preset's.
		{"prod-controller-manager-conf-cp-0", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-controller-manager", file: "controller-manager.conf", node: "cp-0", server: "https://10.0.0.10:8443"}},
		{"prod-controller-manager-conf-cp-1", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-controller-manager", file: "controller-manager.conf", node: "cp-1", server: "https://10.0.0.11:8443"}},
		{"prod-controller-manager-conf-cp-2", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-controller-manager", file: "controller-manager.conf", node: "cp-2", server: "https://10.0.0.12:9443"}},
		{"prod-scheduler-conf-cp-0", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-scheduler", file: "scheduler.conf", node: "cp-0", server: "https://10.0.0.10:8443"}},
		{"prod-scheduler-conf-cp-1", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-scheduler", file: "scheduler.conf", node: "cp-1", server: "https://10.0.0.11:8443"}},
		{"prod-scheduler-conf-cp-2", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-scheduler", file: "scheduler.conf", node: "cp-2", server: "https://10.0.0.12:9443"}},
		{"prod-kubelet-conf-cp-0", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:node:cp-0", orgs: nodes, file: "kubelet.conf", node: "cp-0", server: lb}},
		{"prod-kubelet-conf-cp-1", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:node:cp-1", orgs: nodes, file: "kubelet.conf", node: "cp-1", server: lb}},
		{"prod-kubelet-conf-cp-2", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:node:cp-2", orgs: nodes, file: "kubelet.conf", node: "cp-2", server: lb}},
		// One identity for every node's kube-proxy: the user the built-in
		// system:node-proxier binding names, and no group at all.
		{"prod-kube-proxy-conf", kubeadmObj{kind: KindKubeconfig, issuer: ca, profile: ProfileClient, cn: "system:kube-proxy", file: "kube-proxy.conf", server: lb}},
	}
	var wantOrder []string
	for _, w := range want {
		wantOrder = append(wantOrder, w.name)
	}
	// Kinds are grouped by the Expansion, table order within each kind.
	assert.Equal(t, wantOrder, order)
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			assert.Equal(t, w.obj, got[w.name])
		})
	}
}

func TestExpandKubeadmSANs(t *testing.T) {
	x, err := expandKubeadm(threeNodePreset())
	require.NoError(t, err)
	sans := map[string][2][]string{}
	for _, c := range x.Certificates {
		sans[c.Metadata.Name] = [2][]string{c.Spec.DNSNames, c.Spec.IPAddresses}
	}
	tests := []struct {
		name     string
		dns, ips []string
	}{
		{"prod-apiserver",
			[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.prod.local",
				"cp-0", "cp-1", "cp-2", "api.prod.example.com", "api.example.com"},
			[]string{"10.100.0.1", "10.0.0.10", "10.0.0.11", "10.0.0.12", "192.0.2.7"}},
		{"prod-etcd-server-cp-0", []string{"localhost", "cp-0"}, []string{"127.0.0.1", "::1", "10.0.0.10"}},
		{"prod-etcd-server-cp-1", []string{"localhost", "cp-1"}, []string{"127.0.0.1", "::1", "10.0.0.11"}},
		{"prod-etcd-server-cp-2", []string{"localhost", "cp-2"}, []string{"127.0.0.1", "::1", "10.0.0.12"}},
		{"prod-etcd-peer-cp-0", []string{"localhost", "cp-0"}, []string{"127.0.0.1", "::1", "10.0.0.10"}},
		{"prod-etcd-peer-cp-1", []string{"localhost", "cp-1"}, []string{"127.0.0.1", "::1", "10.0.0.11"}},
		{"prod-etcd-peer-cp-2", []string{"localhost", "cp-2"}, []string{"127.0.0.1", "::1", "10.0.0.12"}},
		// The apiserver reaches a kubelet at its InternalIP (the advertise address) or its name.
		{"prod-kubelet-serving-cp-0", []string{"cp-0"}, []string{"10.0.0.10"}},
		{"prod-kubelet-serving-cp-1", []string{"cp-1"}, []string{"10.0.0.11"}},
		{"prod-kubelet-serving-cp-2", []string{"cp-2"}, []string{"10.0.0.12"}},
		// Client certificates name no host.
		{"prod-apiserver-kubelet-client", nil, nil},
		{"prod-front-proxy-client", nil, nil},
		{"prod-etcd-healthcheck-client", nil, nil},
		{"prod-apiserver-etcd-client", nil, nil},
	}
	require.Len(t, sans, len(tests), "every certificate has a SAN expectation")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sans[tt.name]
			require.True(t, ok)
			assert.Equal(t, tt.dns, got[0], "DNS names")
			assert.Equal(t, tt.ips, got[1], "IP addresses")
		})
	}
}

// TestExpandKubeadmAPIServerSANVariants covers the endpoint and address forms
// whose SANs are not obvious: an IP endpoint, IPv6, duplicates.
func TestExpandKubeadmAPIServerSANVariants(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(k *KubeadmPreset)
		dns, ips  []string
		serverURL string // the control-plane endpoint
		localURL  string // cp-0's own apiserver
	}{
		{"endpoint is a node address: listed once",
			func(k *KubeadmPreset) {
				k.ControlPlaneEndpoint = "10.0.0.10:6443"
				k.Nodes = k.Nodes[:1]
				k.ExtraSANs = []string{"10.0.0.10", "cp-0"}
			},
			[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.prod.local", "cp-0"},
			[]string{"10.100.0.1", "10.0.0.10"},
			"https://10.0.0.10:6443", "https://10.0.0.10:6443"},
		{"IPv6 endpoint, addresses written non-canonically, dual-stack services",
			func(k *KubeadmPreset) {
				k.ControlPlaneEndpoint = "[fd00:0::1]:443"
				k.Nodes = []KubeadmNode{{Name: "cp-0", AdvertiseAddress: "FD00::10"}}
				k.ServiceCIDR = "fd00:96::/108,10.96.0.0/12"
				k.ExtraSANs = nil
			},
			[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.prod.local", "cp-0"},
			[]string{"fd00:96::1", "fd00::10", "fd00::1"},
			"https://[fd00:0::1]:443", "https://[fd00::10]:6443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := threeNodePreset()
			tt.edit(p.Spec.Kubeadm)
			x, err := expandKubeadm(p)
			require.NoError(t, err)
			require.Equal(t, "prod-apiserver", x.Certificates[0].Metadata.Name)
			assert.Equal(t, tt.dns, x.Certificates[0].Spec.DNSNames)
			assert.Equal(t, tt.ips, x.Certificates[0].Spec.IPAddresses)
			for _, k := range x.Kubeconfigs {
				want := tt.serverURL
				if strings.HasPrefix(k.Metadata.Name, "prod-controller-manager-conf-") || strings.HasPrefix(k.Metadata.Name, "prod-scheduler-conf-") {
					want = tt.localURL
				}
				assert.Equal(t, want, k.Spec.Target.Server, k.Metadata.Name)
			}
		})
	}
}

func TestExpandKubeadmCommonFields(t *testing.T) {
	p := threeNodePreset()
	p.Spec.Kubeadm.Namespace = "pki"
	p.Spec.Kubeadm.KeyAlgorithm = RSA3072
	p.Spec.Kubeadm.CAValidity = NewDuration(20 * 365 * 24 * time.Hour)
	p.Spec.Kubeadm.CertValidity = NewDuration(90 * 24 * time.Hour)
	x, err := expandKubeadm(p)
	require.NoError(t, err)

	wantOrigin := p.Origin
	wantOrigin.Preset = "prod-kubeadm"
	check := func(t *testing.T, meta ObjectMeta, o Origin, apiVersion, kind, wantKind string) {
		assert.Equal(t, APIVersion, apiVersion)
		assert.Equal(t, wantKind, kind)
		assert.Equal(t, wantOrigin, o)
		assert.Equal(t, "prod", meta.Annotations[AnnotationCluster])
		assert.NotEmpty(t, meta.Annotations[AnnotationKubeadmFile])
		if n := meta.Annotations[AnnotationNode]; n != "" {
			assert.True(t, strings.HasSuffix(meta.Name, "-"+n), "per-node object %s is named after its node", meta.Name)
		}
	}
	secret := func(name string) SecretRef { return SecretRef{Cluster: "prod", Namespace: "pki", Name: name} }
	caValidity := ValidityPolicy{Validity: NewDuration(20 * 365 * 24 * time.Hour)}
	leafValidity := ValidityPolicy{Validity: NewDuration(90 * 24 * time.Hour)}

	for _, c := range x.CAs {
		t.Run(c.Metadata.Name, func(t *testing.T) {
			check(t, c.Metadata, c.Origin, c.APIVersion, c.Kind, KindCertificateAuthority)
			assert.Equal(t, RSA3072, c.Spec.KeyAlgorithm)
			assert.Equal(t, caValidity, c.Spec.ValidityPolicy)
			assert.Nil(t, c.Spec.Import)
			assert.Empty(t, c.Spec.Issuer, "every kubeadm CA is a root")
			if c.Metadata.Name == "prod-ca" {
				// kube-controller-manager signs CSRs with the cluster CA.
				require.NotNil(t, c.Spec.Secret)
				assert.Equal(t, secret("prod-ca"), *c.Spec.Secret)
			} else {
				assert.Nil(t, c.Spec.Secret, "only the cluster CA's key reaches the cluster")
			}
		})
	}
	for _, c := range x.Certificates {
		t.Run(c.Metadata.Name, func(t *testing.T) {
			check(t, c.Metadata, c.Origin, c.APIVersion, c.Kind, KindCertificate)
			assert.Equal(t, RSA3072, c.Spec.KeyAlgorithm)
			assert.Equal(t, leafValidity, c.Spec.ValidityPolicy)
			assert.Equal(t, secret(c.Metadata.Name), c.Spec.Secret)
		})
	}
	require.Len(t, x.KeyPairs, 1)
	sa := x.KeyPairs[0]
	check(t, sa.Metadata, sa.Origin, sa.APIVersion, sa.Kind, KindKeyPair)
	assert.Equal(t, KeyPairSpec{KeyAlgorithm: RSA3072, Secret: secret("prod-sa")}, sa.Spec)

	for _, k := range x.Kubeconfigs {
		t.Run(k.Metadata.Name, func(t *testing.T) {
			check(t, k.Metadata, k.Origin, k.APIVersion, k.Kind, KindKubeconfig)
			s := k.Spec
			// Which server each one names is TestExpandKubeadmObjects' business.
			assert.Equal(t, KubeconfigTarget{Name: "prod", Server: s.Target.Server, CA: "prod-ca"}, s.Target)
			assert.Equal(t, []ContextSpec{{Name: s.Username + "@prod"}}, s.Contexts)
			assert.True(t, s.OmitKubeconfigGroup, "kubeadm identities must match exactly")
			assert.Equal(t, RSA3072, s.KeyAlgorithm)
			assert.Equal(t, leafValidity, s.ValidityPolicy)
			assert.Equal(t, secret(k.Metadata.Name), s.Secret)
			assert.Equal(t, k.Metadata.Name == "prod-super-admin-conf", s.AllowPrivilegedGroups)
			if k.Metadata.Name == "prod-admin-conf" {
				assert.Equal(t, &Authorization{ClusterRoleBindings: &ClusterRoleBindings{
					Cluster: "prod", ClusterRoles: []string{"cluster-admin"},
					Group: "kubeadm:cluster-admins", Name: "kubeadm:cluster-admins",
				}}, s.Authorization)
			} else {
				assert.Nil(t, s.Authorization)
			}
		})
	}
}

func TestExpandKubeadmDefaults(t *testing.T) {
	p := &Preset{
		APIVersion: APIVersion, Kind: KindPreset, Metadata: ObjectMeta{Name: "lab"}, Origin: kubeadmOrigin(),
		Spec: PresetSpec{Type: "kubeadm", Kubeadm: &KubeadmPreset{
			ControlPlaneEndpoint: "lab.example.com:6443",
			Nodes:                []KubeadmNode{{Name: "node-a", AdvertiseAddress: "192.168.1.5"}},
		}},
	}
	before := *p.Spec.Kubeadm
	x, err := expandKubeadm(p)
	require.NoError(t, err)
	assert.Equal(t, before, *p.Spec.Kubeadm, "the preset itself is left as written")

	api := x.Certificates[0]
	require.Equal(t, "lab-apiserver", api.Metadata.Name, "clusterName defaults to the Preset name")
	assert.Equal(t, "lab", api.Metadata.Annotations[AnnotationCluster])
	assert.Equal(t, SecretRef{Cluster: "lab", Namespace: "kube-system", Name: "lab-apiserver"}, api.Spec.Secret)
	assert.Contains(t, api.Spec.DNSNames, "kubernetes.default.svc.cluster.local")
	assert.Equal(t, "10.96.0.1", api.Spec.IPAddresses[0], "first address of 10.96.0.0/12")
	assert.Equal(t, ECDSAP256, api.Spec.KeyAlgorithm)
	assert.Equal(t, 8760*time.Hour, api.Spec.Validity.Duration)
	assert.Nil(t, api.Spec.RenewBefore, "renewBefore is left to the Config's leaf policy")
	assert.Equal(t, 87600*time.Hour, x.CAs[0].Spec.Validity.Duration)
	assert.Nil(t, x.CAs[0].Spec.RenewBefore)
	assert.Equal(t, ECDSAP256, x.KeyPairs[0].Spec.KeyAlgorithm)
	assert.Equal(t, ECDSAP256, x.Kubeconfigs[0].Spec.KeyAlgorithm)
}

func TestExpandKubeadmImportedCA(t *testing.T) {
	p := threeNodePreset()
	p.Spec.Kubeadm.CA = &Import{Certificate: "pki/ca.crt", Key: "pki/ca.key.sops.yaml"}
	x, err := expandKubeadm(p)
	require.NoError(t, err)

	require.Equal(t, []string{"prod-ca", "prod-front-proxy-ca", "prod-etcd-ca"},
		[]string{x.CAs[0].Metadata.Name, x.CAs[1].Metadata.Name, x.CAs[2].Metadata.Name})
	root := x.CAs[0]
	require.NotNil(t, root.Spec.Import)
	assert.Equal(t, Import{Certificate: "pki/ca.crt", Key: "pki/ca.key.sops.yaml"}, *root.Spec.Import, "paths stay relative to the topology root")
	assert.NotSame(t, p.Spec.Kubeadm.CA, root.Spec.Import, "the CA gets its own copy")
	assert.Empty(t, root.Spec.Issuer)
	require.NotNil(t, root.Spec.Secret, "the imported CA is delivered for kube-controller-manager too")
	assert.Equal(t, SecretRef{Cluster: "prod", Namespace: "kube-system", Name: "prod-ca"}, *root.Spec.Secret)
	assert.Equal(t, "pki/ca", root.Metadata.Annotations[AnnotationKubeadmFile])
	for _, ca := range x.CAs[1:] {
		assert.Nil(t, ca.Spec.Import, "%s is still generated", ca.Metadata.Name)
	}
	// Leafs and kubeconfigs are signed by the imported CA exactly as by a generated one.
	assert.Equal(t, "prod-ca", x.Certificates[0].Spec.Issuer)
	assert.Equal(t, "prod-ca", x.Kubeconfigs[0].Spec.Issuer)
}

func TestExpandKubeadmErrors(t *testing.T) {
	type fieldMsg struct{ field, msg string }
	tests := []struct {
		name string
		edit func(p *Preset)
		want []fieldMsg
	}{
		{"no kubeadm section", func(p *Preset) { p.Spec.Kubeadm = nil },
			[]fieldMsg{{"spec.kubeadm", "spec.kubeadm is required"}}},
		{"clusterName not a DNS label", func(p *Preset) { p.Spec.Kubeadm.ClusterName = "Prod_1" },
			[]fieldMsg{{"spec.kubeadm.clusterName", `invalid clusterName "Prod_1"`}}},
		{"clusterName with a dot", func(p *Preset) { p.Spec.Kubeadm.ClusterName = "prod.eu" },
			[]fieldMsg{{"spec.kubeadm.clusterName", `invalid clusterName "prod.eu"`}}},
		{"clusterName defaulted from an unusable Preset name", func(p *Preset) {
			p.Spec.Kubeadm.ClusterName = ""
			p.Metadata.Name = "prod.kubeadm"
		}, []fieldMsg{{"spec.kubeadm.clusterName", `defaults to the Preset name "prod.kubeadm"`}}},
		{"no clusterName and no Preset name", func(p *Preset) {
			p.Spec.Kubeadm.ClusterName = ""
			p.Metadata.Name = ""
		}, []fieldMsg{{"spec.kubeadm.clusterName", "clusterName is required"}}},
		{"namespace", func(p *Preset) { p.Spec.Kubeadm.Namespace = "Kube_System" },
			[]fieldMsg{{"spec.kubeadm.namespace", `invalid namespace "Kube_System"`}}},
		{"dnsDomain", func(p *Preset) { p.Spec.Kubeadm.DNSDomain = "Cluster..local" },
			[]fieldMsg{{"spec.kubeadm.dnsDomain", `invalid dnsDomain "Cluster..local"`}}},
		{"endpoint missing", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", "controlPlaneEndpoint is required"}}},
		{"endpoint without port", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "api.example.com" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", "missing port"}}},
		{"endpoint port 0", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "api.example.com:0" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", `port "0" is not a number from 1 to 65535`}}},
		{"endpoint port too big", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "10.0.0.1:65536" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", `port "65536"`}}},
		{"endpoint port not a number", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "api.example.com:https" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", `port "https"`}}},
		{"endpoint host neither DNS nor IP", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "api_server:6443" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", `host "api_server" is neither an IP address nor a DNS name`}}},
		{"endpoint wildcard host", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "*.example.com:6443" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", "neither an IP address nor a DNS name"}}},
		{"endpoint IPv6 with zone", func(p *Preset) { p.Spec.Kubeadm.ControlPlaneEndpoint = "[fe80::1%eth0]:6443" },
			[]fieldMsg{{"spec.kubeadm.controlPlaneEndpoint", "zone"}}},
		{"no nodes", func(p *Preset) { p.Spec.Kubeadm.Nodes = nil },
			[]fieldMsg{{"spec.kubeadm.nodes", "at least one control-plane node is required"}}},
		{"node name missing", func(p *Preset) { p.Spec.Kubeadm.Nodes[1].Name = "" },
			[]fieldMsg{{"spec.kubeadm.nodes[1].name", "node name is required"}}},
		{"node name invalid", func(p *Preset) { p.Spec.Kubeadm.Nodes[2].Name = "CP_2" },
			[]fieldMsg{{"spec.kubeadm.nodes[2].name", `invalid node name "CP_2"`}}},
		{"duplicate node name", func(p *Preset) { p.Spec.Kubeadm.Nodes[2].Name = "cp-0" },
			[]fieldMsg{{"spec.kubeadm.nodes[2].name", `duplicate node "cp-0", first at spec.kubeadm.nodes[0]`}}},
		{"advertiseAddress missing", func(p *Preset) { p.Spec.Kubeadm.Nodes[0].AdvertiseAddress = "" },
			[]fieldMsg{{"spec.kubeadm.nodes[0].advertiseAddress", "advertiseAddress is required"}}},
		{"advertiseAddress out of range", func(p *Preset) { p.Spec.Kubeadm.Nodes[1].AdvertiseAddress = "10.0.0.300" },
			[]fieldMsg{{"spec.kubeadm.nodes[1].advertiseAddress", `invalid advertiseAddress "10.0.0.300"`}}},
		{"advertiseAddress is a host name", func(p *Preset) { p.Spec.Kubeadm.Nodes[1].AdvertiseAddress = "cp-1.example.com" },
			[]fieldMsg{{"spec.kubeadm.nodes[1].advertiseAddress", `invalid advertiseAddress "cp-1.example.com"`}}},
		{"advertiseAddress with zone", func(p *Preset) { p.Spec.Kubeadm.Nodes[2].AdvertiseAddress = "fe80::1%eth0" },
			[]fieldMsg{{"spec.kubeadm.nodes[2].advertiseAddress", "invalid advertiseAddress"}}},
		{"serviceCIDR not a CIDR", func(p *Preset) { p.Spec.Kubeadm.ServiceCIDR = "10.96.0.0" },
			[]fieldMsg{{"spec.kubeadm.serviceCIDR", `"10.96.0.0" is not a CIDR`}}},
		{"serviceCIDR with host bits", func(p *Preset) { p.Spec.Kubeadm.ServiceCIDR = "10.96.0.1/12" },
			[]fieldMsg{{"spec.kubeadm.serviceCIDR", "has host bits set, the network is 10.96.0.0/12"}}},
		{"serviceCIDR too small", func(p *Preset) { p.Spec.Kubeadm.ServiceCIDR = "10.96.0.7/32" },
			[]fieldMsg{{"spec.kubeadm.serviceCIDR", "no room for the kubernetes Service address"}}},
		{"serviceCIDR two of one family", func(p *Preset) { p.Spec.Kubeadm.ServiceCIDR = "10.96.0.0/12,10.112.0.0/12" },
			[]fieldMsg{{"spec.kubeadm.serviceCIDR", "one IPv4 and one IPv6 CIDR"}}},
		{"serviceCIDR three", func(p *Preset) { p.Spec.Kubeadm.ServiceCIDR = "10.96.0.0/12,fd00::/108,10.112.0.0/12" },
			[]fieldMsg{{"spec.kubeadm.serviceCIDR", "at most two CIDRs"}}},
		{"extraSAN neither DNS nor IP", func(p *Preset) { p.Spec.Kubeadm.ExtraSANs[1] = "not a name" },
			[]fieldMsg{{"spec.kubeadm.extraSANs[1]", `invalid extra SAN "not a name"`}}},
		{"unknown keyAlgorithm", func(p *Preset) { p.Spec.Kubeadm.KeyAlgorithm = "DSA-1024" },
			[]fieldMsg{{"spec.kubeadm.keyAlgorithm", `unknown keyAlgorithm "DSA-1024"`}}},
		{"Ed25519 for the service-account key", func(p *Preset) { p.Spec.Kubeadm.KeyAlgorithm = Ed25519 },
			[]fieldMsg{{"spec.kubeadm.keyAlgorithm", "kube-apiserver cannot sign or verify service-account tokens with an Ed25519 key (pki/sa)"}}},
		{"zero caValidity", func(p *Preset) { p.Spec.Kubeadm.CAValidity = NewDuration(0) },
			[]fieldMsg{{"spec.kubeadm.caValidity", "caValidity must be positive"}}},
		{"negative certValidity", func(p *Preset) { p.Spec.Kubeadm.CertValidity = NewDuration(-time.Hour) },
			[]fieldMsg{{"spec.kubeadm.certValidity", "certValidity must be positive, got -1h"}}},
		{"certValidity longer than caValidity", func(p *Preset) {
			p.Spec.Kubeadm.CAValidity = NewDuration(48 * time.Hour)
			p.Spec.Kubeadm.CertValidity = NewDuration(72 * time.Hour)
		}, []fieldMsg{{"spec.kubeadm.certValidity", "certValidity 72h is longer than caValidity 48h"}}},
		{"certValidity longer than the default caValidity", func(p *Preset) {
			p.Spec.Kubeadm.CertValidity = NewDuration(87601 * time.Hour)
		}, []fieldMsg{{"spec.kubeadm.certValidity", "longer than caValidity 87600h"}}},
		{"imported CA without certificate", func(p *Preset) { p.Spec.Kubeadm.CA = &Import{Key: "ca.key.sops.yaml"} },
			[]fieldMsg{{"spec.kubeadm.ca.certificate", "certificate is required"}}},
		{"imported CA without key", func(p *Preset) { p.Spec.Kubeadm.CA = &Import{Certificate: "ca.crt"} },
			[]fieldMsg{{"spec.kubeadm.ca.key", "key is required"}}},
		{"bindPort out of range", func(p *Preset) { p.Spec.Kubeadm.BindPort = 65536 },
			[]fieldMsg{{"spec.kubeadm.bindPort", "invalid bindPort 65536"}}},
		{"node bindPort negative", func(p *Preset) { p.Spec.Kubeadm.Nodes[1].BindPort = -1 },
			[]fieldMsg{{"spec.kubeadm.nodes[1].bindPort", "invalid bindPort -1"}}},
		{"every problem at once, sorted by position", func(p *Preset) {
			k := p.Spec.Kubeadm
			k.ControlPlaneEndpoint = "api.example.com"
			k.Nodes[1].AdvertiseAddress = "10.0.0.300"
			k.Nodes[2].Name = "cp-0"
			k.KeyAlgorithm = Ed25519
		}, []fieldMsg{
			{"spec.kubeadm.controlPlaneEndpoint", "missing port"},
			{"spec.kubeadm.nodes[1].advertiseAddress", "invalid advertiseAddress"},
			{"spec.kubeadm.nodes[2].name", "duplicate node"},
			{"spec.kubeadm.keyAlgorithm", "Ed25519"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := threeNodePreset()
			tt.edit(p)
			x, err := expandKubeadm(p)
			assert.Nil(t, x, "no objects from an invalid preset")
			require.Error(t, err)
			var list ErrorList
			require.True(t, errors.As(err, &list), "an ErrorList, got %T", err)
			require.Len(t, list, len(tt.want), "errors: %v", err)
			for i, w := range tt.want {
				e := list[i]
				assert.Equal(t, w.field, e.Field)
				assert.Contains(t, e.Msg, w.msg)
				assert.Equal(t, p.Origin.At(w.field), e.Pos, "position of %s", w.field)
				assert.NotEqual(t, p.Origin.Position, e.Pos, "%s points at its own line, not the document", w.field)
				assert.NotEmpty(t, e.Allowed, "%s says what is allowed", w.field)
			}
		})
	}
}

// TestLoadKubeadmExample loads the example a new user copies, through the real
// loader, defaults and validation.
func TestLoadKubeadmExample(t *testing.T) {
	top, err := Load("../examples/kubeadm")
	require.NoError(t, err)

	assert.Empty(t, top.Config.Spec.Reconciler.Age, "the example leaves recipients to SOPS_AGE_RECIPIENTS")
	cl := top.Cluster("demo")
	assert.Equal(t, deliveryDefaults(Cluster{Name: "demo", Flavour: FlavourFlux, Namespace: "kube-system"}), cl)
	assert.Empty(t, cl.Recipients)

	var all []string
	for _, c := range top.CAs {
		all = append(all, c.Metadata.Name)
		// The document is where its kind is written.
		assert.Equal(t, Origin{Position: Position{File: "kubeadm.yaml", Line: 9, Col: 1}, Preset: "demo"},
			Origin{Position: c.Origin.Position, Preset: c.Origin.Preset})
	}
	for _, c := range top.Certificates {
		all = append(all, c.Metadata.Name)
	}
	for _, k := range top.KeyPairs {
		all = append(all, k.Metadata.Name)
	}
	for _, k := range top.Kubeconfigs {
		all = append(all, k.Metadata.Name)
	}
	assert.Equal(t, []string{
		"demo-ca", "demo-etcd-ca", "demo-front-proxy-ca",
		"demo-apiserver", "demo-apiserver-etcd-client", "demo-apiserver-kubelet-client", "demo-etcd-healthcheck-client",
		"demo-etcd-peer-cp-0", "demo-etcd-peer-cp-1", "demo-etcd-peer-cp-2",
		"demo-etcd-server-cp-0", "demo-etcd-server-cp-1", "demo-etcd-server-cp-2", "demo-front-proxy-client",
		"demo-kubelet-serving-cp-0", "demo-kubelet-serving-cp-1", "demo-kubelet-serving-cp-2",
		"demo-sa",
		"demo-admin-conf",
		"demo-controller-manager-conf-cp-0", "demo-controller-manager-conf-cp-1", "demo-controller-manager-conf-cp-2",
		"demo-kube-proxy-conf",
		"demo-kubelet-conf-cp-0", "demo-kubelet-conf-cp-1", "demo-kubelet-conf-cp-2",
		"demo-scheduler-conf-cp-0", "demo-scheduler-conf-cp-1", "demo-scheduler-conf-cp-2",
		"demo-super-admin-conf",
	}, all)

	api := top.Certificate("demo-apiserver")
	require.NotNil(t, api)
	assert.Equal(t, []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		"cp-0", "cp-1", "cp-2", "api.demo.example.com"}, api.Spec.DNSNames)
	// 127.0.0.1 is both cp-0 and the endpoint: listed once.
	assert.Equal(t, []string{"10.96.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.3"}, api.Spec.IPAddresses)
	// The loader's defaults complete what the preset left open.
	v, rb := api.Spec.Get()
	assert.Equal(t, 8760*time.Hour, v)
	assert.Equal(t, 8760*time.Hour/3, rb)
	assert.Equal(t, RotateAlways, api.Spec.RotationPolicy)
	root := top.CA("demo-ca")
	v, rb = root.Spec.Get()
	assert.Equal(t, 87600*time.Hour, v)
	assert.Equal(t, DefaultCARenewBefore, rb)

	kubelet := top.Kubeconfig("demo-kubelet-conf-cp-1")
	require.NotNil(t, kubelet)
	assert.Equal(t, "system:node:cp-1", kubelet.Spec.Username)
	assert.Equal(t, "https://127.0.0.1:6443", kubelet.Spec.Target.Server)
	assert.Equal(t, map[string]string{AnnotationKubeadmFile: "kubelet.conf", AnnotationCluster: "demo", AnnotationNode: "cp-1"},
		kubelet.Metadata.Annotations)
	// cp-1's scheduler talks to cp-1's apiserver, at kubeadm's default port.
	assert.Equal(t, "https://127.0.0.2:6443", top.Kubeconfig("demo-scheduler-conf-cp-1").Spec.Target.Server)
}

func TestLoadKubeadmImported(t *testing.T) {
	top, err := Load("testdata/kubeadm-imported")
	require.NoError(t, err)
	root := top.CA("edge-ca")
	require.NotNil(t, root)
	assert.Equal(t, &Import{Certificate: "pki/ca.crt", Key: "pki/ca.key.sops.yaml"}, root.Spec.Import)
	assert.Equal(t, &SecretRef{Cluster: "edge", Namespace: "kube-system", Name: "edge-ca"}, root.Spec.Secret)
	api := top.Certificate("edge-apiserver")
	require.NotNil(t, api)
	assert.Equal(t, []string{"fd00:96::1", "fd00::10"}, api.Spec.IPAddresses)
}

// TestLoadKubeadmInvalid checks that the positions reach the user through the
// real decoder: each error names the line and column of the value that is wrong.
func TestLoadKubeadmInvalid(t *testing.T) {
	_, err := Load("testdata/kubeadm-invalid")
	require.Error(t, err)
	want := []string{
		`kubeadm.yaml:9:27: spec.kubeadm.controlPlaneEndpoint: invalid controlPlaneEndpoint "api.example.com": address api.example.com: missing port in address`,
		`kubeadm.yaml:14:27: spec.kubeadm.nodes[1].advertiseAddress: invalid advertiseAddress "10.0.0.300"`,
		`kubeadm.yaml:15:15: spec.kubeadm.nodes[2].name: duplicate node "cp-0", first at spec.kubeadm.nodes[0]`,
		`kubeadm.yaml:17:18: spec.kubeadm.serviceCIDR: invalid serviceCIDR "10.96.0.1/12": 10.96.0.1/12 has host bits set, the network is 10.96.0.0/12`,
		`kubeadm.yaml:18:19: spec.kubeadm.keyAlgorithm: Ed25519 cannot be used`,
	}
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(want), "errors:\n%v", err)
	for i, w := range want {
		assert.True(t, strings.HasPrefix(lines[i], w), fmt.Sprintf("line %d\n got: %s\nwant: %s…", i, lines[i], w))
	}
}

// TestKubeadmTableConsistent guards edits to the table: every issuer is a CA
// row, names and files are unique, and each kind has what its objects need.
func TestKubeadmTableConsistent(t *testing.T) {
	suffixes := map[string]kubeadmRow{}
	files := map[string]string{}
	for _, r := range kubeadmPKI {
		_, dup := suffixes[r.suffix]
		assert.False(t, dup, "suffix %q twice", r.suffix)
		suffixes[r.suffix] = r
		if other, dup := files[r.file]; dup {
			t.Errorf("file %q used by %q and %q", r.file, other, r.suffix)
		}
		files[r.file] = r.suffix
		assert.NotEmpty(t, r.file, r.suffix)
	}
	for _, r := range kubeadmPKI {
		t.Run(r.suffix, func(t *testing.T) {
			switch r.kind {
			case KindCertificateAuthority, KindKeyPair:
				assert.Empty(t, r.issuer, "kubeadm's CAs are roots")
				assert.False(t, r.perNode)
			case KindCertificate, KindKubeconfig:
				iss, ok := suffixes[r.issuer]
				require.True(t, ok, "issuer %q is a row", r.issuer)
				assert.Equal(t, KindCertificateAuthority, iss.kind, "issuer %q is a CA", r.issuer)
				assert.NotEmpty(t, r.cn)
				// A row is per node because its subject names the node or because
				// it points at the node's own apiserver; anything else per node
				// would only issue the same identity several times.
				assert.Equal(t, r.perNode, strings.Contains(r.cn, kubeadmNodeVar) || r.local, "per-node rows, and only they, name the node or its apiserver")
			default:
				t.Fatalf("unknown kind %q", r.kind)
			}
			if r.kind == KindCertificate {
				assert.Contains(t, Profiles, r.profile)
			} else {
				assert.Empty(t, r.profile)
			}
			if r.kind != KindKubeconfig {
				assert.Nil(t, r.rbac)
				assert.False(t, r.privileged)
				assert.False(t, r.local, "only a kubeconfig has a server")
			}
		})
	}
}

// TestLoadHandDeclaredKubeadmKubeconfig: a component kubeconfig written by hand
// next to the preset keeps an exact identity with omitKubeconfigGroup, and the
// preset's annotations, written by hand too, are what `export kubeadm` follows.
func TestLoadHandDeclaredKubeadmKubeconfig(t *testing.T) {
	preset, err := os.ReadFile("../examples/kubeadm/kubeadm.yaml")
	require.NoError(t, err)
	dir := writeTree(t, map[string]string{
		"kubeadm.yaml": string(preset),
		"agent.yaml": `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: demo-node-agent-conf-cp-0
  annotations:
    gitca.dev/kubeadm-file: node-agent.conf
    gitca.dev/cluster: demo
    gitca.dev/node: cp-0
spec:
  issuer: demo-ca
  username: system:node-agent:cp-0
  groups: [system:node-agents]
  omitKubeconfigGroup: true
  target: {server: "https://127.0.0.1:6443", ca: demo-ca}
  secret: {cluster: demo, namespace: kube-system}
`,
	})
	top, err := Load(dir)
	require.NoError(t, err)
	k := top.Kubeconfig("demo-node-agent-conf-cp-0")
	require.NotNil(t, k)
	assert.True(t, k.Spec.OmitKubeconfigGroup)
	assert.Equal(t, []string{"system:node-agents"}, k.Spec.Groups)
	assert.Equal(t, map[string]string{AnnotationKubeadmFile: "node-agent.conf", AnnotationCluster: "demo", AnnotationNode: "cp-0"},
		k.Metadata.Annotations)
}
