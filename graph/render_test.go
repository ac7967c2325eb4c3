package graph

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
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

// docsPicture is the kcp example's tree as the README shows it.
const docsPicture = "../docs/pki-kcp.svg"

const mermaidHint = "run hack/install-mermaid.sh (npm ci of @mermaid-js/mermaid-cli, 1-4 min; apt-get installs chromium if missing)"

// lookTool finds a program: $env if set (an override pointing nowhere is a
// mistake, not a reason to skip), else the first of paths that is executable,
// else the first of names on PATH.
func lookTool(env string, paths []string, names ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("%w: $%s=%s: %w", errBadEnv, env, p, err)
		}
		return p, nil
	}
	for _, p := range paths {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (set $%s, or put it in %s or on PATH)", strings.Join(names, "/"), env, strings.Join(paths, ", "))
}

var errBadEnv = errors.New("bad override")

// requireMermaid finds mmdc and the chromium it drives.
func requireMermaid(t *testing.T) (mmdc, chromium string) {
	t.Helper()
	cache := os.Getenv("GITCA_CACHE_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "gitca")
	}
	mmdc, err1 := lookTool("GITCA_MMDC", []string{filepath.Join(cache, "mermaid", "node_modules", ".bin", "mmdc")}, "mmdc")
	chromium, err2 := lookTool("PUPPETEER_EXECUTABLE_PATH", nil, "chromium", "chromium-browser")
	skipOrFail(t, errors.Join(err1, err2), mermaidHint)
	return mmdc, chromium
}

// skipOrFail skips the test when a tool is missing, and fails it instead
// under GITCA_E2E_STRICT=1, so that CI cannot pass by skipping, or when an
// override points nowhere, a mistake rather than a reason to skip.
func skipOrFail(t *testing.T, err error, hint string) {
	t.Helper()
	if errors.Is(err, errBadEnv) || (err != nil && os.Getenv("GITCA_E2E_STRICT") == "1") {
		t.Fatalf("%v\n%s", err, hint)
	}
	if err != nil {
		t.Skipf("%v\n%s", err, hint)
	}
}

// TestGraphMermaidRender renders the kcp example with the real mermaid-cli
// and checks that the picture has exactly the topology's edges. Under
// -update it also rewrites the README's picture.
func TestGraphMermaidRender(t *testing.T) {
	mmdc, chromium := requireMermaid(t)
	tp := load(t, "kcp")
	src := draw(t, tp, Options{}, Mermaid)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "kcp.mmd"), filepath.Join(dir, "kcp.svg")
	require.NoError(t, os.WriteFile(in, []byte(src), 0o644))
	config, err := filepath.Abs("../hack/mermaid/puppeteer-config.json")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mmdc, "--puppeteerConfigFile", config, "--input", in, "--output", out, "--quiet")
	cmd.Env = append(os.Environ(), "PUPPETEER_EXECUTABLE_PATH="+chromium, "PUPPETEER_SKIP_DOWNLOAD=1")
	start := time.Now()
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", mmdc, cmd.Args[1:], msg)
	t.Logf("mmdc rendered the kcp example in %s", time.Since(start).Round(100*time.Millisecond))

	svg, err := os.ReadFile(out)
	require.NoError(t, err)
	checkSVG(t, tp, src, svg)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(docsPicture), 0o755))
		require.NoError(t, os.WriteFile(docsPicture, svg, 0o644))
	}
}

// TestGraphDocsPicture: the committed picture is still the kcp example's
// tree. It needs no browser; TestGraphMermaidRender -update redraws it.
func TestGraphDocsPicture(t *testing.T) {
	svg, err := os.ReadFile(docsPicture)
	require.NoError(t, err)
	tp := load(t, "kcp")
	checkSVG(t, tp, draw(t, tp, Options{}, Mermaid), svg)
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	assert.Contains(t, string(readme), "](docs/pki-kcp.svg)", "README.md must show the picture")
}

// svgNode is a node as Mermaid drew it.
type svgNode struct {
	classes []string
	text    string
}

var (
	// Mermaid names a node's group "<diagram id>-flowchart-<node id>-<n>"
	// and an edge "L_<from>_<to>_<n>" in data-id. Node identifiers hold '_',
	// so an edge is split where both halves are nodes of this very picture,
	// and a split that is not unique fails the test rather than guess.
	svgNodeID = regexp.MustCompile(`-flowchart-(\w+)-\d+$`)
	svgEdgeID = regexp.MustCompile(`^L_(\w+)_\d+$`)
)

// checkSVG reads the nodes and edges out of Mermaid's SVG and compares them
// with the topology: each node drawn with its kind's class and its name, and
// the solid and dotted edges exactly the issuer edges and bundle sources.
func checkSVG(t *testing.T, tp *topology.Topology, src string, svg []byte) {
	t.Helper()
	nodes := map[string]*svgNode{}
	type edge struct {
		between string
		dotted  bool
	}
	var edges []edge

	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	var open []*svgNode // per open element: the node whose text it is part of
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the SVG is not well-formed XML")
		switch el := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range el.Attr {
				attr[a.Name.Local] = a.Value
			}
			classes := strings.Fields(attr["class"])
			var cur *svgNode
			if len(open) > 0 {
				cur = open[len(open)-1]
			}
			switch {
			case el.Name.Local == "g" && slices.Contains(classes, "node"):
				m := svgNodeID.FindStringSubmatch(attr["id"])
				require.NotNil(t, m, "node group id %q", attr["id"])
				require.NotContains(t, nodes, m[1], "node %s drawn twice", m[1])
				cur = &svgNode{classes: classes}
				nodes[m[1]] = cur
			case el.Name.Local == "path" && slices.Contains(classes, "flowchart-link"):
				m := svgEdgeID.FindStringSubmatch(attr["data-id"])
				require.NotNil(t, m, "edge data-id %q", attr["data-id"])
				edges = append(edges, edge{m[1], slices.Contains(classes, "edge-pattern-dotted")})
			}
			open = append(open, cur)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 && open[len(open)-1] != nil {
				open[len(open)-1].text += string(el)
			}
		}
	}

	r := read(t, src, Mermaid)
	require.ElementsMatch(t, slices.Collect(maps.Keys(r.nodes)), slices.Collect(maps.Keys(nodes)), "the picture's nodes")
	for key, n := range nodes {
		id := r.nodes[key]
		kind := r.classes[key][0]
		assert.Contains(t, n.classes, kind, "%s drawn without its class", id)
		_, name, _ := strings.Cut(id, "/")
		assert.Equal(t, name, strings.Join(strings.Fields(n.text), ""), "%s's label", id)
	}

	var issues, includes []string
	for _, e := range edges {
		var ends [][2]string
		for i := range len(e.between) {
			if e.between[i] == '_' && nodes[e.between[:i]] != nil && nodes[e.between[i+1:]] != nil {
				ends = append(ends, [2]string{e.between[:i], e.between[i+1:]})
			}
		}
		require.Len(t, ends, 1, "edge %q: which nodes it joins", e.between)
		s := r.nodes[ends[0][0]] + " → " + r.nodes[ends[0][1]]
		if e.dotted {
			includes = append(includes, s)
		} else {
			issues = append(issues, s)
		}
	}
	slices.Sort(issues)
	slices.Sort(includes)
	w := topologyWant(tp)
	assert.Equal(t, w.issues, issues, "the picture's solid edges")
	assert.Equal(t, w.includes, includes, "the picture's dotted edges")
}

// TestGraphDOTRender lays out the DOT output with Graphviz and reads the
// picture back: every node with its kind's class, the solid and dotted edges
// exactly the topology's.
func TestGraphDOTRender(t *testing.T) {
	dot, err := lookTool("GITCA_DOT", nil, "dot")
	skipOrFail(t, err, "apt-get install graphviz (hack/install-mermaid.sh does)")
	for name := range topologies {
		t.Run(name, func(t *testing.T) {
			tp := load(t, name)
			src := draw(t, tp, Options{}, DOT)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(src)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			svg, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			require.Empty(t, stderr.String(), "Graphviz warned")

			// Graphviz writes each node and edge as <g class="node|edge CLASS">
			// with a <title> of the node identifier or "from->to", and dashes
			// a dotted edge's path.
			type group struct {
				classes []string
				title   string
				dashed  bool
			}
			var groups []*group
			var cur *group
			var inTitle bool
			dec := xml.NewDecoder(strings.NewReader(string(svg)))
			dec.Strict = false // Graphviz's DOCTYPE names entities the decoder does not know
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				switch el := tok.(type) {
				case xml.StartElement:
					attr := map[string]string{}
					for _, a := range el.Attr {
						attr[a.Name.Local] = a.Value
					}
					c := strings.Fields(attr["class"])
					switch {
					case el.Name.Local == "g" && len(c) > 0 && (c[0] == "node" || c[0] == "edge"):
						cur = &group{classes: c}
						groups = append(groups, cur)
					case el.Name.Local == "title":
						inTitle = true
					case el.Name.Local == "path" && cur != nil && attr["stroke-dasharray"] != "":
						cur.dashed = true
					}
				case xml.EndElement:
					inTitle = false
				case xml.CharData:
					if inTitle && cur != nil {
						cur.title += string(el)
					}
				}
			}

			r := read(t, src, DOT)
			var keys, issues, includes []string
			for _, g := range groups {
				if g.classes[0] == "node" {
					keys = append(keys, g.title)
					require.Contains(t, r.nodes, g.title)
					assert.Equal(t, r.classes[g.title], g.classes[1:], g.title)
					continue
				}
				from, to, ok := strings.Cut(g.title, "->")
				require.True(t, ok, "edge title %q", g.title)
				s := r.nodes[from] + " → " + r.nodes[to]
				if g.dashed {
					assert.Equal(t, []string{"edge", string(Includes)}, g.classes, g.title)
					includes = append(includes, s)
				} else {
					assert.Equal(t, []string{"edge", string(Issues)}, g.classes, g.title)
					issues = append(issues, s)
				}
			}
			assert.ElementsMatch(t, slices.Collect(maps.Keys(r.nodes)), keys)
			slices.Sort(issues)
			slices.Sort(includes)
			w := topologyWant(tp)
			assert.Equal(t, w.issues, issues)
			assert.Equal(t, w.includes, includes)
		})
	}
}
