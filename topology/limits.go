package topology

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits on one topology file. Plans run on pull requests, so a topology may
// be written by someone who wants gitca to crash or hang; every limit is far
// above what a real topology needs (a generated topology of a thousand
// certificates per file uses a tenth of them) and low enough that the worst
// input within them is read in well under a second.
const (
	// MaxFileSize bounds what is read of a *.yaml file at all.
	MaxFileSize = 4 << 20
	// MaxFileItems bounds lines plus commas (flow-collection items): the YAML
	// parser's work grows with them, not with bytes (four MiB of "a," take it
	// seconds), and counting them costs nothing before parsing.
	MaxFileItems = 100_000
	// MaxDocuments bounds the documents ("---") in one file.
	MaxDocuments = 10_000
	// MaxAliasNodes bounds the values one file reaches through aliases (*a)
	// and merge keys (<<: *a), counted each time they are reached: a few
	// nested aliases name a value billions of times ("billion laughs").
	MaxAliasNodes = 100_000
	// MaxDepth bounds how deeply mappings and sequences nest, aliases followed.
	// The deepest topology field sits at about ten.
	MaxDepth = 64
)

// checkFileText applies the limits that need no parsing, so the parser never
// sees input that would keep it busy for long.
func checkFileText(file string, data []byte) *FieldError {
	if len(data) > MaxFileSize {
		return &FieldError{Pos: Position{File: file}, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize),
			Allowed: "at most 4 MiB per file; split the topology into several files"}
	}
	items, depth, line := 0, 0, 1
	for i, c := range data {
		switch c {
		case '\n':
			items++
		case ',':
			items++
		case '[', '{':
			// Quotes are not tracked, so a bracket inside a string counts too;
			// only unbalanced brackets add up, and no real value has 64 of them.
			if depth++; depth > MaxDepth {
				return &FieldError{Pos: Position{File: file, Line: line, Col: col(data, i)},
					Msg: fmt.Sprintf("flow collections ([ or {) nested more than %d deep", MaxDepth), Allowed: fmt.Sprintf("at most %d levels", MaxDepth)}
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
		if items > MaxFileItems {
			return &FieldError{Pos: Position{File: file, Line: line, Col: 1},
				Msg:     fmt.Sprintf("more than %d lines and flow items (commas) in one file", MaxFileItems),
				Allowed: "split the topology into several files"}
		}
		if c == '\n' {
			line++
		}
	}
	return nil
}

func col(data []byte, i int) int { return i - bytes.LastIndexByte(data[:i], '\n') }

// nodeGuard checks one file's parsed documents before they are decoded: the
// decoder follows aliases and merge keys, so without these checks a
// self-referencing alias recurses until the Go stack overflows (a fatal error,
// not a panic that could be recovered) and nested aliases expand
// exponentially.
type nodeGuard struct {
	ctx        context.Context
	file       string
	aliasNodes int                 // nodes reached through aliases so far in this file
	open       map[*yaml.Node]bool // mappings and sequences being walked: an alias to one of them is a cycle
	steps      int
}

func newNodeGuard(ctx context.Context, file string) *nodeGuard {
	return &nodeGuard{ctx: ctx, file: file, open: map[*yaml.Node]bool{}}
}

// errCanceled stops a walk when the context is done; the caller returns ctx.Err().
var errCanceled = &FieldError{Msg: "canceled"}

// check walks a document with aliases followed and returns the first limit it breaks.
func (g *nodeGuard) check(doc *yaml.Node) *FieldError { return g.walk(doc, 0, nil) }

// walk visits n; via is the outermost alias n was reached through, where
// errors about the expansion point, since that is what the user wrote.
func (g *nodeGuard) walk(n *yaml.Node, depth int, via *yaml.Node) *FieldError {
	if g.steps++; g.steps%4096 == 0 && g.ctx.Err() != nil {
		return errCanceled
	}
	if via != nil {
		if g.aliasNodes++; g.aliasNodes > MaxAliasNodes {
			return g.errorf(via, fmt.Sprintf("aliases expand to more than %d values in this file", MaxAliasNodes),
				"aliases (*name) and merge keys (<<: *name) may repeat at most 100000 values per file; write the values out or split the file")
		}
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return g.errorf(n, fmt.Sprintf("alias *%s names no anchor", n.Value), "")
		}
		if g.open[n.Alias] {
			return g.errorf(n, fmt.Sprintf("alias *%s refers to a value that contains it (a self-referencing alias)", n.Value),
				"an alias may only name a value it is not part of")
		}
		if via == nil {
			via = n
		}
		return g.walk(n.Alias, depth, via)
	case yaml.DocumentNode, yaml.MappingNode, yaml.SequenceNode:
		if n.Kind != yaml.DocumentNode {
			if depth++; depth > MaxDepth {
				return g.errorf(cmp.Or(via, n), fmt.Sprintf("values nested more than %d deep (aliases followed)", MaxDepth), fmt.Sprintf("at most %d levels", MaxDepth))
			}
		}
		g.open[n] = true
		defer delete(g.open, n)
		for _, c := range n.Content {
			if err := g.walk(c, depth, via); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *nodeGuard) errorf(n *yaml.Node, msg, allowed string) *FieldError {
	return &FieldError{Pos: Position{File: g.file, Line: n.Line, Col: n.Column}, Msg: msg, Allowed: allowed}
}

// ctxReader makes the YAML parser, which reads its input 512 bytes at a time,
// stop soon after ctx is done, even in the middle of a large file.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// guard turns a panic in f (the YAML libraries are not written for hostile
// input) into an error naming the file, so one bad file cannot take down a
// plan; Flux's sops decryptor does the same. A stack overflow cannot be
// recovered, which is why nodeGuard rejects cyclic aliases before decoding.
func guard(file string, f func() ErrorList) (errs ErrorList) {
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, &FieldError{Pos: Position{File: file}, Msg: "the YAML parser failed on this file: " + panicText(r),
				Allowed: "valid YAML; please report this as a gitca bug"})
		}
	}()
	return f()
}

var secretLike = regexp.MustCompile(`(?i)PRIVATE KEY|AGE-SECRET-KEY|ENC\[`)

// panicText shows a panic's value briefly; values that may quote a secret
// from the input are withheld, since errors end up in CI logs.
func panicText(r any) string {
	s := fmt.Sprint(r)
	if secretLike.MatchString(s) {
		return "(panic message withheld: it quotes the input)"
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
