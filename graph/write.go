package graph

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Format is an output language.
type Format string

const (
	Mermaid Format = "mermaid"
	DOT     Format = "dot"
)

// Formats lists the output languages in the order help texts show them.
var Formats = []Format{Mermaid, DOT}

// Write writes g in format f.
func (g *Graph) Write(w io.Writer, f Format) error {
	switch f {
	case Mermaid:
		return g.Mermaid(w)
	case DOT:
		return g.DOT(w)
	}
	return fmt.Errorf("graph: unknown format %q (allowed: mermaid, dot)", f)
}

// look is how one kind of node is drawn. The colours follow kcp-operator's
// chart: issuers blue, CAs red, certificates orange.
type look struct {
	open, close  string // Mermaid shape brackets around the label
	fill, stroke string
	dash         bool   // a dashed outline: nothing gitca can sign with or renew
	dot          string // DOT shape attributes
}

var looks = map[Kind]look{
	Root:       {`([`, `])`, "#e6e6ff", "#7777ff", false, `shape=box, style="rounded,filled", peripheries=2`},
	CA:         {`(`, `)`, "#ffe6e6", "#ff7777", false, `shape=box, style="rounded,filled"`},
	Imported:   {`[[`, `]]`, "#e6e6ff", "#7777ff", false, `shape=component, style=filled`},
	Offline:    {`[[`, `]]`, "#f2f2f2", "#7777ff", true, `shape=component, style="dashed,filled"`},
	Cert:       {`[`, `]`, "#fff3e0", "#ffa500", false, `shape=box, style=filled`},
	Kubeconfig: {`[/`, `/]`, "#fff3e0", "#cc7a00", false, `shape=parallelogram, style=filled`},
	KeyPair:    {`{{`, `}}`, "#f2f2f2", "#888888", false, `shape=hexagon, style=filled`},
	Bundle:     {`[(`, `)]`, "#e6f5e6", "#33a033", false, `shape=cylinder, style=filled`},
	File:       {`>`, `]`, "#f2f2f2", "#888888", true, `shape=note, style="dashed,filled"`},
}

// kindOrder is the order of the Mermaid classDefs; "changed" comes last so
// that its outline wins over the kind's.
var kindOrder = []Kind{Root, CA, Imported, Offline, Cert, Kubeconfig, KeyPair, Bundle, File}

const changedStroke = "#e00000"

const legend = `solid arrows run from an issuer to what it signs, dotted ones from a source to the trust bundle that includes it`

// Mermaid writes a Mermaid flowchart: each node on a line of its own with its
// kind as class (":::cert"), then the edges, then the class definitions.
func (g *Graph) Mermaid(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%%%% gitca graph: %s.\n", legend)
	fmt.Fprintf(bw, "%%%% ([root CA]) (CA) [[imported root]] [certificate] [/kubeconfig/] {{key pair}} [(trust bundle)] >PEM file]; dashed outline: an offline root or a file\n")
	fmt.Fprintf(bw, "flowchart LR\n")
	var changed []string
	for _, n := range g.Nodes {
		l := looks[n.Kind]
		label := mermaidText(n.Name)
		if note := g.note(n); note != "" {
			label += "<br/>" + mermaidText(note)
		}
		fmt.Fprintf(bw, "  %s%s\"%s\"%s:::%s\n", n.Key, l.open, label, l.close, n.Kind)
		if n.Changed {
			changed = append(changed, n.Key)
		}
	}
	keys := g.keys()
	for _, e := range g.Edges {
		arrow := "-->"
		if e.Kind == Includes {
			arrow = "-.->"
		}
		fmt.Fprintf(bw, "  %s %s %s\n", keys[e.From], arrow, keys[e.To])
	}
	for _, k := range kindOrder {
		l := looks[k]
		fmt.Fprintf(bw, "  classDef %s fill:%s,stroke:%s,color:#000", k, l.fill, l.stroke)
		if l.dash {
			bw.WriteString(",stroke-dasharray:4 3")
		}
		bw.WriteString("\n")
	}
	fmt.Fprintf(bw, "  classDef changed stroke:%s,stroke-width:3px\n", changedStroke)
	if len(changed) > 0 {
		fmt.Fprintf(bw, "  class %s changed\n", strings.Join(changed, ","))
	}
	return bw.Flush()
}

// DOT writes a Graphviz digraph whose nodes and edges carry the same classes
// as the Mermaid chart (Graphviz copies "class" into its SVG).
func (g *Graph) DOT(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "// gitca graph: %s.\n", legend)
	bw.WriteString("// double rounded box: root CA, rounded box: CA, component: imported root, box: certificate, parallelogram: kubeconfig,\n")
	bw.WriteString("// hexagon: key pair, cylinder: trust bundle, note: PEM file; dashed outline: an offline root or a file\n")
	bw.WriteString("digraph gitca {\n")
	bw.WriteString("  rankdir=LR;\n")
	bw.WriteString("  node [fontname=\"Helvetica\", fontsize=11];\n")
	for _, n := range g.Nodes {
		l := looks[n.Kind]
		label := n.Name
		if note := g.note(n); note != "" {
			label += "\n" + note
		}
		class, color, width := string(n.Kind), l.stroke, ""
		if n.Changed {
			class, color, width = class+" changed", changedStroke, ", penwidth=3"
		}
		fmt.Fprintf(bw, "  %s [label=%s, class=%q, %s, fillcolor=%q, color=%q%s];\n",
			n.Key, dotString(label), class, l.dot, l.fill, color, width)
	}
	keys := g.keys()
	for _, e := range g.Edges {
		attrs := ""
		if e.Kind == Includes {
			attrs = ", style=dotted"
		}
		fmt.Fprintf(bw, "  %s -> %s [class=%q%s];\n", keys[e.From], keys[e.To], e.Kind, attrs)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

func (g *Graph) keys() map[string]string {
	m := make(map[string]string, len(g.Nodes))
	for _, n := range g.Nodes {
		m[n.ID] = n.Key
	}
	return m
}

// mermaidText escapes a label for a quoted Mermaid string: a quote would end
// it, '#' starts an entity, and '<', '>', '&' would be read as HTML.
var mermaidText = strings.NewReplacer(
	`"`, "#quot;", "#", "#35;", "<", "#lt;", ">", "#gt;", "&", "#amp;", "\n", " ", "\r", " ",
).Replace

// dotString quotes s for DOT, where a quoted string knows only \" and the
// escapes of labels (\n, \l, \r, \N ...); a backslash of the name is doubled
// so it stays one, and a newline becomes DOT's centred line break.
func dotString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
