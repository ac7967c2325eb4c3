package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"

	"go.yaml.in/yaml/v3"
)

// Files gitca opens come from repositories that a pull request may have
// written, so every parse is bounded: a small input must not take minutes,
// gigabytes or the process down.

// LimitError is an input over one of gitca's bounds. Callers add the file.
type LimitError struct {
	What  string // what was counted: "bytes", "YAML documents", "keys in one mapping", ...
	Limit int
	Got   int // 0 when counting stopped at the limit
	Line  int // where the limit was crossed, 0 when not about a place
}

func (e *LimitError) Error() string {
	var b bytes.Buffer
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Got > 0 {
		fmt.Fprintf(&b, "%d %s, over the limit of %d", e.Got, e.What, e.Limit)
	} else {
		fmt.Fprintf(&b, "%s over the limit of %d", e.What, e.Limit)
	}
	return b.String()
}

// YAMLLimits bound a YAML input. Anchors, aliases and merge keys are never
// accepted: gitca writes none, and they are how a few hundred bytes expand
// into gigabytes or a cycle.
type YAMLLimits struct {
	Bytes     int // the whole input
	Documents int
	Depth     int // nesting of mappings and sequences
	Keys      int // keys in one mapping
	Nodes     int // scalars, mappings and sequences in one document
}

// StateYAMLLimits bound a state record (and a sealed file): gitca writes one
// document of about 30 nodes, 3 levels deep, a dozen annotations and at most
// four values, a few kilobytes in all. A record of more than one document is
// damage the plan repairs; these limits only bound what parsing costs.
var StateYAMLLimits = YAMLLimits{Bytes: MaxFileSize, Documents: 64, Depth: 32, Keys: 256, Nodes: 10000}

// MaxFileSize bounds any file gitca reads from a state or topology repository
// besides the state index: a record is a few kilobytes, a kustomization of
// ten thousand Secrets half a megabyte.
const MaxFileSize = 4 << 20

// ErrLibraryPanic wraps a panic recovered from the sops or YAML libraries.
var ErrLibraryPanic = errors.New("the parser failed on this input")

// recoverInto turns a panic into an error. Malicious input can make sops and
// YAML libraries panic; Flux's SOPS decryptor recovers for the same reason.
// Only a runtime error's message is quoted: any other panic value may hold
// part of a decrypted value.
func recoverInto(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if re, ok := r.(runtime.Error); ok {
		*err = fmt.Errorf("%w: %s", ErrLibraryPanic, re.Error())
		return
	}
	*err = fmt.Errorf("%w (a %T)", ErrLibraryPanic, r)
}

// ParseYAMLLimited parses every document of raw into nodes within lim,
// refusing anchors, aliases and merge keys. A panic in the parser is an error.
func ParseYAMLLimited(raw []byte, lim YAMLLimits) (docs []*yaml.Node, err error) {
	defer recoverInto(&err)
	if len(raw) > lim.Bytes {
		return nil, &LimitError{What: "bytes", Got: len(raw), Limit: lim.Bytes}
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var d yaml.Node
		err := dec.Decode(&d)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(docs) == lim.Documents {
			return nil, &LimitError{What: "YAML documents", Limit: lim.Documents, Line: d.Line}
		}
		w := limitWalker{lim: lim}
		if err := w.walk(&d, 0); err != nil {
			return nil, err
		}
		docs = append(docs, &d)
	}
}

type limitWalker struct {
	lim   YAMLLimits
	nodes int
}

func (w *limitWalker) walk(n *yaml.Node, depth int) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &LimitError{What: "YAML anchors, aliases and merge keys", Limit: 0, Line: n.Line}
	}
	if w.nodes++; w.nodes > w.lim.Nodes {
		return &LimitError{What: "YAML nodes", Limit: w.lim.Nodes, Line: n.Line}
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if depth++; depth > w.lim.Depth {
			return &LimitError{What: "YAML nesting depth", Limit: w.lim.Depth, Line: n.Line}
		}
	}
	if n.Kind == yaml.MappingNode {
		if keys := len(n.Content) / 2; keys > w.lim.Keys {
			return &LimitError{What: "keys in one mapping", Got: keys, Limit: w.lim.Keys, Line: n.Line}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() == "!!merge" {
				return &LimitError{What: "YAML anchors, aliases and merge keys", Limit: 0, Line: n.Content[i].Line}
			}
		}
	}
	for _, c := range n.Content {
		if err := w.walk(c, depth); err != nil {
			return err
		}
	}
	return nil
}
