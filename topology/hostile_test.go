package topology

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/internal/hostileyaml"
)

const hostileHeader = hostileyaml.Header

var (
	mergeBomb  = hostileyaml.MergeBomb
	laughs     = hostileyaml.Laughs
	aliasChain = hostileyaml.AliasChain
	deepBlock  = hostileyaml.DeepBlock
)

// hostileTopologies are inputs written to make the loader crash, hang or
// work for minutes. Each must end in an error that names the file.
var hostileTopologies = []struct {
	name, yaml string
	want       string // in the error
}{
	{"self-referencing merge key", hostileHeader + "metadata: &d\n  name: x\n  <<: *d\n",
		"f.yaml:5:7: alias *d refers to a value that contains it"},
	{"self-referencing merge key in a list", hostileHeader + "metadata: &d {name: x, <<: [*d]}\n",
		"alias *d refers to a value that contains it"},
	{"self-referencing sequence", hostileHeader + "metadata: {name: x}\nspec: {dnsNames: &s [a, *s]}\n",
		"f.yaml:4:25: alias *s refers to a value that contains it"},
	{"self-reference two levels down", hostileHeader + "metadata: {name: x}\nspec: &s {subject: {organizations: [*s]}}\n",
		"alias *s refers to a value that contains it"},
	{"self-referencing key", hostileHeader + "metadata: &m {*m : x}\n", "alias *m refers to a value that contains it"},
	{"merge-key bomb", mergeBomb(9), "f.yaml:9:23: aliases expand to more than 100000 values in this file"},
	{"billion laughs, sequences", laughs(9, "[", "]"), "aliases expand to more than 100000 values in this file"},
	{"billion laughs, mappings", laughs(9, "{", "}"), "aliases expand to more than 100000 values in this file"},
	{"alias chain nesting deep", aliasChain(100), "values nested more than 64 deep (aliases followed)"},
	{"deep flow sequence", strings.Repeat("[", 1000), "f.yaml:1:65: flow collections ([ or {) nested more than 64 deep"},
	{"deep flow mapping", hostileHeader + "spec: " + strings.Repeat("{a: ", 200), "f.yaml:3:"},
	{"deep block mapping", deepBlock(100), "values nested more than 64 deep"},
	{"deep compact block sequence", strings.Repeat("- ", 10_500) + "x\n", "f.yaml:1:1: values nested more than 64 deep"},
	{"file too large", hostileHeader + "# " + strings.Repeat("x", MaxFileSize), "f.yaml: file is larger than 4194304 bytes"},
	{"too many flow items", hostileHeader + "spec: {dnsNames: [" + strings.Repeat("a,", MaxFileItems) + "a]}\n",
		"f.yaml:3:1: more than 100000 lines and flow items (commas) in one file"},
	{"too many lines", strings.Repeat("#\n", MaxFileItems+1), "f.yaml:100001:1: more than 100000 lines"},
	{"too many documents", strings.Repeat("---\n", MaxDocuments+1), "more than 10000 documents in one file"},
	{"too many object documents", strings.Repeat("--- {}\n", MaxDocuments+1), "more than 10000 documents in one file"},
	{"unknown anchor", hostileHeader + "metadata: *nope\n", "f.yaml:3:11: invalid YAML: unknown anchor 'nope' referenced"},
	{"binary junk", "\x00\x01\x02\xff\xfe" + strings.Repeat("\x7f\x00", 100), "f.yaml:1:"},
	{"invalid UTF-8", hostileHeader + "metadata: {name: \xff\xfe}\n", "f.yaml:"},
	{"UTF-16 byte order mark and text", "\xff\xfea\x00:\x00 \x00b\x00", "f.yaml:"},
	{"tab indentation", hostileHeader + "metadata:\n\tname: x\n", "f.yaml:4:"},
	{"merge of a scalar", hostileHeader + "metadata: {<<: 1, name: x}\n", "f.yaml:3:16: metadata: a merge key (<<) takes a mapping"},
	{"merge of a list of scalars", hostileHeader + "metadata: {<<: [1, 2], name: x}\n", "f.yaml:3:17: metadata: a merge key (<<) takes mappings"},
	{"alias as a field name", hostileHeader + "x: &k name\nmetadata: {*k : x}\n", "f.yaml:4:12: metadata: expected a field name"},
	{"huge scalar", hostileHeader + "metadata: {name: " + strings.Repeat("x", 3<<20) + "}\n", "f.yaml:3:18: metadata.name: invalid name"},
	{"long plain-key run", strings.Repeat("? ", 20_000) + "x\n", "f.yaml:1:"},
	{"unterminated quote", hostileHeader + "metadata: {name: \"x}\n" + strings.Repeat("y\n", 1000), "f.yaml:"},
	{"document of only a scalar", "--- 12\n", "f.yaml:1:5: a document must be a mapping"},
	{"non-string field names", hostileHeader + "metadata: {name: x}\n1: a\n[a]: b\n", "f.yaml:4:1: expected a field name"},
	{"duplicate keys", hostileHeader + "metadata: {name: x}\nmetadata: {name: y}\n", "f.yaml:4:1: metadata: duplicate field"},
	{"YAML directive", "%YAML 1.1\n%TAG ! tag:x,2000:\n--- !foo\n" + hostileHeader, "f.yaml:"},
	{"custom tags", hostileHeader + "metadata: !!binary {name: !!binary eA==}\n", "f.yaml:3:27: metadata.name: expected a string, got a !!binary value"},
	{"many anchors", hostileHeader + "metadata: {name: x}\nspec: {dnsNames: [" + strings.Repeat("&a a, ", 30_000) + "a]}\n", "f.yaml:4:"},
}

func TestLoadHostileYAML(t *testing.T) {
	for _, c := range hostileTopologies {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"f.yaml": c.yaml})
			start := time.Now()
			top, err := Load(dir)
			elapsed := time.Since(start)
			require.Error(t, err, "loaded %v", top)
			assert.Contains(t, err.Error(), c.want)
			var list ErrorList
			require.ErrorAs(t, err, &list, "a hostile file is a topology error, not an I/O error")
			for _, e := range list {
				assert.Equal(t, "f.yaml", e.Pos.File, "every error names the file: %s", e)
			}
			// Well under the 5 s a plan may spend; the largest case takes half a second.
			limit := 4 * time.Second
			if raceEnabled {
				limit *= 10
			}
			assert.Less(t, elapsed, limit)
		})
	}
}

// The decoder reports each problem in a document; the limits stop at the
// first one, because after a bomb nothing in the file is cheap to look at.
func TestLoadHostileReportsOnce(t *testing.T) {
	for _, in := range []string{mergeBomb(9), laughs(9, "[", "]"), strings.Repeat("---\n", 2*MaxDocuments)} {
		_, err := Load(writeTree(t, map[string]string{"f.yaml": in}))
		require.Error(t, err)
		assert.Len(t, strings.Split(err.Error(), "\n"), 1, err.Error())
	}
}

// Just inside every limit, a file still loads: the limits must never reject
// what a large real topology writes.
func TestLoadWithinLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(doc(docCA, "ca"))
	// Nine thousand certificates as the benchmarks write them, ten lines each,
	// and a shared list named through an alias by every one.
	b.WriteString("---\napiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: leaf}\nspec:\n  issuer: ca\n  profile: server\n  dnsNames: &names [a.example.com, b.example.com, c.example.com]\n  secret: {cluster: c}\n")
	for i := range 9000 {
		fmt.Fprintf(&b, "---\napiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: leaf-%05d}\nspec:\n  issuer: ca\n  profile: server\n  dnsNames: *names\n  validity: 8760h\n  secret: {cluster: c}\n", i)
	}
	top, err := Load(writeTree(t, map[string]string{"many.yaml": b.String()}))
	require.NoError(t, err)
	assert.Len(t, top.Certificates, 9001)
	assert.Equal(t, []string{"a.example.com", "b.example.com", "c.example.com"}, top.Certificate("leaf-08999").Spec.DNSNames)

	nested := hostileHeader + "metadata: {name: ca}\nspec:\n  subject: {organizations: " +
		strings.Repeat("[", MaxDepth-3) + strings.Repeat("]", MaxDepth-3) + "}\n"
	_, err = Load(writeTree(t, map[string]string{"f.yaml": nested}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expected a string, got a sequence", "64 levels pass the limits and reach the decoder")
	assert.NotContains(t, err.Error(), "nested more than")
}

func TestLoadContextCanceled(t *testing.T) {
	// Twenty files that each take the parser a while: without cancellation
	// loading them takes several seconds.
	files := map[string]string{}
	big := hostileHeader + "metadata: {name: x}\nspec: {dnsNames: [" + strings.Repeat("a,", MaxFileItems-10) + "a]}\n"
	for i := range 20 {
		files[fmt.Sprintf("f%02d.yaml", i)] = big
	}
	dir := writeTree(t, files)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := LoadContext(ctx, dir)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = LoadContext(ctx, dir)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), dir)
	assert.Less(t, time.Since(start), time.Second, "a SIGTERM must stop loading within a second")
}

func TestGuardTurnsPanicIntoError(t *testing.T) {
	for _, c := range []struct {
		value any
		want  string
	}{
		{"index out of range", "f.yaml: the YAML parser failed on this file: index out of range (valid YAML; please report this as a gitca bug)"},
		{errors.New("boom"), "f.yaml: the YAML parser failed on this file: boom"},
		{"near -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI", "(panic message withheld: it quotes the input)"},
		{strings.Repeat("y", 1000), strings.Repeat("y", 200) + "…"},
	} {
		errs := guard("f.yaml", func() ErrorList { panic(c.value) })
		require.Len(t, errs, 1)
		assert.Contains(t, errs.Error(), c.want)
		assert.NotContains(t, errs.Error(), "MHcCAQEEI")
	}
	ok := guard("f.yaml", func() ErrorList { return nil })
	assert.Empty(t, ok)
}

func TestLoadFileTooLargeIsNotRead(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "huge.yaml"))
	require.NoError(t, err)
	// A sparse gigabyte: reading it all would take seconds and the memory.
	require.NoError(t, f.Truncate(1<<30))
	require.NoError(t, f.Close())
	start := time.Now()
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "huge.yaml: file is larger than 4194304 bytes (at most 4 MiB per file")
	assert.Less(t, time.Since(start), time.Second)
}
