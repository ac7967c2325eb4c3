package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	goyaml "github.com/goccy/go-yaml"
	goyamlparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
)

// kindTypes maps each document kind to the struct it decodes into.
var kindTypes = map[string]reflect.Type{
	KindConfig:               reflect.TypeFor[Config](),
	KindCertificateAuthority: reflect.TypeFor[CertificateAuthority](),
	KindCertificate:          reflect.TypeFor[Certificate](),
	KindKeyPair:              reflect.TypeFor[KeyPair](),
	KindKubeconfig:           reflect.TypeFor[Kubeconfig](),
	KindTrustBundle:          reflect.TypeFor[TrustBundle](),
	KindPreset:               reflect.TypeFor[Preset](),
}

// Kinds lists every document kind, sorted, for error messages and help.
func Kinds() []string { return slices.Sorted(maps.Keys(kindTypes)) }

// decodeFile parses every YAML document in one file and decodes each into its
// typed object (*Config, *CertificateAuthority, ...). file is the path shown in
// errors. It returns a non-nil error only when ctx is done.
func decodeFile(ctx context.Context, file string, data []byte) (objs []any, errs ErrorList, err error) {
	if ferr := checkFileText(file, data); ferr != nil {
		return nil, ErrorList{ferr}, nil
	}
	errs = guard(file, func() ErrorList {
		var errs ErrorList
		objs, errs = decodeDocuments(ctx, file, data)
		return errs
	})
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	return objs, errs, nil
}

func decodeDocuments(ctx context.Context, file string, data []byte) ([]any, ErrorList) {
	var objs []any
	var errs ErrorList
	g := newNodeGuard(ctx, file)
	dec := yaml.NewDecoder(ctxReader{ctx, bytes.NewReader(data)})
	for n := 1; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return objs, errs
		}
		if err != nil {
			// The parser cannot resume after a syntax error, so the rest of the file is unread.
			return objs, append(errs, yamlSyntaxError(ctx, file, data, err))
		}
		if n > MaxDocuments {
			return objs, append(errs, &FieldError{Pos: Position{File: file, Line: doc.Line, Col: doc.Column},
				Msg: fmt.Sprintf("more than %d documents in one file", MaxDocuments), Allowed: "split the topology into several files"})
		}
		if gerr := g.check(&doc); gerr != nil {
			if gerr == errCanceled {
				return objs, errs
			}
			// Decoding would follow the same aliases again; nothing after them can be trusted to be cheap.
			return objs, append(errs, gerr)
		}
		obj, derrs := decodeDocument(file, &doc)
		errs = append(errs, derrs...)
		if obj != nil {
			objs = append(objs, obj)
		}
	}
}

var (
	yamlLineRE      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// yamlSyntaxError turns a parse failure into a positioned error. yaml.v3 only
// reports a line, and for parser (not scanner) errors that line is where the
// enclosing construct started, off by one; goccy/go-yaml's parser reports the
// offending token's line and column, so it is asked for the position whenever
// it agrees the file is broken. It cannot be interrupted and is slower than
// yaml.v3, so it runs aside and is abandoned when ctx is done.
func yamlSyntaxError(ctx context.Context, file string, data []byte, err error) *FieldError {
	line := 1
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if strings.HasPrefix(msg, "exceeded max depth") {
		// Block sequences ("- - - x") nest without brackets, so checkFileText
		// cannot see them; goccy's parser takes time quadratic in the depth.
		return &FieldError{Pos: Position{File: file, Line: line, Col: 1},
			Msg: fmt.Sprintf("values nested more than %d deep", MaxDepth), Allowed: fmt.Sprintf("at most %d levels", MaxDepth)}
	}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		// yaml.v3 gives no line here, and goccy accepts the file.
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return &FieldError{Pos: Position{File: file, Line: bytes.Count(data[:i], []byte{'\n'}) + 1, Col: col(data, i)},
				Msg: "invalid YAML: " + msg, Allowed: "an alias (*name) must follow its anchor (&name) in the same document"}
		}
	}
	pos := make(chan *FieldError, 1)
	go func() {
		defer func() {
			if recover() != nil {
				pos <- nil // fall back to yaml.v3's line
			}
		}()
		var ge goyaml.Error
		if _, perr := goyamlparser.ParseBytes(data, 0); errors.As(perr, &ge) && ge.GetToken() != nil {
			p := ge.GetToken().Position
			pos <- &FieldError{Pos: Position{File: file, Line: p.Line, Col: p.Column}, Msg: "invalid YAML: " + ge.GetMessage()}
			return
		}
		pos <- nil
	}()
	select {
	case fe := <-pos:
		if fe != nil {
			return fe
		}
	case <-ctx.Done():
	}
	return &FieldError{Pos: Position{File: file, Line: line, Col: 1}, Msg: "invalid YAML: " + msg}
}

// decodeDocument decodes one document; it returns nil for an empty document or
// one whose kind is unknown (the error says which kinds exist).
func decodeDocument(file string, doc *yaml.Node) (any, ErrorList) {
	d := &decoder{file: file, fields: map[string]Position{}}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", fmt.Sprintf("a document must be a mapping with apiVersion and kind, got %s", kindName(root)), "")
		return nil, d.errs
	}
	docPos := d.pos(root)
	kindKey, kindVal := lookupKey(root, "kind")
	apiKey, apiVal := lookupKey(root, "apiVersion")
	if kindKey != nil {
		docPos = d.pos(kindKey)
	}
	kind := ""
	if kindVal != nil && kindVal.Kind == yaml.ScalarNode {
		kind = kindVal.Value
	}
	allowedKinds := "allowed: " + strings.Join(Kinds(), ", ")
	typ, known := kindTypes[kind]
	switch {
	case kindVal == nil:
		d.errs = append(d.errs, &FieldError{Pos: docPos, Field: "kind", Msg: "kind is required", Allowed: allowedKinds})
	case !known:
		d.errorf(kindVal, "kind", fmt.Sprintf("unknown kind %q", kind), allowedKinds)
	}
	switch {
	case apiKey == nil:
		d.errs = append(d.errs, &FieldError{Pos: docPos, Field: "apiVersion", Msg: "apiVersion is required", Allowed: "allowed: " + APIVersion})
	case apiVal.Kind != yaml.ScalarNode || apiVal.Value != APIVersion:
		d.errorf(apiVal, "apiVersion", fmt.Sprintf("unsupported apiVersion %s", describe(apiVal)), "allowed: "+APIVersion)
	}
	if !known {
		return nil, d.errs
	}
	obj := reflect.New(typ)
	d.decode(root, obj.Elem(), "")
	obj.Elem().FieldByName("Origin").Set(reflect.ValueOf(Origin{Position: docPos, Fields: d.fields}))
	return obj.Interface(), d.errs
}

// decoder walks a yaml.Node tree alongside a Go type, following json tags as
// encoding/json would (untagged embedded structs are inlined). Walking the
// nodes ourselves, rather than decoding and then guessing, is what lets every
// field and list item keep its line and column, and every unknown or
// mistyped field be reported where it was written.
type decoder struct {
	file   string
	fields map[string]Position
	errs   ErrorList
}

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, path, msg, allowed string) {
	d.errs = append(d.errs, &FieldError{Pos: d.pos(n), Field: path, Msg: msg, Allowed: allowed})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if isNull(n) {
		// An explicit null is the same as leaving the field out; validation
		// reports it if the field is required.
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n, path, err.Error(), "")
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a sequence, got "+kindName(n), "")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.fields[p] = d.pos(resolve(item))
			d.decode(item, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		// A date is text to gitca; numbers and booleans are not, since
		// YAML may already have changed how they are spelt (1.10 → 1.1).
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
			d.errorf(n, path, "expected a string, got "+kindName(n)+quoteHint(n), "")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "expected true or false, got "+kindName(n), "")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.errorf(n, path, "expected an integer, got "+kindName(n), "")
			return
		}
		v.SetInt(i)
	default:
		// Only reachable if types.go gains a field kind this walker does not know.
		panic(fmt.Sprintf("topology: cannot decode into %s at %s", v.Type(), path))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got "+kindName(n), "")
		return
	}
	fields := structFields(v.Type())
	for _, kv := range d.mappingPairs(n, path) {
		name := kv.key.Value
		p := joinPath(path, name)
		f, ok := fields[name]
		if !ok {
			d.errorf(kv.key, p, fmt.Sprintf("unknown field %q%s", name, suggest(name, fields)), "allowed: "+strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			continue
		}
		d.fields[p] = d.fieldPos(kv)
		d.decode(kv.val, v.FieldByIndex(f), p)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got "+kindName(n), "")
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.mappingPairs(n, path) {
		p := joinPath(path, kv.key.Value)
		d.fields[p] = d.fieldPos(kv)
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(kv.val, val, p)
		m.SetMapIndex(reflect.ValueOf(kv.key.Value).Convert(v.Type().Key()), val)
	}
	v.Set(m)
}

// fieldPos is where errors about a field point: at a scalar's value, which is
// what is wrong, or at the key of a block mapping or list, whose content
// starts on a later line.
func (d *decoder) fieldPos(kv pair) Position {
	if val := resolve(kv.val); val.Kind == yaml.ScalarNode && !isNull(val) {
		return d.pos(val)
	}
	return d.pos(kv.key)
}

type pair struct{ key, val *yaml.Node }

// mappingPairs returns a mapping's entries with YAML merge keys ("<<: *base")
// applied: explicit keys win over merged ones, and earlier merges over later.
// Duplicate explicit keys and non-string keys are reported.
func (d *decoder) mappingPairs(n *yaml.Node, path string) []pair {
	var explicit, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str") {
			d.errorf(k, path, "expected a field name, got "+kindName(k), "")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), fmt.Sprintf("duplicate field, first set at line %d", first.Line), "")
			continue
		}
		seen[k.Value] = k
		explicit = append(explicit, pair{k, val})
	}
	for _, kv := range merged {
		if _, dup := seen[kv.key.Value]; !dup {
			seen[kv.key.Value] = kv.key
			explicit = append(explicit, kv)
		}
	}
	return explicit
}

func (d *decoder) mergePairs(val *yaml.Node, path string) []pair {
	val = resolve(val)
	switch val.Kind {
	case yaml.MappingNode:
		return d.mappingPairs(val, path)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range val.Content {
			if m = resolve(m); m.Kind != yaml.MappingNode {
				d.errorf(m, path, "a merge key (<<) takes mappings, got "+kindName(m), "")
				continue
			}
			out = append(out, d.mappingPairs(m, path)...)
		}
		return out
	}
	d.errorf(val, path, "a merge key (<<) takes a mapping or a list of mappings, got "+kindName(val), "")
	return nil
}

var fieldCache sync.Map // reflect.Type → map[string][]int

// structFields maps each json field name of t to its index path, inlining
// untagged embedded structs the way encoding/json does.
func structFields(t reflect.Type) map[string][]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string][]int)
	}
	out := map[string][]int{}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() && !f.Anonymous {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	fieldCache.Store(t, out)
	return out
}

// suggest names the allowed field a misspelt one most likely meant.
func suggest(name string, fields map[string][]int) string {
	best, bestDist := "", 3
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		if dist := editDistance(strings.ToLower(name), strings.ToLower(f)); dist < bestDist {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(", did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func lookupKey(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], resolve(m.Content[i+1])
		}
	}
	return nil, nil
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName describes a node's type for "expected X, got Y" messages.
func kindName(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an unexpected node"
}

// quoteHint tells a user how to make YAML read a number or boolean as text.
func quoteHint(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Style == 0 {
		return fmt.Sprintf(" (quote it: %q)", n.Value)
	}
	return ""
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}
