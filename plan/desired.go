package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// Shape is the normalized spec of a certificate: everything that, when it changes,
// requires a new certificate. It is stored as JSON in the gitca.dev/spec
// annotation, so spec drift is found by comparing two Shapes without parsing
// certificates and without decrypting.
type Shape struct {
	Issuer        string   `json:"issuer,omitempty"`
	CommonName    string   `json:"cn,omitempty"`
	Organizations []string `json:"o,omitempty"`
	OrgUnits      []string `json:"ou,omitempty"`
	Countries     []string `json:"c,omitempty"`
	Localities    []string `json:"l,omitempty"`
	CA            bool     `json:"ca,omitempty"`
	PathLen       *int     `json:"pathLen,omitempty"`
	Profile       string   `json:"profile,omitempty"`
	DNSNames      []string `json:"dns,omitempty"`
	IPAddresses   []string `json:"ip,omitempty"`
	URIs          []string `json:"uri,omitempty"`
	KeyAlgorithm  string   `json:"key"`
	Validity      string   `json:"validity,omitempty"`
	// Imported records the fingerprint of an imported CA certificate: a new file is a new CA.
	Imported string `json:"imported,omitempty"`
	// Members are the Kubeconfigs a merged kubeconfig holds.
	Members []string `json:"members,omitempty"`
}

// Subject is the distinguished name the shape's certificate (or a CA's
// request, signed offline) carries.
func (sh Shape) Subject() topology.Subject {
	return topology.Subject{CommonName: sh.CommonName, Organizations: sh.Organizations,
		OrganizationalUnit: sh.OrgUnits, Countries: sh.Countries, Localities: sh.Localities}
}

// JSON is the canonical encoding (struct field order, no spaces).
func (s Shape) JSON() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	return string(b)
}

// Hash is "sha256:<hex>" of JSON.
func (s Shape) Hash() string {
	sum := sha256.Sum256([]byte(s.JSON()))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ObjectKind is the kind of a topology object that owns a record in the state.
type ObjectKind string

const (
	KindCA         ObjectKind = topology.KindCertificateAuthority
	KindCert       ObjectKind = topology.KindCertificate
	KindKeyPair    ObjectKind = topology.KindKeyPair
	KindKubeconfig ObjectKind = topology.KindKubeconfig
	// KindMergedKubeconfig is one kubeconfig holding the users and contexts of
	// every Kubeconfig whose spec.mergeInto names it; it has no certificate
	// of its own.
	KindMergedKubeconfig ObjectKind = "MergedKubeconfig"
)

// Desired is one object the topology wants in the state.
type Desired struct {
	ID          string // "<Kind>/<name>"
	Kind        ObjectKind
	Name        string
	Shape       Shape
	RenewBefore time.Duration
	Rotation    topology.RotationPolicy
	Path        string // primary record, slash path relative to the state root
	Secret      Delivery
	Recipients  []string // sorted; empty means "not known at plan time"
	Annotations map[string]string
	Origin      topology.Origin

	CA         *topology.CertificateAuthority // set for KindCA
	Kubeconfig *topology.Kubeconfig           // set for KindKubeconfig
	// Members are the Kubeconfigs of a KindMergedKubeconfig, by name.
	Members []*Desired
	// Copy is where a CA is additionally delivered into a cluster, nil if nowhere.
	Copy *Delivery

	hash string
}

// Hash is Shape.Hash, computed once: a plan compares it for every object.
func (d *Desired) Hash() string {
	if d.hash == "" {
		d.hash = d.Shape.Hash()
	}
	return d.hash
}

// Recipients decides who can open each file. Reconciler recipients open
// everything; a cluster's own recipients open only its overlay (least knowledge).
type Recipients struct {
	Reconciler []string
	BreakGlass []string
	Clusters   map[string][]string
}

// ForCA is the recipient set of files under ca/.
func (r Recipients) ForCA() []string { return sortedUnion(r.Reconciler, r.BreakGlass) }

// ForCluster is the recipient set of files in a cluster overlay.
func (r Recipients) ForCluster(c string) []string {
	return sortedUnion(r.Reconciler, r.Clusters[c])
}

func sortedUnion(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// ResolveRecipients takes recipients from the Config, falling back to env
// (SOPS_AGE_RECIPIENTS, as the sops CLI does) for the reconciler.
func ResolveRecipients(t *topology.Topology, env []string) Recipients {
	r := Recipients{
		Reconciler: t.Config.Spec.Reconciler.Age,
		BreakGlass: t.Config.Spec.Reconciler.BreakGlass,
		Clusters:   map[string][]string{},
	}
	if len(r.Reconciler) == 0 {
		r.Reconciler = env
	}
	for _, c := range t.Config.Spec.Clusters {
		r.Clusters[c.Name] = c.Recipients
	}
	return r
}

func subjectShape(s *Shape, sub topology.Subject) {
	s.CommonName = sub.CommonName
	s.Organizations = sortedCopy(sub.Organizations)
	s.OrgUnits = sortedCopy(sub.OrganizationalUnit)
	s.Countries = sortedCopy(sub.Countries)
	s.Localities = sortedCopy(sub.Localities)
}

func sortedCopy(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}

// normalizeIPs sorts IPs in their canonical text form so "::1" and "0::1" are one SAN.
func normalizeIPs(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if ip := net.ParseIP(s); ip != nil {
			out = append(out, ip.String())
		} else {
			out = append(out, s)
		}
	}
	return sortedCopy(out)
}

func durationText(d *topology.Duration) string {
	if d == nil {
		return ""
	}
	return d.String()
}

// DesiredObjects flattens a topology into its records, CAs in issuer order
// (issuers first), then certificates, key pairs and kubeconfigs by name.
func DesiredObjects(t *topology.Topology, rcp Recipients) []*Desired {
	l := LayoutOf(t)
	var out []*Desired
	for _, ca := range t.CAOrder() {
		s := ca.Spec
		sh := Shape{Issuer: s.Issuer, CA: true, PathLen: s.PathLen, KeyAlgorithm: string(s.KeyAlgorithm), Validity: durationText(s.Validity)}
		subjectShape(&sh, s.Subject)
		if s.Import != nil {
			// An imported CA's shape is its file; the subject, key and validity are whatever the file says.
			sh = Shape{CA: true, Imported: s.Import.Certificate}
		}
		d := &Desired{
			ID: string(KindCA) + "/" + ca.Metadata.Name, Kind: KindCA, Name: ca.Metadata.Name,
			Shape: sh, RenewBefore: renewBefore(s.ValidityPolicy), Rotation: s.RotationPolicy,
			Path:        l.CARecord(ca.Metadata.Name),
			Recipients:  rcp.ForCA(),
			Annotations: ca.Metadata.Annotations, Origin: ca.Origin, CA: ca,
		}
		if s.Secret != nil {
			dl := l.Secret(*s.Secret)
			d.Copy = &dl
		}
		out = append(out, d)
	}
	for _, c := range t.Certificates {
		s := c.Spec
		sh := Shape{Issuer: s.Issuer, Profile: string(s.Profile), KeyAlgorithm: string(s.KeyAlgorithm), Validity: durationText(s.Validity),
			DNSNames: sortedCopy(s.DNSNames), IPAddresses: normalizeIPs(s.IPAddresses), URIs: sortedCopy(s.URIs)}
		subjectShape(&sh, s.Subject)
		dl := l.Secret(s.Secret)
		out = append(out, &Desired{
			ID: string(KindCert) + "/" + c.Metadata.Name, Kind: KindCert, Name: c.Metadata.Name,
			Shape: sh, RenewBefore: renewBefore(s.ValidityPolicy), Rotation: s.RotationPolicy,
			Path: dl.Path, Secret: dl, Recipients: rcp.ForCluster(s.Secret.Cluster),
			Annotations: c.Metadata.Annotations, Origin: c.Origin,
		})
	}
	for _, k := range t.KeyPairs {
		dl := l.Secret(k.Spec.Secret)
		out = append(out, &Desired{
			ID: string(KindKeyPair) + "/" + k.Metadata.Name, Kind: KindKeyPair, Name: k.Metadata.Name,
			Shape:    Shape{KeyAlgorithm: string(k.Spec.KeyAlgorithm)},
			Rotation: topology.RotateNever,
			Path:     dl.Path, Secret: dl, Recipients: rcp.ForCluster(k.Spec.Secret.Cluster),
			Annotations: k.Metadata.Annotations, Origin: k.Origin,
		})
	}
	merged := map[string]*Desired{}
	var mergedOrder []string
	for _, k := range t.Kubeconfigs {
		s := k.Spec
		sh := Shape{Issuer: s.Issuer, Profile: string(topology.ProfileClient), KeyAlgorithm: string(s.KeyAlgorithm), Validity: durationText(s.Validity),
			CommonName: s.Username, Organizations: sortedCopy(kubeconfigGroups(k))}
		dl := l.Secret(s.Secret)
		d := &Desired{
			ID: string(KindKubeconfig) + "/" + k.Metadata.Name, Kind: KindKubeconfig, Name: k.Metadata.Name,
			Shape: sh, RenewBefore: renewBefore(s.ValidityPolicy), Rotation: s.RotationPolicy,
			Path: dl.Path, Secret: dl, Recipients: rcp.ForCluster(s.Secret.Cluster),
			Annotations: k.Metadata.Annotations, Origin: k.Origin, Kubeconfig: k,
		}
		if m := s.MergeInto; m != "" {
			// A member's own record (its key and certificate) stays with the
			// reconciler; only the merged kubeconfig is delivered.
			d.Path, d.Recipients = l.MergedMember(k.Metadata.Name), rcp.ForCA()
			d.Secret = Delivery{Cluster: dl.Cluster, Namespace: dl.Namespace, Name: k.Metadata.Name, Path: d.Path}
			set := merged[m]
			if set == nil {
				set = &Desired{ID: string(KindMergedKubeconfig) + "/" + m, Kind: KindMergedKubeconfig, Name: m,
					Shape: Shape{Profile: "merged-kubeconfig"}, Rotation: topology.RotateNever,
					Path: dl.Path, Secret: dl, Recipients: rcp.ForCluster(s.Secret.Cluster), Origin: k.Origin}
				merged[m] = set
				mergedOrder = append(mergedOrder, m)
			}
			set.Members = append(set.Members, d)
			set.Shape.Members = append(set.Shape.Members, k.Metadata.Name)
		}
		out = append(out, d)
	}
	// Merged kubeconfigs after their members, which they are made from.
	sort.Strings(mergedOrder)
	for _, m := range mergedOrder {
		out = append(out, merged[m])
	}
	return out
}

// kubeconfigGroups is the certificate's O: the groups plus kubeconfig:<name>, so
// RBAC can bind this one kubeconfig rather than every user of the same name.
func kubeconfigGroups(k *topology.Kubeconfig) []string {
	g := slices.Clone(k.Spec.Groups)
	if !k.Spec.OmitKubeconfigGroup {
		g = append(g, "kubeconfig:"+k.Metadata.Name)
	}
	return g
}

func renewBefore(p topology.ValidityPolicy) time.Duration {
	if p.RenewBefore != nil {
		return p.RenewBefore.Duration
	}
	if p.Validity != nil {
		return p.Validity.Duration / 3
	}
	return 0
}

// Validity is the desired lifetime of a certificate; imported CAs have none.
func (d *Desired) Validity() time.Duration {
	if d.Shape.Validity == "" {
		return 0
	}
	v, err := time.ParseDuration(d.Shape.Validity)
	if err != nil {
		panic(fmt.Sprintf("plan: shape validity %q: %v", d.Shape.Validity, err)) // we wrote it with Duration.String
	}
	return v
}

// storedShape reads the shape a state object was rendered from.
func storedShape(o *state.Object) (Shape, bool) {
	raw := o.Annotations[state.AnnotationSpec]
	if raw == "" {
		return Shape{}, false
	}
	var s Shape
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Shape{}, false
	}
	return s, true
}
