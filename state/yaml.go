package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gitca-dev/gitca/secrets"
)

// A state record is parsed into a plain tree: map[string]any for mappings,
// []any for sequences, string for scalars (their text, whatever YAML type
// they resolve to; gitca's records hold strings only) and nil for null.
//
// Records are parsed by recordTree, which tries the block-YAML subset gitca's
// emitter writes (fastTree) and hands anything else to yaml.v3 within
// secrets.StateYAMLLimits. The subset parser exists for speed: every plan
// derives every record's summary from its bytes (the index is never
// trusted), and yaml.v3 costs ~20 times more per record. FuzzRecordTree
// holds the two to the same tree for every input the subset accepts.

// recordTree parses a record: its first document, and how many documents
// the file holds. Any error names what is wrong, not the file; the caller
// adds the path. lines, when not nil, is scratch space a caller reuses from
// record to record.
func recordTree(raw []byte, lines *[]fastLine) (map[string]any, int, error) {
	if doc, ok, err := fastTree(raw, lines); ok || err != nil {
		return doc, 1, err
	}
	return yamlTree(raw)
}

// yamlTree parses raw with yaml.v3 within the state limits: no anchors,
// aliases or merge keys, no explicit tags, bounded documents, depth, keys
// and nodes.
func yamlTree(raw []byte) (doc map[string]any, docs int, err error) {
	nodes, err := secrets.ParseYAMLLimited(raw, secrets.StateYAMLLimits)
	if err != nil {
		return nil, 0, err
	}
	if len(nodes) == 0 {
		return nil, 0, errors.New("empty YAML document")
	}
	for _, d := range nodes {
		if _, err := plainValue(d.Content[0]); err != nil {
			return nil, 0, err
		}
	}
	root := nodes[0].Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, 0, fmt.Errorf("line %d: a record is a YAML mapping", root.Line)
	}
	v, err := plainValue(root)
	if err != nil {
		return nil, 0, err
	}
	return v.(map[string]any), len(nodes), nil
}

// plainValue converts a node checked by ParseYAMLLimited (no aliases or
// anchors) into the plain tree.
func plainValue(n *yaml.Node) (any, error) {
	if n.Style&yaml.TaggedStyle != 0 {
		return nil, fmt.Errorf("line %d: explicit YAML tag %s: gitca's records hold none", n.Line, n.Tag)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil, nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := plainValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Style&yaml.TaggedStyle != 0 {
				return nil, fmt.Errorf("line %d: a mapping key that is not a plain string", k.Line)
			}
			key := k.Value
			if k.ShortTag() == "!!null" {
				key = ""
			}
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("line %d: mapping key %q is already defined", k.Line, key)
			}
			v, err := plainValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[key] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// fastTree parses the subset of block YAML that gitca's emitter writes:
// printable ASCII, one document, mappings and sequences of mappings by
// indentation, keys of [A-Za-z0-9._/-], and scalars that are plain (no
// spaces, not null), single- or double-quoted on one line (no escapes), or
// literal blocks ("|" or "|-") without blank lines. ok is false for
// anything else, which yaml.v3 then parses. err is set only for limits.
func fastTree(raw []byte, lines *[]fastLine) (doc map[string]any, ok bool, err error) {
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		return nil, false, nil
	}
	if !printableASCII(raw) {
		return nil, false, nil
	}
	if lines == nil {
		lines = new([]fastLine)
	}
	*lines = splitLines(raw, (*lines)[:0])
	p := &fastParser{lines: *lines}
	if len(p.lines) == 0 || p.lines[0].indent != 0 {
		return nil, false, nil
	}
	m, ok, err := p.mapping(0, 1)
	if err != nil || !ok || p.next != len(p.lines) {
		return nil, false, err
	}
	return m, true, nil
}

// printableASCII reports whether b holds only bytes 0x20-0x7e and '\n',
// eight at a time: every record passes through here on every read.
func printableASCII(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		// A byte under 0x20, at or over 0x7f: set its high bit (SWAR).
		if (w|(w+ones))&highs != 0 || (w-0x2020202020202020)&^w&highs != 0 {
			for _, c := range b[:8] {
				if (c < 0x20 || c > 0x7e) && c != '\n' {
					return false
				}
			}
		}
		b = b[8:]
	}
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' {
			return false
		}
	}
	return true
}

type fastLine struct {
	indent int
	text   []byte // after the indentation
	num    int    // 1-based
}

type fastParser struct {
	lines []fastLine
	next  int
	nodes int
}

// splitLines appends raw's lines to out; their texts share raw. Only the
// parts of a record that become values are copied into strings.
func splitLines(raw []byte, out []fastLine) []fastLine {
	for n := 1; len(raw) > 0; n++ {
		i := bytes.IndexByte(raw, '\n')
		l := raw[:i]
		raw = raw[i+1:]
		ind := 0
		for ind < len(l) && l[ind] == ' ' {
			ind++
		}
		out = append(out, fastLine{indent: ind, text: l[ind:], num: n})
	}
	return out
}

func (p *fastParser) count(line int) error {
	p.nodes++
	if p.nodes > secrets.StateYAMLLimits.Nodes {
		return &secrets.LimitError{What: "YAML nodes", Limit: secrets.StateYAMLLimits.Nodes, Line: line}
	}
	return nil
}

// mapping reads the keys at exactly indent, starting at p.next.
func (p *fastParser) mapping(indent, depth int) (map[string]any, bool, error) {
	if depth > secrets.StateYAMLLimits.Depth {
		return nil, false, &secrets.LimitError{What: "YAML nesting depth", Limit: secrets.StateYAMLLimits.Depth, Line: p.lines[p.next].num}
	}
	out := map[string]any{}
	for p.next < len(p.lines) {
		l := p.lines[p.next]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, false, nil
		}
		key, rest, found := cutKey(l.text)
		if !found || isNullText(key) {
			return nil, false, nil
		}
		if _, dup := out[key]; dup {
			return nil, false, nil // yaml.v3 names the duplicate
		}
		if len(out) >= secrets.StateYAMLLimits.Keys {
			return nil, false, &secrets.LimitError{What: "keys in one mapping", Limit: secrets.StateYAMLLimits.Keys, Line: l.num}
		}
		if err := p.count(l.num); err != nil {
			return nil, false, err
		}
		p.next++
		var v any
		var ok bool
		var err error
		switch {
		case len(rest) == 0:
			v, ok, err = p.nested(indent, depth)
		case string(rest) == " |" || string(rest) == " |-":
			v, ok = p.literal(indent, string(rest) == " |")
		case rest[0] == ' ':
			v, ok = scalarText(rest[1:])
		}
		if err != nil || !ok {
			return nil, false, err
		}
		out[key] = v
	}
	return out, len(out) > 0, nil
}

// nested reads the block value of a key at indent: a deeper mapping, or a
// deeper sequence of mappings.
func (p *fastParser) nested(indent, depth int) (any, bool, error) {
	if p.next == len(p.lines) || p.lines[p.next].indent <= indent {
		return nil, false, nil // null: left to yaml.v3
	}
	l := p.lines[p.next]
	if string(l.text) == "-" || len(l.text) > 1 && l.text[0] == '-' && l.text[1] == ' ' {
		return p.sequence(l.indent, depth+1)
	}
	return p.mapping(l.indent, depth+1)
}

// sequence reads "- key: ..." items at indent; each item is a mapping whose
// keys sit at indent+2, the first on the dash's line.
func (p *fastParser) sequence(indent, depth int) ([]any, bool, error) {
	if depth > secrets.StateYAMLLimits.Depth {
		return nil, false, &secrets.LimitError{What: "YAML nesting depth", Limit: secrets.StateYAMLLimits.Depth, Line: p.lines[p.next].num}
	}
	var out []any
	for p.next < len(p.lines) {
		l := &p.lines[p.next]
		if l.indent < indent {
			break
		}
		if l.indent > indent || len(l.text) < 3 || l.text[0] != '-' || l.text[1] != ' ' || l.text[2] == ' ' {
			return nil, false, nil
		}
		if err := p.count(l.num); err != nil {
			return nil, false, err
		}
		// The item's first key continues the dash's line, two columns in.
		l.indent, l.text = indent+2, l.text[2:]
		m, ok, err := p.mapping(indent+2, depth+1)
		if err != nil || !ok {
			return nil, false, err
		}
		out = append(out, m)
	}
	return out, len(out) > 0, nil
}

// literal reads the lines of a literal block scalar under a key at indent;
// clip keeps the final line break ("|"), otherwise it is stripped ("|-").
func (p *fastParser) literal(indent int, clip bool) (string, bool) {
	if p.next == len(p.lines) {
		return "", false
	}
	block := p.lines[p.next].indent
	if block <= indent {
		return "", false
	}
	end, size := p.next, 0
	for ; end < len(p.lines); end++ {
		l := p.lines[end]
		if len(l.text) == 0 {
			return "", false // blank lines have chomping rules of their own
		}
		if l.indent < block {
			break
		}
		size += l.indent - block + len(l.text) + 1
	}
	var b strings.Builder
	b.Grow(size)
	for ; p.next < end; p.next++ {
		l := p.lines[p.next]
		b.WriteString(spaces(l.indent - block))
		b.Write(l.text)
		if p.next < end-1 || clip {
			b.WriteByte('\n')
		}
	}
	return b.String(), true
}

func spaces(n int) string {
	const s = "                                "
	if n <= len(s) {
		return s[:n]
	}
	return strings.Repeat(" ", n)
}

// cutKey splits "key: rest" or "key:" at the first colon; the key must be
// a plain scalar of [A-Za-z0-9._/-] starting with a letter or digit.
func cutKey(text []byte) (key string, rest []byte, ok bool) {
	i := 0
	for i < len(text) && isKeyByte(text[i]) {
		i++
	}
	if i == 0 || i == len(text) || text[i] != ':' || !isAlnum(text[0]) {
		return "", nil, false
	}
	return string(text[:i]), text[i+1:], true
}

func isKeyByte(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '/' || c == '-'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isNullText(s string) bool { return s == "null" || s == "Null" || s == "NULL" || s == "~" }

// scalarText reads a one-line scalar: single-quoted (” is a quote),
// double-quoted without escapes, or plain without spaces or comments.
func scalarText(s []byte) (string, bool) {
	switch {
	case len(s) == 0:
		return "", false
	case s[0] == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", false
		}
		in := s[1 : len(s)-1]
		if bytes.IndexByte(in, '\'') < 0 {
			return string(in), true
		}
		var b strings.Builder
		for i := 0; i < len(in); i++ {
			if in[i] == '\'' {
				if i+1 == len(in) || in[i+1] != '\'' {
					return "", false
				}
				i++
			}
			b.WriteByte(in[i])
		}
		return b.String(), true
	case s[0] == '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", false
		}
		in := s[1 : len(s)-1]
		if bytes.ContainsAny(in, "\"\\") {
			return "", false
		}
		return string(in), true
	}
	// Plain: a letter, digit or '^' first (no YAML indicator; the sops
	// metadata's encrypted_regex starts with '^'), then anything but spaces
	// and '#', not ending in ':' (that would be a key).
	if !isAlnum(s[0]) && s[0] != '^' || isNullText(string(s)) || s[len(s)-1] == ':' || bytes.IndexByte(s, ' ') >= 0 || bytes.IndexByte(s, '#') >= 0 {
		return "", false
	}
	return string(s), true
}
