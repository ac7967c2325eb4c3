// Package graph draws the issuer tree of a topology as Mermaid or DOT.
//
// Every object of the topology becomes a node named by its object ID,
// "<Kind>/<name>" as the plan and the state name it (a PEM file that a trust
// bundle includes is "File/<path>"). Solid edges run from an issuer to what it
// signs; dotted edges from a source to the trust bundle that includes it, so
// trust and signing never look alike.
package graph

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/topology"
)

// KindFile is the object-ID kind of a PEM file a trust bundle includes; the
// topology has no such kind, the graph needs a node for it.
const KindFile = "File"

// Kind is what a node is drawn as; its value is the node's class in both formats.
type Kind string

const (
	Root       Kind = "root"       // a self-signed CA that gitca makes
	CA         Kind = "ca"         // an intermediate CA
	Imported   Kind = "imported"   // an imported root whose key gitca holds
	Offline    Kind = "offline"    // an imported root without a key: trusted, never signs
	Cert       Kind = "cert"       // a server, client or peer certificate
	Kubeconfig Kind = "kubeconfig" // a client certificate in a kubeconfig
	KeyPair    Kind = "keypair"    // a bare key pair, signed by nothing
	Bundle     Kind = "bundle"     // a trust bundle
	File       Kind = "file"       // a PEM file a trust bundle includes
)

// EdgeKind tells signing from trust.
type EdgeKind string

const (
	Issues   EdgeKind = "issues"   // From (a CA) signs To
	Includes EdgeKind = "includes" // To (a trust bundle) includes From (a CA, bundle or file)
)

// edgeRank puts signing before trust, the order a reader follows the tree in.
var edgeRank = map[EdgeKind]int{Issues: 0, Includes: 1}

// Options choose what is drawn and how. The zero value draws the whole topology.
type Options struct {
	// Cluster restricts the graph to the objects delivered into that cluster's
	// overlay, plus what they hang from: every CA on their issuer path and, for
	// a trust bundle, its sources.
	Cluster string
	// Only further restricts the objects drawn to these object IDs (plus, again,
	// what they hang from); nil draws everything, an empty map nothing. IDs
	// the topology does not have, such as deleted objects in a plan, are ignored.
	Only map[string]bool
	// Changed marks nodes by object ID with the class "changed".
	Changed map[string]bool
	// NotAfter annotates nodes by object ID with the days left until that time,
	// counted from Now, which must then be set.
	NotAfter map[string]time.Time
	Now      time.Time
}

// Node is one object of the topology.
type Node struct {
	ID       string // object ID, "<Kind>/<name>"
	Key      string // the node's identifier in Mermaid and DOT: letters, digits and '_' only
	Kind     Kind
	Name     string
	Changed  bool
	NotAfter time.Time // zero when unknown
}

// Edge links two nodes by object ID.
type Edge struct {
	From, To string
	Kind     EdgeKind
}

// Graph is what New selected from a topology, ready to be written.
type Graph struct {
	// Nodes are CAs with every issuer before what it signs, then certificates,
	// kubeconfigs, key pairs, files and trust bundles, each by name: the
	// order the layout engines place them in, so it never depends on file order.
	Nodes []Node
	// Edges are issuer edges, then bundle edges, each sorted by From, then To.
	Edges []Edge
	now   time.Time
}

// object is a node before selection, with what it hangs from.
type object struct {
	node     Node
	issuer   string   // object ID of the issuing CA, if any
	sources  []string // object IDs a trust bundle includes
	clusters []string // overlays the object is delivered into
}

// New selects the nodes and edges of t that opt asks for.
func New(t *topology.Topology, opt Options) (*Graph, error) {
	if len(opt.NotAfter) > 0 && opt.Now.IsZero() {
		return nil, fmt.Errorf("graph: Options.NotAfter needs Options.Now to count days left from")
	}
	objs := objects(t)
	if opt.Cluster != "" {
		known := map[string]bool{}
		for _, c := range t.Config.Spec.Clusters {
			known[c.Name] = true
		}
		for _, o := range objs {
			for _, c := range o.clusters {
				known[c] = true
			}
		}
		if !known[opt.Cluster] {
			return nil, fmt.Errorf("cluster %q is not in the topology (clusters: %s)", opt.Cluster, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		}
	}

	byID := map[string]*object{}
	for _, o := range objs {
		byID[o.node.ID] = o
	}
	keep := map[string]bool{}
	var add func(id string)
	add = func(id string) {
		o := byID[id]
		if o == nil || keep[id] {
			return
		}
		keep[id] = true
		if o.issuer != "" {
			add(o.issuer)
		}
		for _, s := range o.sources {
			add(s)
		}
	}
	for _, o := range objs {
		if opt.Cluster != "" && !slices.Contains(o.clusters, opt.Cluster) {
			continue
		}
		if opt.Only != nil && !opt.Only[o.node.ID] {
			continue
		}
		add(o.node.ID)
	}

	g := &Graph{now: opt.Now}
	for _, o := range objs {
		if !keep[o.node.ID] {
			continue
		}
		n := o.node
		n.Changed = opt.Changed[n.ID]
		n.NotAfter = opt.NotAfter[n.ID]
		g.Nodes = append(g.Nodes, n)
		// add kept what an object hangs from only when the topology has it, so
		// every edge here ends at a node.
		if keep[o.issuer] {
			g.Edges = append(g.Edges, Edge{From: o.issuer, To: n.ID, Kind: Issues})
		}
		for _, s := range o.sources {
			if keep[s] {
				g.Edges = append(g.Edges, Edge{From: s, To: n.ID, Kind: Includes})
			}
		}
	}
	slices.SortFunc(g.Edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(edgeRank[a.Kind], edgeRank[b.Kind]), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	// A bundle may name the same source twice; one line says it.
	g.Edges = slices.Compact(g.Edges)
	return g, nil
}

// objects lists every object of t in drawing order.
func objects(t *topology.Topology) []*object {
	var out []*object
	node := func(kind, name string, k Kind) Node {
		id := kind + "/" + name
		return Node{ID: id, Key: nodeKey(id), Kind: k, Name: name}
	}
	caID := func(name string) string {
		if name == "" {
			return ""
		}
		return topology.KindCertificateAuthority + "/" + name
	}
	for _, ca := range t.CAOrder() {
		k := Root
		switch {
		case ca.Spec.Import != nil && ca.Spec.Import.Key == "":
			k = Offline
		case ca.Spec.Import != nil:
			k = Imported
		case ca.Spec.Issuer != "":
			k = CA
		}
		o := &object{node: node(topology.KindCertificateAuthority, ca.Metadata.Name, k), issuer: caID(ca.Spec.Issuer)}
		if ca.Spec.Import != nil {
			o.issuer = "" // an imported CA is a root whatever else it says
		}
		if ca.Spec.Secret != nil {
			o.clusters = []string{ca.Spec.Secret.Cluster}
		}
		out = append(out, o)
	}
	// Load sorts these already; sorting again keeps a topology built in code
	// (the plan's, a test's) from drawing differently.
	for _, c := range sortedByName(t.Certificates, func(c *topology.Certificate) string { return c.Metadata.Name }) {
		out = append(out, &object{node: node(topology.KindCertificate, c.Metadata.Name, Cert),
			issuer: caID(c.Spec.Issuer), clusters: []string{c.Spec.Secret.Cluster}})
	}
	for _, k := range sortedByName(t.Kubeconfigs, func(k *topology.Kubeconfig) string { return k.Metadata.Name }) {
		out = append(out, &object{node: node(topology.KindKubeconfig, k.Metadata.Name, Kubeconfig),
			issuer: caID(k.Spec.Issuer), clusters: []string{k.Spec.Secret.Cluster}})
	}
	for _, k := range sortedByName(t.KeyPairs, func(k *topology.KeyPair) string { return k.Metadata.Name }) {
		out = append(out, &object{node: node(topology.KindKeyPair, k.Metadata.Name, KeyPair),
			clusters: []string{k.Spec.Secret.Cluster}})
	}
	files := map[string]bool{}
	var bundles []*object
	for _, b := range sortedByName(t.TrustBundles, func(b *topology.TrustBundle) string { return b.Metadata.Name }) {
		o := &object{node: node(topology.KindTrustBundle, b.Metadata.Name, Bundle)}
		for _, s := range b.Spec.Sources {
			switch {
			case s.CA != "":
				o.sources = append(o.sources, caID(s.CA))
			case s.Bundle != "":
				o.sources = append(o.sources, topology.KindTrustBundle+"/"+s.Bundle)
			case s.File != "":
				o.sources = append(o.sources, KindFile+"/"+s.File)
				files[s.File] = true
			}
		}
		for _, r := range []*topology.SecretRef{b.Spec.ConfigMap, b.Spec.Secret} {
			if r != nil && !slices.Contains(o.clusters, r.Cluster) {
				o.clusters = append(o.clusters, r.Cluster)
			}
		}
		bundles = append(bundles, o)
	}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		out = append(out, &object{node: node(KindFile, f, File)})
	}
	return append(out, bundles...)
}

func sortedByName[T any](items []*T, name func(*T) string) []*T {
	return slices.SortedStableFunc(slices.Values(items), func(a, b *T) int { return cmp.Compare(name(a), name(b)) })
}

// nodeKey turns an object ID into an identifier that Mermaid and DOT both take
// unquoted and that no two object IDs share. Names are lowercase DNS names, so
// the common characters stay readable: a kind prefix, lowercase letters and
// digits as they are, '-' as '_'; every other byte, uppercase letters included,
// becomes 'X' and two uppercase hex digits, which nothing else produces. The
// prefixes start with a letter (DOT needs one) and keep keys off Mermaid's
// keywords ("end", "graph").
func nodeKey(id string) string {
	kind, name, _ := strings.Cut(id, "/")
	prefix, ok := map[string]string{
		topology.KindCertificateAuthority: "ca_",
		topology.KindCertificate:          "cert_",
		topology.KindKubeconfig:           "kubeconfig_",
		topology.KindKeyPair:              "keypair_",
		topology.KindTrustBundle:          "bundle_",
		KindFile:                          "file_",
	}[kind]
	if !ok {
		prefix, name = "other_", id
	}
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '-':
			b.WriteByte('_')
		default:
			fmt.Fprintf(&b, "X%02X", c)
		}
	}
	return b.String()
}

// note is the second line of a node's label: the days left until its not-after.
func (g *Graph) note(n Node) string {
	if n.NotAfter.IsZero() {
		return ""
	}
	left := n.NotAfter.Sub(g.now)
	days := int(left.Hours() / 24) // whole days, rounded toward zero
	switch {
	case left > 0:
		return fmt.Sprintf("%dd left", days)
	case days == 0:
		return "expired"
	}
	return fmt.Sprintf("expired %dd ago", -days)
}
