package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/secrets"
)

// The seed corpora live in testdata/fuzz/<Target>/ (the hostile cases of
// issue 11 among them); hack/fuzz.sh runs every target.

// FuzzRecordTree holds the subset parser to yaml.v3: whatever it accepts, it
// reads as yaml.v3 does, and whatever limit it hits, yaml.v3 refuses too.
// Neither may panic or take long.
func FuzzRecordTree(f *testing.F) {
	for _, s := range recordSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		defer watchdog(t, raw)()
		fast, ok, ferr := fastTree(raw, nil)
		slow, _, serr := yamlTree(raw)
		switch {
		case ferr != nil:
			var le *secrets.LimitError
			if !errors.As(ferr, &le) {
				t.Fatalf("the subset parser fails with something other than a limit: %v", ferr)
			}
			if serr == nil {
				t.Fatalf("the subset parser hits a limit (%v), yaml.v3 reads it", ferr)
			}
		case ok:
			if serr != nil {
				t.Fatalf("the subset parser reads what yaml.v3 refuses (%v):\n%q", serr, raw)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("the parsers disagree on\n%q\nsubset: %#v\nyaml.v3: %#v", raw, fast, slow)
			}
		}
	})
}

// FuzzRead reads a state tree of one record and an index: never a panic, a
// hang or a write; a record it accepts has a summary that indexes and reads
// back as vouched.
func FuzzRead(f *testing.F) {
	for _, s := range readSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, record, index []byte) {
		defer watchdog(t, record, index)()
		dir := t.TempDir()
		for name, b := range map[string][]byte{"clusters/c/pki/secret-x.yaml": record, ".gitca/index.json": index} {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		st, err := Read(dir, testOptions)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("reading took %s", d)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "clusters/c/pki/secret-x.yaml") && !strings.Contains(err.Error(), ".gitca/index.json") {
				t.Fatalf("the error names no file: %v", err)
			}
			return
		}
		o := st.At("clusters/c/pki/secret-x.yaml")
		if o == nil {
			return
		}
		o.Cert() // the values parse again as they did
		line, err := json.Marshal(entryOf(o))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEntry(nil, entryOf(o)); !bytes.Equal(got, line) {
			t.Fatalf("appendEntry wrote\n%s\njson.Marshal\n%s", got, line)
		}
		vouched := st.Indexed[o.Path]
		if vouched && !bytes.Contains(index, line) {
			t.Fatalf("vouched for by an index without its entry")
		}
		if st.Indexed != nil && vouched == slices.Contains(st.Unvouched, o.Path) {
			t.Fatalf("vouched for %v, but listed as unvouched %v", vouched, !vouched)
		}
	})
}

// readSeeds are a record with its index, the index lying, and the hostile
// records with the same index.
func readSeeds(tb testing.TB) [][2][]byte {
	k := testpki.NewAgeKey(tb)
	rec := sealedTLSSecret(tb, k)
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), rec, 0o644); err != nil {
		tb.Fatal(err)
	}
	st, err := Read(dir, testOptions)
	if err != nil {
		tb.Fatal(err)
	}
	o := st.At("r.yaml")
	o.Path = "clusters/c/pki/secret-x.yaml"
	idx, err := BuildIndex([]*Object{o})
	if err != nil {
		tb.Fatal(err)
	}
	out := [][2][]byte{
		{rec, idx},
		{rec, bytes.Replace(idx, []byte(`"notAfter":"2027`), []byte(`"notAfter":"2099`), 1)},
		{rec, bytes.Replace(idx, []byte(`"path":"`), []byte(`"path":"../../`), 1)},
		{rec, []byte("{\"version\":1,\"entries\":[\n{\"path\":\"a\\u0022\"}\n]}\n")},
	}
	for _, s := range recordSeeds(tb) {
		out = append(out, [2][]byte{s, idx})
	}
	return out
}

// watchdog fails a fuzz input that takes longer than a hostile file may,
// naming it (the fuzzing engine only notices a hang at its deadline); call
// the function it returns when done.
func watchdog(t *testing.T, input ...[]byte) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			panic(fmt.Sprintf("%s: over 5s on input %q", t.Name(), input))
		}
	}()
	return func() { close(done) }
}

// recordSeeds are records as gitca writes them and the hostile inputs the
// limits and the subset parser must handle.
func recordSeeds(tb testing.TB) [][]byte {
	k := testpki.NewAgeKey(tb)
	rec := sealedTLSSecret(tb, k)
	return [][]byte{
		rec,
		bytes.ReplaceAll(rec, []byte("\n"), []byte("\r\n")),
		bytes.Replace(rec, []byte("kind: Secret"), []byte("kind: Secret # a comment"), 1),
		bytes.Replace(rec, []byte("type: kubernetes.io/tls"), []byte("type: 'kubernetes.io/tls'"), 1),
		bytes.Replace(rec, []byte("type: kubernetes.io/tls"), []byte("type: \"kubernetes.io/tls\""), 1),
		bytes.Replace(rec, []byte("type: kubernetes.io/tls"), []byte("type: null"), 1),
		bytes.Replace(rec, []byte("type: kubernetes.io/tls"), []byte("type: ~"), 1),
		bytes.Replace(rec, []byte("type: kubernetes.io/tls"), []byte("type:"), 1),
		bytes.Replace(rec, []byte("ca.crt: |"), []byte("ca.crt: |-"), 1),
		bytes.Replace(rec, []byte("ca.crt: |"), []byte("ca.crt: |+"), 1),
		bytes.Replace(rec, []byte("ca.crt: |"), []byte("ca.crt: >"), 1),
		append(append([]byte{}, rec...), []byte("---\nkind: ClusterRoleBinding\n")...),
		[]byte("a: b\n"),
		[]byte("a:\n  - b: c\n    d: e\n  - f: g\n"),
		[]byte("a:\n- b: c\n"),
		[]byte("a: |\n  x\n\n  y\n"),
		[]byte("a: |\n    x\n  y\n"),
		[]byte("a: 'it''s'\n"),
		[]byte("a: \"q\\\"\"\n"),
		[]byte("a: b: c\n"),
		[]byte("a: -b\n"),
		[]byte("a: ...\n"),
		[]byte("a: &x b\nc: *x\n"),
		[]byte("d: &d\n  <<: *d\n"),
		[]byte("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"),
		[]byte("x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n"),
		[]byte(strings.Repeat("a: 1\n", 300)),
		[]byte("a: !!binary Zm9v\n"),
		[]byte("? [a]\n: b\n"),
		[]byte("a: b\na: c\n"),
		[]byte("a: \xc3\xa9\n"),
		[]byte("\ufeffa: b\n"),
		[]byte("%YAML 1.1\n---\na: b\n"),
		[]byte(""),
		[]byte("a: b"),
		[]byte("- a\n"),
	}
}
