package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/secrets"
)

var testOptions = Options{IndexPath: ".gitca/index.json", SkipDir: func(n string) bool { return n == ".git" }}

// writeTree writes files (slash paths) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o644))
	}
}

// indexed is a tree of one sealed record and its index, as a render writes them.
func indexed(t *testing.T, k testpki.AgeKey) (dir string, rec []byte) {
	t.Helper()
	dir = t.TempDir()
	rec = sealedTLSSecret(t, k)
	writeTree(t, dir, map[string]string{"clusters/c/pki/secret-demo.yaml": string(rec)})
	st, err := Read(dir, testOptions)
	require.NoError(t, err)
	idx, err := BuildIndex([]*Object{st.At("clusters/c/pki/secret-demo.yaml")})
	require.NoError(t, err)
	writeTree(t, dir, map[string]string{".gitca/index.json": string(idx)})
	return dir, rec
}

func TestReadVouchedRecord(t *testing.T) {
	dir, _ := indexed(t, testpki.NewAgeKey(t))
	st, err := Read(dir, testOptions)
	require.NoError(t, err)
	o := st.At("clusters/c/pki/secret-demo.yaml")
	require.NotNil(t, o)
	assert.Equal(t, 0, st.Parsed)
	assert.Empty(t, st.Unvouched)
	assert.Equal(t, map[string]bool{"clusters/c/pki/secret-demo.yaml": true}, st.Indexed)
	assert.Equal(t, "demo-apiserver", o.Name)
	assert.Equal(t, "kube-system", o.Namespace)
	assert.Equal(t, "kubernetes.io/tls", o.Type)
	assert.Equal(t, []string{"ca.crt", "tls.crt", "tls.key"}, o.Keys)
	assert.Empty(t, o.Unexpected)
	assert.Empty(t, o.Problems)
	require.NotNil(t, o.Cert(), "certificates are parsed again on first use")
	assert.Equal(t, o.Cert().NotAfter.UTC(), o.NotAfter)
	assert.True(t, o.HasCert())
}

// TestIndexIsNeverTrusted: an entry whose hash matches its record but whose
// fields lie (a later not-after, another ID, no problems) is ignored: the
// record's fields come from its bytes, it counts as changed outside gitca,
// and the index is not vouched for; an entry that only re-orders its JSON
// is not what BuildIndex writes either.
func TestIndexIsNeverTrusted(t *testing.T) {
	for _, lie := range []struct {
		name string
		edit func(e map[string]any)
	}{
		{"later not-after", func(e map[string]any) { e["notAfter"] = "2099-01-01T00:00:00Z" }},
		{"another object", func(e map[string]any) { e["id"] = "Certificate/other" }},
		{"other recipients", func(e map[string]any) { e["recipients"] = []string{"age1other"} }},
		{"no spec hash", func(e map[string]any) { delete(e["annotations"].(map[string]any), AnnotationSpecHash) }},
		{"a problem hidden", func(e map[string]any) { e["problems"] = nil }},
	} {
		t.Run(lie.name, func(t *testing.T) {
			dir, _ := indexed(t, testpki.NewAgeKey(t))
			p := filepath.Join(dir, ".gitca/index.json")
			raw, err := os.ReadFile(p)
			require.NoError(t, err)
			lines := strings.Split(string(raw), "\n")
			var e map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[1]), &e))
			lie.edit(e)
			b, err := json.Marshal(e)
			require.NoError(t, err)
			lines[1] = string(b)
			require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644))

			st, err := Read(dir, testOptions)
			require.NoError(t, err)
			o := st.At("clusters/c/pki/secret-demo.yaml")
			require.NotNil(t, o)
			assert.Equal(t, "Certificate/demo-apiserver", o.ID)
			assert.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), o.NotAfter)
			assert.NotEmpty(t, o.Annotations)
			assert.Equal(t, []string{"clusters/c/pki/secret-demo.yaml"}, st.Unvouched)
			assert.Equal(t, map[string]bool{"clusters/c/pki/secret-demo.yaml": false}, st.Indexed)
			rebuilt, err := BuildIndex([]*Object{o})
			require.NoError(t, err)
			assert.NotContains(t, string(rebuilt), "2099", "the lie is not copied into the index")
		})
	}
}

// TestReadRefusesLinksAndSpecialFiles: a symbolic link anywhere in the tree
// (file or directory, pointing in or out), or a FIFO, is an error naming it
// and its target; nothing is read through it.
func TestReadRefusesLinksAndSpecialFiles(t *testing.T) {
	for _, c := range []struct{ link, target, want string }{
		{"clusters/c/pki", "OUT", `clusters/c/pki is a symbolic link to "OUT"`},
		{"ca", "OUT", `ca is a symbolic link to "OUT"`},
		{".gitca", "OUT", `.gitca is a symbolic link to "OUT"`},
		{".gitca/index.json", "OUT/index.json", `.gitca/index.json is a symbolic link to "OUT/index.json"`},
		{"clusters/c/pki/secret-x.yaml", "secret-demo.yaml", `clusters/c/pki/secret-x.yaml is a symbolic link to "secret-demo.yaml"`},
		{"README.md", "/etc/passwd", `README.md is a symbolic link to "/etc/passwd"`},
		{"dangling", "nowhere", `dangling is a symbolic link to "nowhere"`},
		{".git", "OUT", `.git is a symbolic link to "OUT"`},
	} {
		t.Run(c.link, func(t *testing.T) {
			dir, _ := indexed(t, testpki.NewAgeKey(t))
			out := t.TempDir()
			writeTree(t, out, map[string]string{"index.json": "{}", "secret-demo.yaml": "x"})
			l := filepath.Join(dir, filepath.FromSlash(c.link))
			require.NoError(t, os.RemoveAll(l))
			require.NoError(t, os.MkdirAll(filepath.Dir(l), 0o755))
			require.NoError(t, os.Symlink(strings.ReplaceAll(c.target, "OUT", out), l))
			_, err := Read(dir, testOptions)
			require.Error(t, err)
			assert.Contains(t, err.Error(), strings.ReplaceAll(c.want, "OUT", out))
			var se *SymlinkError
			assert.ErrorAs(t, err, &se)
		})
	}
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644))
		done := make(chan error)
		go func() { _, err := Read(dir, testOptions); done <- err }()
		select {
		case err := <-done:
			require.Error(t, err)
			assert.Contains(t, err.Error(), "pipe.yaml is not a regular file")
		case <-time.After(5 * time.Second):
			t.Fatal("a FIFO blocked the read")
		}
	})
}

// TestReadLimits: input over a bound is an error naming the file and the
// limit, found quickly; what gitca writes is far inside them.
func TestReadLimits(t *testing.T) {
	k := testpki.NewAgeKey(t)
	rec := string(sealedTLSSecret(t, k))
	// A record with one extra annotation line inserted.
	withAnnotations := func(lines string) string {
		return strings.Replace(rec, "        gitca.dev/object:", lines+"        gitca.dev/object:", 1)
	}
	var manyKeys, deep strings.Builder
	for i := range 40000 {
		fmt.Fprintf(&manyKeys, "        k%05d: v\n", i)
	}
	deep.WriteString("apiVersion: v1\nmetadata:\n  annotations: {gitca.dev/object: Certificate/x, gitca.dev/role: primary}\nx: ")
	deep.WriteString(strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n")
	bomb := "metadata:\n  annotations:\n    gitca.dev/object: Certificate/x\n    gitca.dev/role: primary\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	selfMerge := "metadata:\n  annotations:\n    gitca.dev/object: Certificate/x\n    gitca.dev/role: primary\nd: &d\n  <<: *d\n"
	docs := strings.Repeat("gitca.dev/object: x\n---\n", 70)
	for _, c := range []struct{ name, content, want string }{
		{"keys in one mapping (0.95 MB record)", withAnnotations(manyKeys.String()), "clusters/c/pki/r.yaml: line 261: keys in one mapping over the limit of 256"},
		{"nesting", deep.String(), "clusters/c/pki/r.yaml: line 4: YAML nesting depth over the limit of 32"},
		{"alias bomb", bomb, "clusters/c/pki/r.yaml: line 5: YAML anchors, aliases and merge keys over the limit of 0"},
		{"self-referencing merge key", selfMerge, "clusters/c/pki/r.yaml: line 5: YAML anchors, aliases and merge keys over the limit of 0"},
		{"documents", docs, "clusters/c/pki/r.yaml: line 128: YAML documents over the limit of 64"},
		{"file size", rec + strings.Repeat("#", secrets.MaxFileSize), fmt.Sprintf("clusters/c/pki/r.yaml: %d bytes, over the limit of %d", len(rec)+secrets.MaxFileSize, secrets.MaxFileSize)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"clusters/c/pki/r.yaml": c.content})
			start := time.Now()
			_, err := Read(dir, testOptions)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			var le *secrets.LimitError
			assert.ErrorAs(t, err, &le)
			assert.Less(t, time.Since(start), 2*time.Second)
		})
	}
	t.Run("a 200 MB file is refused unread", func(t *testing.T) {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "junk.yaml"))
		require.NoError(t, err)
		require.NoError(t, f.Truncate(200<<20)) // sparse: nothing to read but its size
		require.NoError(t, f.Close())
		start := time.Now()
		_, err = Read(dir, testOptions)
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("junk.yaml: %d bytes, over the limit of %d", 200<<20, secrets.MaxFileSize))
		assert.Less(t, time.Since(start), time.Second)
	})
}

// TestReadPlaintextKeys: a private key in plain text anywhere in the state
// (a record, a stray file) stops the read, naming file and line, never the key.
func TestReadPlaintextKeys(t *testing.T) {
	dir, _ := indexed(t, testpki.NewAgeKey(t))
	_, key := testpki.PEMPair(t, "leaf")
	writeTree(t, dir, map[string]string{"notes/leak.txt": "hello\n" + key})
	_, err := Read(dir, testOptions)
	var pe *PlaintextKeysError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []Finding{{Path: "notes/leak.txt", Line: 2, What: "PEM PRIVATE KEY"}}, pe.Findings)
	assert.Contains(t, err.Error(), "notes/leak.txt:2: PEM PRIVATE KEY")
	for _, l := range pemBody(key) {
		assert.NotContains(t, err.Error(), l)
	}
}

// TestReadPlaintextKeyInAVouchedRecord: an index entry vouches for what gitca
// wrote, not for the absence of keys (anyone can write an entry; a render
// writes what the topology says): a key in a record the index vouches for
// stops the read all the same.
func TestReadPlaintextKeyInAVouchedRecord(t *testing.T) {
	k := testpki.NewAgeKey(t)
	_, key := testpki.PEMPair(t, "leaf")
	rec := strings.Replace(string(sealedTLSSecret(t, k)), "        gitca.dev/object:", "        note: |\n            "+strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n            ")+"\n        gitca.dev/object:", 1)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"r.yaml": rec})
	var o *Object
	func() {
		// Read it once without the scan to build the index a forger would.
		raw := []byte(rec)
		var err error
		o, _, err = parseObject("r.yaml", raw, &certMemo{}, nil, false)
		require.NoError(t, err)
		require.NotNil(t, o)
	}()
	idx, err := BuildIndex([]*Object{o})
	require.NoError(t, err)
	writeTree(t, dir, map[string]string{".gitca/index.json": string(idx)})
	_, err = Read(dir, testOptions)
	var pe *PlaintextKeysError
	require.ErrorAs(t, err, &pe)
	var paths []string
	for _, f := range pe.Findings {
		paths = append(paths, f.Path)
	}
	assert.Equal(t, []string{".gitca/index.json", "r.yaml"}, paths, "the record, and the index quoting it")
}

// TestReadUnexpectedContent: what a gitca record does not hold is listed,
// without decrypting anything.
func TestReadUnexpectedContent(t *testing.T) {
	k := testpki.NewAgeKey(t)
	rec := string(sealedTLSSecret(t, k))
	edit := strings.NewReplacer(
		"kind: Secret\n", "kind: Secret\ndata:\n    foo: YmFy\n",
		"    labels:\n", "    finalizers:\n        - x\n    labels:\n",
		"stringData:\n", "stringData:\n    extra: plain\n",
		"    age:\n", "    pgp:\n        - fp: ABCD\n    age:\n",
	).Replace(rec)
	if !strings.Contains(rec, "    labels:\n") {
		edit = strings.Replace(edit, "    annotations:\n", "    finalizers:\n        - x\n    annotations:\n", 1)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"r.yaml": edit})
	st, err := Read(dir, testOptions)
	require.NoError(t, err)
	o := st.At("r.yaml")
	require.NotNil(t, o)
	assert.Equal(t, []string{"data", "metadata.finalizers", "sops.pgp"}, o.Unexpected)
	assert.Equal(t, []string{"ca.crt", "extra", "tls.crt", "tls.key"}, o.Keys)
}

// TestReadUnreadableRecords: a file that names an object but cannot be read
// as a record is not one, and says why.
func TestReadUnreadableRecords(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ca/root.yaml":  "metadata:\n  annotations:\n    gitca.dev/object: CertificateAuthority/root\n  name: [unclosed\n",
		"ca/other.yaml": "metadata:\n  annotations: [gitca.dev/object]\n",
		"ca/dup.yaml":   "metadata:\n  annotations:\n    gitca.dev/object: a\n    gitca.dev/object: b\n",
		"ca/tag.yaml":   "metadata:\n  annotations:\n    gitca.dev/object: !!binary Zm9v\n",
	})
	st, err := Read(dir, testOptions)
	require.NoError(t, err)
	assert.Empty(t, st.Primary)
	assert.Contains(t, st.Unreadable["ca/root.yaml"], "yaml: line 3: did not find expected ',' or ']'")
	assert.Equal(t, "metadata.annotations is not a mapping of strings", st.Unreadable["ca/other.yaml"])
	assert.Contains(t, st.Unreadable["ca/dup.yaml"], `line 4: mapping key "gitca.dev/object" is already defined`)
	assert.Contains(t, st.Unreadable["ca/tag.yaml"], "explicit YAML tag")
}

func TestReadCancelled(t *testing.T) {
	dir, _ := indexed(t, testpki.NewAgeKey(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ReadContext(ctx, dir, testOptions)
	require.ErrorIs(t, err, context.Canceled)
}

func TestPrintableASCII(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte("abcdefghijklmnopqrstu")
			b[pos] = byte(c)
			want := c >= 0x20 && c <= 0x7e || c == '\n'
			require.Equal(t, want, printableASCII(b), "%#x at %d", c, pos)
		}
	}
}

// TestNewRecordIsWhatReadingSays: the record a render builds from what it
// sealed is the one a read derives from the file.
func TestNewRecordIsWhatReadingSays(t *testing.T) {
	k := testpki.NewAgeKey(t)
	crt, key := testpki.PEMPair(t, "demo")
	doc := secrets.Doc{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": secrets.Doc{"name": "demo", "namespace": "ns", "labels": map[string]string{LabelManagedBy: ManagedByValue},
			"annotations": map[string]string{AnnotationObject: "Certificate/demo", AnnotationRole: RolePrimary}},
		"stringData": map[string]string{"ca.crt": crt, "tls.crt": crt, "tls.key": key},
	}
	sealed, err := secrets.SealDoc(doc, []string{k.Recipient}, time.Now())
	require.NoError(t, err)
	rec, err := NewRecord("r.yaml", sealed, doc, []string{k.Recipient})
	require.NoError(t, err)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"r.yaml": string(sealed)})
	st, err := Read(dir, testOptions)
	require.NoError(t, err)
	read := st.At("r.yaml")
	require.NotNil(t, read)
	a, _ := json.Marshal(entryOf(rec))
	b, _ := json.Marshal(entryOf(read))
	assert.Equal(t, string(a), string(b))
	assert.Equal(t, rec.Keys, read.Keys)
	assert.Equal(t, rec.Unexpected, read.Unexpected)
	assert.Equal(t, []any{rec.Name, rec.Namespace, rec.Type}, []any{read.Name, read.Namespace, read.Type})
	assert.True(t, bytes.Equal(rec.Cert().Raw, read.Cert().Raw))
}

// TestAppendEntryIsJSON: the index entries a read compares are the bytes
// json.Marshal writes, so indexes written before keep matching.
func TestAppendEntryIsJSON(t *testing.T) {
	nb, na := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 123, time.FixedZone("x", 3600))
	for _, e := range []indexEntry{
		{},
		{Path: "clusters/c/pki/secret-a.yaml", SHA256: "ab", ID: "Certificate/a", Role: "primary"},
		{Path: "p", Annotations: map[string]string{"b": "2", "a": `{"cn":"A & <B>"}`, "c": "line\nbreak\ttab\x00\x7f"},
			Recipients: []string{"age1x", "age1y"}, Problems: []string{"tls.crt: x509: \"bad\""}, NotBefore: &nb, NotAfter: &na, AKI: "01", SKI: "02"},
		{Path: "ü/\u2028/\xff", ID: "Certificate/é", Annotations: map[string]string{}, Recipients: []string{}},
	} {
		want, err := json.Marshal(e)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendEntry(nil, e)))
	}
}
