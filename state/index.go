package state

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// The state index holds, for every record, the hash of its bytes and the
// public fields planning needs. It is a cache, never an authority: a read
// derives every record's fields from its bytes and compares the entry with
// what it derived, byte for byte. An entry that matches vouches that gitca
// wrote the record as it is (State.Unvouched, State.Indexed); one that does
// not (a hand edit, a merge, a lie) is ignored, and the index is rewritten
// from the records.

type indexEntry struct {
	Path        string            `json:"path"`
	SHA256      string            `json:"sha256"`
	ID          string            `json:"id"`
	Role        string            `json:"role"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Recipients  []string          `json:"recipients,omitempty"`
	Problems    []string          `json:"problems,omitempty"`
	NotBefore   *time.Time        `json:"notBefore,omitempty"`
	NotAfter    *time.Time        `json:"notAfter,omitempty"`
	AKI         string            `json:"aki,omitempty"`
	SKI         string            `json:"ski,omitempty"`
}

func entryOf(o *Object) indexEntry {
	e := indexEntry{Path: o.Path, SHA256: sha256Hex(o.Raw), ID: o.ID, Role: o.Role, Annotations: o.Annotations,
		Recipients: o.Recipients, Problems: o.Problems, AKI: hex.EncodeToString(o.AKI), SKI: hex.EncodeToString(o.SKI)}
	if !o.NotAfter.IsZero() {
		nb, na := o.NotBefore.UTC(), o.NotAfter.UTC()
		e.NotBefore, e.NotAfter = &nb, &na
	}
	return e
}

// appendEntry appends e as encoding/json would marshal it (field order,
// omitempty, sorted map keys, HTML-safe escaping), without reflection: every
// read encodes every record's entry to compare it with the index, and
// json.Marshal was a tenth of a no-op plan. TestAppendEntryIsJSON holds it
// to json.Marshal.
func appendEntry(b []byte, e indexEntry) []byte {
	b = append(b, `{"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"sha256":`...)
	b = appendJSONString(b, e.SHA256)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"role":`...)
	b = appendJSONString(b, e.Role)
	if len(e.Annotations) > 0 {
		b = append(b, `,"annotations":{`...)
		for i, k := range slices.Sorted(maps.Keys(e.Annotations)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, e.Annotations[k])
		}
		b = append(b, '}')
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"recipients", e.Recipients}, {"problems", e.Problems}} {
		if len(l.v) == 0 {
			continue
		}
		b = append(b, `,"`...)
		b = append(b, l.name...)
		b = append(b, `":[`...)
		for i, v := range l.v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	for _, t := range []struct {
		name string
		v    *time.Time
	}{{"notBefore", e.NotBefore}, {"notAfter", e.NotAfter}} {
		if t.v == nil {
			continue
		}
		b = append(b, `,"`...)
		b = append(b, t.name...)
		b = append(b, `":`...)
		j, err := t.v.MarshalJSON()
		if err != nil {
			j = []byte("null") // a year json cannot write: the entry will not match
		}
		b = append(b, j...)
	}
	if e.AKI != "" {
		b = append(b, `,"aki":`...)
		b = appendJSONString(b, e.AKI)
	}
	if e.SKI != "" {
		b = append(b, `,"ski":`...)
		b = appendJSONString(b, e.SKI)
	}
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does; anything but plain
// printable ASCII is left to it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

const (
	indexHeader = "{\"version\":1,\"entries\":["
	indexFooter = "\n]}\n"
)

// indexLines returns each entry's line by path, as BuildIndex wrote it; a
// missing or unreadable index is empty (every record is then unvouched,
// which is only slower). The lines are not decoded: an entry is compared
// with the one derived from its record, never read for its fields.
func indexLines(raw []byte) map[string][]byte {
	if !bytes.HasPrefix(raw, []byte(indexHeader)) || !bytes.HasSuffix(raw, []byte(indexFooter)) {
		return nil
	}
	body := raw[len(indexHeader) : len(raw)-len(indexFooter)]
	m := map[string][]byte{}
	for _, l := range bytes.Split(body, []byte("\n")) {
		if l = bytes.TrimSuffix(l, []byte(",")); len(l) == 0 {
			continue
		}
		var head struct {
			Path string `json:"path"`
		}
		p, ok := linePath(l)
		if !ok {
			if json.Unmarshal(l, &head) != nil {
				return nil
			}
			p = head.Path
		}
		m[p] = l
	}
	return m
}

// linePath reads the path from the start of a line BuildIndex wrote,
// {"path":"...", without decoding the rest; false for anything it cannot
// read that way (escapes), which json then decodes.
func linePath(l []byte) (string, bool) {
	const prefix = `{"path":"`
	if !bytes.HasPrefix(l, []byte(prefix)) {
		return "", false
	}
	rest := l[len(prefix):]
	i := bytes.IndexAny(rest, `"\`)
	if i < 0 || rest[i] != '"' {
		return "", false
	}
	return string(rest[:i]), true
}

// BuildIndex renders the index of a final tree from its records (nil entries,
// files that are not records, are skipped). Entries are sorted by path, one per
// line, so a git diff shows one line per changed record.
func BuildIndex(records []*Object) ([]byte, error) {
	records = slices.DeleteFunc(slices.Clone(records), func(o *Object) bool { return o == nil })
	slices.SortFunc(records, func(a, b *Object) int { return strings.Compare(a.Path, b.Path) })
	var b bytes.Buffer
	b.WriteString(indexHeader)
	var line []byte
	for i, o := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n")
		line = appendEntry(line[:0], entryOf(o))
		b.Write(line)
	}
	b.WriteString(indexFooter)
	return b.Bytes(), nil
}
