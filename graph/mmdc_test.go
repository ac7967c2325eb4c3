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

// requireMermaid finds mmdc and the chromium it drives, or skips; it fails
// instead under GITCA_E2E_STRICT=1, so that CI cannot pass by skipping.
func requireMermaid(t *testing.T) (mmdc, chromium string) {
	t.Helper()
	cache := os.Getenv("GITCA_CACHE_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "gitca")
	}
	mmdc, err1 := lookTool("GITCA_MMDC", []string{filepath.Join(cache, "mermaid", "node_modules", ".bin", "mmdc")}, "mmdc")
	chromium, err2 := lookTool("PUPPETEER_EXECUTABLE_PATH", nil, "chromium", "chromium-browser")
	err := errors.Join(err1, err2)
	if errors.Is(err, errBadEnv) || (err != nil && os.Getenv("GITCA_E2E_STRICT") == "1") {
		t.Fatalf("%v\n%s", err, mermaidHint)
	}
	if err != nil {
		t.Skipf("%v\n%s", err, mermaidHint)
	}
	return mmdc, chromium
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
