package graph

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/topology"
)

var update = flag.Bool("update", false, "rewrite testdata/golden (and docs/pki-kcp.svg when mmdc is found)")

// topologies the tests draw: both examples, and one with two clusters,
// imported and offline roots, a key pair, bundle inheritance and a PEM file.
var topologies = map[string]string{
	"kcp":      "../examples/kcp",
	"kubeadm":  "../examples/kubeadm",
	"clusters": "testdata/clusters",
}

func load(t testing.TB, name string) *topology.Topology {
	t.Helper()
	tp, err := topology.Load(topologies[name])
	require.NoError(t, err)
	return tp
}

func draw(t testing.TB, tp *topology.Topology, opt Options, f Format) string {
	t.Helper()
	g, err := New(tp, opt)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, g.Write(&b, f))
	return b.String()
}

// golden compares got with testdata/golden/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./graph/ -update to create it")
	assert.Equal(t, string(want), got, "%s is stale: go test ./graph/ -update, and review the diff", p)
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestGraphGolden(t *testing.T) {
	cases := []struct {
		name, topo string
		opt        Options
	}{
		{"kcp", "kcp", Options{}},
		{"kubeadm", "kubeadm", Options{}},
		{"clusters", "clusters", Options{}},
		{"clusters-east", "clusters", Options{Cluster: "east"}},
		{"clusters-west", "clusters", Options{Cluster: "west"}},
		// What a pull request's plan embeds: the changed part, highlighted, with days left.
		{"kcp-plan", "kcp", Options{
			Only:    map[string]bool{"Certificate/alpha-edge-server": true, "Kubeconfig/susan": true, "TrustBundle/alpha-edge-client-ca-bundle": true},
			Changed: map[string]bool{"Certificate/alpha-edge-server": true, "Kubeconfig/susan": true},
			NotAfter: map[string]time.Time{
				"Certificate/alpha-edge-server":          t0.Add(90 * 24 * time.Hour),
				"Kubeconfig/susan":                       t0.Add(-50 * time.Hour),
				"CertificateAuthority/alpha-server-ca":   t0.Add(3650 * 24 * time.Hour),
				"CertificateAuthority/kcp-pki-bootstrap": t0.Add(3650*24*time.Hour + time.Hour),
			},
			Now: t0,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := load(t, c.topo)
			golden(t, c.name+".mmd", draw(t, tp, c.opt, Mermaid))
			golden(t, c.name+".dot", draw(t, tp, c.opt, DOT))
		})
	}
}

// reading is what a reader of an output sees: nodes (by the object ID that
// their class and label name) and the two kinds of edges between them.
type reading struct {
	nodes    map[string]string // node identifier → object ID
	classes  map[string][]string
	notes    map[string]string // object ID → second label line
	issues   []string          // "from → to", object IDs, sorted
	includes []string
}

// objectKind maps a node class back to the topology kind it draws.
var objectKind = map[string]string{
	"root": topology.KindCertificateAuthority, "ca": topology.KindCertificateAuthority,
	"imported": topology.KindCertificateAuthority, "offline": topology.KindCertificateAuthority,
	"cert": topology.KindCertificate, "kubeconfig": topology.KindKubeconfig, "keypair": topology.KindKeyPair,
	"bundle": topology.KindTrustBundle, "file": KindFile,
}

var (
	mermaidNode    = regexp.MustCompile(`^  (\w+)[^"\w]*"([^"]*)"[^"\w]*:::(\w+)$`)
	mermaidEdge    = regexp.MustCompile(`^  (\w+) (-->|-\.->) (\w+)$`)
	mermaidClass   = regexp.MustCompile(`^  class ([\w,]+) (\w+)$`)
	mermaidDefault = regexp.MustCompile(`^(%%.*|flowchart LR|  classDef .*)$`)
	dotNode        = regexp.MustCompile(`^  (\w+) \[label="((?:[^"\\]|\\.)*)", class="([\w ]+)", .*\];$`)
	dotEdge        = regexp.MustCompile(`^  (\w+) -> (\w+) \[class="(\w+)"(, style=dotted)?\];$`)
	dotDefault     = regexp.MustCompile(`^(//.*|digraph gitca \{|  rankdir=LR;|  node \[.*\];|\})$`)
)

// read parses an output line by line; a line it does not understand fails
// the test, so nothing can hide in the output.
func read(t testing.TB, out string, f Format) reading {
	t.Helper()
	r := reading{nodes: map[string]string{}, classes: map[string][]string{}, notes: map[string]string{}}
	node := func(key, label string, classes []string) {
		require.NotContains(t, r.nodes, key, "node %s declared twice", key)
		name, note, _ := strings.Cut(label, "\n")
		id := objectKind[classes[0]] + "/" + name
		require.NotContains(t, slices.Collect(maps.Values(r.nodes)), id, "two nodes draw %s", id)
		r.nodes[key], r.classes[key] = id, classes
		if note != "" {
			r.notes[id] = note
		}
	}
	var issues, includes [][2]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m []string
		switch f {
		case Mermaid:
			if m = mermaidNode.FindStringSubmatch(line); m != nil {
				label := strings.NewReplacer("<br/>", "\n", "#quot;", `"`, "#35;", "#", "#lt;", "<", "#gt;", ">", "#amp;", "&").Replace(m[2])
				node(m[1], label, []string{m[3]})
			} else if m = mermaidEdge.FindStringSubmatch(line); m != nil {
				e := [2]string{m[1], m[3]}
				if m[2] == "-.->" {
					includes = append(includes, e)
				} else {
					issues = append(issues, e)
				}
			} else if m = mermaidClass.FindStringSubmatch(line); m != nil {
				for k := range strings.SplitSeq(m[1], ",") {
					require.Contains(t, r.nodes, k, "class of an undeclared node")
					r.classes[k] = append(r.classes[k], m[2])
				}
			} else if !mermaidDefault.MatchString(line) {
				t.Fatalf("unexpected Mermaid line %q", line)
			}
		case DOT:
			if m = dotNode.FindStringSubmatch(line); m != nil {
				label := strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(m[2])
				node(m[1], label, strings.Fields(m[3]))
			} else if m = dotEdge.FindStringSubmatch(line); m != nil {
				e := [2]string{m[1], m[2]}
				// The style is what a reader tells the edges apart by; the class must agree.
				if m[4] != "" {
					assert.Equal(t, string(Includes), m[3], line)
					includes = append(includes, e)
				} else {
					assert.Equal(t, string(Issues), m[3], line)
					issues = append(issues, e)
				}
			} else if !dotDefault.MatchString(line) {
				t.Fatalf("unexpected DOT line %q", line)
			}
		}
	}
	ids := func(es [][2]string) []string {
		var out []string
		for _, e := range es {
			require.Contains(t, r.nodes, e[0], "edge from an undeclared node")
			require.Contains(t, r.nodes, e[1], "edge to an undeclared node")
			out = append(out, r.nodes[e[0]]+" → "+r.nodes[e[1]])
		}
		slices.Sort(out)
		return out
	}
	r.issues, r.includes = ids(issues), ids(includes)
	return r
}

// want is the topology's own account of its objects and edges, walked here
// independently of the package.
type want struct {
	objects          []string
	issues, includes []string
}

func topologyWant(tp *topology.Topology) want {
	var w want
	issue := func(issuer, id string) {
		if issuer != "" {
			w.issues = append(w.issues, topology.KindCertificateAuthority+"/"+issuer+" → "+id)
		}
	}
	for _, ca := range tp.CAs {
		id := topology.KindCertificateAuthority + "/" + ca.Metadata.Name
		w.objects = append(w.objects, id)
		issue(ca.Spec.Issuer, id)
	}
	for _, c := range tp.Certificates {
		id := topology.KindCertificate + "/" + c.Metadata.Name
		w.objects = append(w.objects, id)
		issue(c.Spec.Issuer, id)
	}
	for _, k := range tp.Kubeconfigs {
		id := topology.KindKubeconfig + "/" + k.Metadata.Name
		w.objects = append(w.objects, id)
		issue(k.Spec.Issuer, id)
	}
	for _, k := range tp.KeyPairs {
		w.objects = append(w.objects, topology.KindKeyPair+"/"+k.Metadata.Name)
	}
	for _, b := range tp.TrustBundles {
		id := topology.KindTrustBundle + "/" + b.Metadata.Name
		w.objects = append(w.objects, id)
		for _, s := range b.Spec.Sources {
			from := map[bool]string{true: KindFile + "/" + s.File}[s.File != ""]
			if s.CA != "" {
				from = topology.KindCertificateAuthority + "/" + s.CA
			}
			if s.Bundle != "" {
				from = topology.KindTrustBundle + "/" + s.Bundle
			}
			w.includes = append(w.includes, from+" → "+id)
			if s.File != "" && !slices.Contains(w.objects, from) {
				w.objects = append(w.objects, from)
			}
		}
	}
	slices.Sort(w.objects)
	slices.Sort(w.issues)
	slices.Sort(w.includes)
	w.includes = slices.Compact(w.includes)
	return w
}

// TestGraphEdgesAreTheTopologys: every object is drawn once, and the edges
// drawn are exactly the issuer edges and bundle sources of the topology.
func TestGraphEdgesAreTheTopologys(t *testing.T) {
	for name := range topologies {
		for _, f := range Formats {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				tp := load(t, name)
				r := read(t, draw(t, tp, Options{}, f), f)
				w := topologyWant(tp)
				assert.Equal(t, w.objects, slices.Sorted(maps.Values(r.nodes)))
				assert.Equal(t, w.issues, r.issues)
				assert.Equal(t, w.includes, r.includes)
				assert.NotEmpty(t, r.issues)
			})
		}
	}
}

func TestGraphKindsOfCAs(t *testing.T) {
	r := read(t, draw(t, load(t, "clusters"), Options{}, Mermaid), Mermaid)
	got := map[string]string{}
	for k, id := range r.nodes {
		if strings.HasPrefix(id, topology.KindCertificateAuthority+"/") {
			got[strings.TrimPrefix(id, topology.KindCertificateAuthority+"/")] = r.classes[k][0]
		}
	}
	assert.Equal(t, map[string]string{
		"corp-root": "imported", "legacy-root": "offline", "west-root": "root",
		"east-ca": "ca", "west-ca": "ca", "spare-ca": "ca",
	}, got)
}

// TestGraphCluster: a cluster's view is what is delivered there plus what it
// hangs from, whichever cluster that is delivered to.
func TestGraphCluster(t *testing.T) {
	tp := load(t, "clusters")
	for _, c := range []struct {
		cluster string
		want    []string
	}{
		{"east", []string{
			"Certificate/api-east", "Certificate/api.east", "KeyPair/sa", "Kubeconfig/admin", "TrustBundle/east-bundle", // delivered
			"CertificateAuthority/east-ca", "CertificateAuthority/corp-root", // issuer path
			"TrustBundle/roots", "CertificateAuthority/legacy-root", "File/imported/legacy-root.crt", // east-bundle's sources, delivered to west
		}},
		{"west", []string{
			"CertificateAuthority/west-root", "Certificate/web", "TrustBundle/roots", "TrustBundle/west-bundle",
			"CertificateAuthority/west-ca",
			"CertificateAuthority/corp-root", "CertificateAuthority/legacy-root", "File/imported/legacy-root.crt",
		}},
	} {
		for _, f := range Formats {
			t.Run(c.cluster+"/"+string(f), func(t *testing.T) {
				r := read(t, draw(t, tp, Options{Cluster: c.cluster}, f), f)
				assert.ElementsMatch(t, c.want, slices.Collect(maps.Values(r.nodes)))
				// Every edge of the topology between two drawn nodes is drawn.
				w := topologyWant(tp)
				drawn := map[string]bool{}
				for _, id := range r.nodes {
					drawn[id] = true
				}
				between := func(es []string) []string {
					return slices.DeleteFunc(slices.Clone(es), func(e string) bool {
						from, to, _ := strings.Cut(e, " → ")
						return !drawn[from] || !drawn[to]
					})
				}
				assert.Equal(t, between(w.issues), r.issues)
				assert.Equal(t, between(w.includes), r.includes)
			})
		}
	}

	// A cluster the Config lists but nothing is delivered to draws nothing.
	tp.Config.Spec.Clusters = append(tp.Config.Spec.Clusters, topology.Cluster{Name: "north"})
	g, err := New(tp, Options{Cluster: "north"})
	require.NoError(t, err)
	assert.Empty(t, g.Nodes)
	assert.Empty(t, g.Edges)

	_, err = New(tp, Options{Cluster: "south"})
	require.EqualError(t, err, `cluster "south" is not in the topology (clusters: east, north, west)`)
}

func TestGraphOnlyChangedAndDaysLeft(t *testing.T) {
	tp := load(t, "kubeadm")
	opt := Options{
		Only:    map[string]bool{"Certificate/demo-apiserver-etcd-client": true, "Certificate/deleted-in-this-plan": true},
		Changed: map[string]bool{"Certificate/demo-apiserver-etcd-client": true, "CertificateAuthority/demo-ca": true},
		NotAfter: map[string]time.Time{
			"Certificate/demo-apiserver-etcd-client": t0.Add(30*24*time.Hour - time.Minute),
			"CertificateAuthority/demo-etcd-ca":      t0.Add(-time.Minute),
		},
		Now: t0,
	}
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			r := read(t, draw(t, tp, opt, f), f)
			// Only the certificate and its issuer: demo-ca is changed but not asked for.
			assert.ElementsMatch(t, []string{"Certificate/demo-apiserver-etcd-client", "CertificateAuthority/demo-etcd-ca"}, slices.Collect(maps.Values(r.nodes)))
			assert.Equal(t, []string{"CertificateAuthority/demo-etcd-ca → Certificate/demo-apiserver-etcd-client"}, r.issues)
			for k, id := range r.nodes {
				assert.Equal(t, id == "Certificate/demo-apiserver-etcd-client", slices.Contains(r.classes[k], "changed"), id)
			}
			// Whole days, rounded down: 29 days 23:59 left is 29 days.
			assert.Equal(t, map[string]string{
				"Certificate/demo-apiserver-etcd-client": "29d left",
				"CertificateAuthority/demo-etcd-ca":      "expired",
			}, r.notes)
		})
	}

	_, err := New(tp, Options{NotAfter: opt.NotAfter})
	require.ErrorContains(t, err, "Options.Now")

	g, err := New(tp, Options{})
	require.NoError(t, err)
	require.ErrorContains(t, g.Write(&bytes.Buffer{}, "png"), `unknown format "png"`)
}

// TestGraphDeterministic: the same topology draws the same bytes whatever
// order its objects come in.
func TestGraphDeterministic(t *testing.T) {
	for name := range topologies {
		t.Run(name, func(t *testing.T) {
			tp := load(t, name)
			want := map[Format]string{}
			for _, f := range Formats {
				want[f] = draw(t, tp, Options{}, f)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 5 {
				shuffle(rng, tp.CAs)
				shuffle(rng, tp.Certificates)
				shuffle(rng, tp.Kubeconfigs)
				shuffle(rng, tp.KeyPairs)
				shuffle(rng, tp.TrustBundles)
				for _, b := range tp.TrustBundles {
					shuffle(rng, b.Spec.Sources)
				}
				for _, f := range Formats {
					require.Equal(t, want[f], draw(t, tp, Options{}, f))
				}
			}
		})
	}
}

func shuffle[T any](rng *rand.Rand, s []T) {
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// TestNodeKey: keys are valid unquoted identifiers in both languages, never
// a Mermaid keyword, and no two object IDs share one.
func TestNodeKey(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	seen := map[string]string{}
	check := func(id string) {
		k := nodeKey(id)
		require.Regexp(t, valid, k, id)
		require.NotContains(t, []string{"end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click", "default", "node", "edge", "digraph", "strict"}, strings.ToLower(k))
		if other, dup := seen[k]; dup && other != id {
			t.Fatalf("%q and %q share the key %q", id, other, k)
		}
		seen[k] = id
	}
	kinds := []string{topology.KindCertificateAuthority, topology.KindCertificate, topology.KindKubeconfig, topology.KindKeyPair, topology.KindTrustBundle, KindFile, "Other"}
	for _, kind := range kinds {
		for _, name := range []string{"end", "a-b", "a.b", "a--b", "a_b", "aX2Db", "aX2Eb", "A", "a", "x", "o", "a:b", "a/b", "é", `a"b`, "a b", "#1"} {
			check(kind + "/" + name)
		}
	}
	// Random names over an alphabet rich in escapes and look-alikes.
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "aX2E_-./:A0"
	for range 20000 {
		b := make([]byte, 1+rng.IntN(6))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(kinds[rng.IntN(len(kinds))] + "/" + string(b))
	}
}

// TestGraphEscaping: labels a reader of either language would misparse are
// escaped, and read back as they were.
func TestGraphEscaping(t *testing.T) {
	odd := `certs/"odd" #1 <b>&amp;\n.pem`
	tp := &topology.Topology{TrustBundles: []*topology.TrustBundle{{
		Metadata: topology.ObjectMeta{Name: "b"},
		Spec:     topology.TrustBundleSpec{Sources: []topology.BundleSource{{File: odd}}},
	}}}
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			out := draw(t, tp, Options{}, f)
			r := read(t, out, f)
			assert.Contains(t, slices.Collect(maps.Values(r.nodes)), KindFile+"/"+odd)
			assert.Equal(t, []string{KindFile + "/" + odd + " → TrustBundle/b"}, r.includes)
			if f == Mermaid {
				assert.NotContains(t, out, "<b>")
			}
		})
	}
}

func ExampleGraph_Mermaid() {
	tp := &topology.Topology{
		CAs: []*topology.CertificateAuthority{
			{Metadata: topology.ObjectMeta{Name: "root"}},
		},
		Certificates: []*topology.Certificate{
			{Metadata: topology.ObjectMeta{Name: "web"}, Spec: topology.CertificateSpec{Issuer: "root", Secret: topology.SecretRef{Cluster: "prod"}}},
		},
	}
	g, _ := New(tp, Options{
		Changed:  map[string]bool{"Certificate/web": true},
		NotAfter: map[string]time.Time{"Certificate/web": t0.Add(90 * 24 * time.Hour)},
		Now:      t0,
	})
	var b strings.Builder
	_ = g.Mermaid(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if !strings.Contains(l, "classDef") && !strings.HasPrefix(l, "%%") {
			fmt.Println(l)
		}
	}
	// Output:
	// flowchart LR
	//   ca_root(["root"]):::root
	//   cert_web["web<br/>90d left"]:::cert
	//   ca_root --> cert_web
	//   class cert_web changed
}
