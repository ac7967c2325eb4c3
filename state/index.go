package state

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
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
	for i, o := range records {
		line, err := json.Marshal(entryOf(o))
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n")
		b.Write(line)
	}
	b.WriteString(indexFooter)
	return b.Bytes(), nil
}
