package state

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// The state index holds, for every record, the hash of its bytes and the
// public fields planning needs. It lets a plan over ten thousand records hash
// files instead of parsing them. The index is a cache, never the truth: a
// record whose bytes do not match its entry (a hand edit, a merge) is parsed.

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

func (e indexEntry) object(raw []byte) *Object {
	o := &Object{ID: e.ID, Role: e.Role, Path: e.Path, Raw: raw, Annotations: e.Annotations,
		Recipients: e.Recipients, Problems: e.Problems, lazy: true}
	if e.NotBefore != nil {
		o.NotBefore = *e.NotBefore
	}
	if e.NotAfter != nil {
		o.NotAfter = *e.NotAfter
	}
	o.AKI, _ = hex.DecodeString(e.AKI)
	o.SKI, _ = hex.DecodeString(e.SKI)
	if o.Annotations == nil {
		o.Annotations = map[string]string{}
	}
	return o
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

// readIndex returns the index by path; a missing or unreadable index is empty
// (everything is parsed, which is only slower).
func readIndex(dir, indexPath string) map[string]indexEntry {
	if indexPath == "" {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(indexPath)))
	if err != nil {
		return nil
	}
	// BuildIndex writes one entry per line between a fixed header and footer, so
	// entries decode in parallel; anything else is not an index we wrote.
	const header, footer = "{\"version\":1,\"entries\":[", "\n]}\n"
	if !bytes.HasPrefix(raw, []byte(header)) || !bytes.HasSuffix(raw, []byte(footer)) {
		return nil
	}
	body := raw[len(header) : len(raw)-len(footer)]
	var lines [][]byte
	for _, l := range bytes.Split(body, []byte("\n")) {
		if l = bytes.TrimSuffix(l, []byte(",")); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	entries := make([]indexEntry, len(lines))
	bad := make([]bool, len(lines))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(lines); i += workers {
				bad[i] = json.Unmarshal(lines[i], &entries[i]) != nil
			}
		}(w)
	}
	wg.Wait()
	m := make(map[string]indexEntry, len(entries))
	for i, e := range entries {
		if bad[i] {
			return nil
		}
		m[e.Path] = e
	}
	return m
}

// BuildIndex renders the index of a final tree from its records (nil entries,
// files that are not records, are skipped). Entries are sorted by path, one per
// line, so a git diff shows one line per changed record.
func BuildIndex(records []*Object) ([]byte, error) {
	records = slices.DeleteFunc(slices.Clone(records), func(o *Object) bool { return o == nil })
	slices.SortFunc(records, func(a, b *Object) int { return strings.Compare(a.Path, b.Path) })
	var b bytes.Buffer
	b.WriteString("{\"version\":1,\"entries\":[")
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
	b.WriteString("\n]}\n")
	return b.Bytes(), nil
}
