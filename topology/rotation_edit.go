package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RotationEdit is a rotation declaration to write into a topology file.
// Empty fields are left as the file has them.
type RotationEdit struct {
	Generation    int
	Soak          string
	Retire        string
	TokenLifetime string
}

// RotationTarget says where a rotation is declared: spec.rotation of the
// CertificateAuthority or KeyPair document Name, or, for an object a Preset
// generates, spec.rotations.<Entry> of the Preset document Name.
type RotationTarget struct {
	Kind  string // KindCertificateAuthority, KindKeyPair or KindPreset
	Name  string
	Entry string // the generated object's name, for a Preset
}

// SetRotation writes e into one topology file's text and returns the new
// text. It changes only the lines of the fields it sets, or inserts the
// missing ones, so comments, order and formatting stay as written: the
// declaration is meant to be reviewed as a one-line diff.
func SetRotation(data []byte, target RotationTarget, e RotationEdit) ([]byte, error) {
	spec, err := findSpec(data, target)
	if err != nil {
		return nil, err
	}
	path := []string{"rotation"}
	if target.Kind == KindPreset {
		path = []string{"rotations", target.Entry}
	}
	fields := []struct{ key, value string }{}
	if e.Generation > 0 {
		fields = append(fields, struct{ key, value string }{"generation", strconv.Itoa(e.Generation)})
	}
	for _, f := range []struct{ key, value string }{{"soak", e.Soak}, {"retire", e.Retire}, {"tokenLifetime", e.TokenLifetime}} {
		if f.value != "" {
			fields = append(fields, f)
		}
	}
	lines := strings.Split(string(data), "\n")
	// Walk down spec → rotation(s) → entry; the first missing level is
	// inserted whole, below its parent's key line.
	parentKey, parent := spec.key, spec.val
	for i, k := range path {
		key, val := lookupKey(parent, k)
		if key == nil {
			return insertBlock(lines, parentKey, parent, path[i:], fields), nil
		}
		if val.Kind == yaml.MappingNode && val.Style&yaml.FlowStyle != 0 {
			return nil, fmt.Errorf("line %d: %s is written in flow style ({...}); write it as a block mapping, or edit it by hand", key.Line, k)
		}
		if val.Kind != yaml.MappingNode && !isNull(val) {
			return nil, fmt.Errorf("line %d: %s is %s, not a mapping", key.Line, k, describe(val))
		}
		parentKey, parent = key, val
	}
	// The declaration exists: set each field on its own line, inserting
	// the missing ones below the declaration's key, in reverse so that line
	// numbers found earlier stay valid.
	var missing []struct{ key, value string }
	for _, f := range fields {
		key, val := lookupKey(parent, f.key)
		if key == nil {
			missing = append(missing, f)
			continue
		}
		if val.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s is %s, not a value", key.Line, f.key, describe(val))
		}
		lines[key.Line-1] = replaceValue(lines[key.Line-1], key.Column-1, f.key, f.value)
	}
	if len(missing) > 0 {
		return insertBlock(lines, parentKey, parent, nil, missing), nil
	}
	return []byte(strings.Join(lines, "\n")), nil
}

type keyVal struct{ key, val *yaml.Node }

// findSpec finds the spec mapping of the target document.
func findSpec(data []byte, target RotationTarget) (keyVal, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return keyVal{}, err
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		root := doc.Content[0]
		_, kind := lookupKey(root, "kind")
		_, meta := lookupKey(root, "metadata")
		if kind == nil || kind.Value != target.Kind || meta == nil {
			continue
		}
		if _, name := lookupKey(meta, "name"); name == nil || name.Value != target.Name {
			continue
		}
		k, v := lookupKey(root, "spec")
		switch {
		case k == nil:
			return keyVal{}, fmt.Errorf("%s %q has no spec", target.Kind, target.Name)
		case v.Kind != yaml.MappingNode || v.Style&yaml.FlowStyle != 0:
			return keyVal{}, fmt.Errorf("line %d: the spec of %s %q is not a block mapping; edit it by hand", k.Line, target.Kind, target.Name)
		}
		return keyVal{k, v}, nil
	}
	return keyVal{}, fmt.Errorf("no %s %q in this file", target.Kind, target.Name)
}

// insertBlock inserts the missing mapping levels and fields right below
// parentKey's line, indented like parent's first entry (or two spaces
// deeper than parentKey when parent is empty).
func insertBlock(lines []string, parentKey, parent *yaml.Node, levels []string, fields []struct{ key, value string }) []byte {
	indent := parentKey.Column - 1 + 2
	if parent != nil && parent.Kind == yaml.MappingNode && len(parent.Content) > 0 {
		indent = parent.Content[0].Column - 1
	}
	var block []string
	for _, l := range levels {
		block = append(block, strings.Repeat(" ", indent)+l+":")
		indent += 2
	}
	for _, f := range fields {
		block = append(block, strings.Repeat(" ", indent)+f.key+": "+f.value)
	}
	at := parentKey.Line // insert after this (1-based) line
	out := append([]string{}, lines[:at]...)
	out = append(out, block...)
	out = append(out, lines[at:]...)
	return []byte(strings.Join(out, "\n"))
}

// replaceValue rewrites "key: old  # comment" as "key: new  # comment".
func replaceValue(line string, col int, key, value string) string {
	head := line[:col] + key + ": " + value
	if i := strings.Index(line[col:], " #"); i >= 0 {
		return head + line[col+i:]
	}
	return head
}

// RemoveDocument deletes one document (kind and metadata.name) from a
// topology file's text, with its separator, and leaves every other line as
// it was.
func RemoveDocument(data []byte, kind, name string) ([]byte, error) {
	lines := strings.Split(string(data), "\n")
	// Documents are the runs of lines between "---" separators.
	var starts []int // index of each document's first line
	starts = append(starts, 0)
	for i, l := range lines {
		if strings.HasPrefix(l, "---") && strings.TrimSpace(strings.TrimPrefix(l, "---")) == "" {
			starts = append(starts, i+1)
		}
	}
	for d, start := range starts {
		end := len(lines)
		if d+1 < len(starts) {
			end = starts[d+1] - 1 // the separator line
		}
		chunk := strings.Join(lines[start:end], "\n")
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(chunk), &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		_, k := lookupKey(doc.Content[0], "kind")
		_, meta := lookupKey(doc.Content[0], "metadata")
		if k == nil || k.Value != kind || meta == nil {
			continue
		}
		if _, n := lookupKey(meta, "name"); n == nil || n.Value != name {
			continue
		}
		var out []string
		switch {
		case d+1 < len(starts):
			out = append(append(out, lines[:start]...), lines[end+1:]...) // with the separator after it
		case d > 0:
			out = lines[:start-1] // the last document: with the separator before it
		default:
			out = nil
		}
		text := strings.Join(out, "\n")
		if strings.HasSuffix(string(data), "\n") && text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		return []byte(text), nil
	}
	return nil, fmt.Errorf("no %s %q in this file", kind, name)
}
