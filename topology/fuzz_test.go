package topology

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateCorpus = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzLoad from hostileTopologies")

const corpusDir = "testdata/fuzz/FuzzLoad"

// maxCorpusEntry keeps the committed corpus small; the larger hostile cases
// (the size, line and document limits) stay in TestLoadHostileYAML: the
// fuzzer mutates and minimizes every seed, which is slow for large ones.
const maxCorpusEntry = 8 << 10

// FuzzLoad feeds one file to the loader. Whatever it holds, loading ends in a
// topology or in topology errors that each name the file, within five
// seconds, the same way every time: never a panic, a hang or an I/O error.
//
//	go test ./topology/ -run '^$' -fuzz FuzzLoad -fuzztime 60s
func FuzzLoad(f *testing.F) {
	// Real topologies as seeds, so the fuzzer starts from what passes the decoder.
	for _, pattern := range []string{"testdata/*/*.yaml", "testdata/*/*/*.y*ml", "../examples/*/*.yaml"} {
		files, err := filepath.Glob(pattern)
		require.NoError(f, err)
		for _, p := range files {
			b, err := os.ReadFile(p)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	dir := f.TempDir()
	file := filepath.Join(dir, "f.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(file, data, 0o644))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		top, err := LoadContext(ctx, dir)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("loading took %s", elapsed)
		}
		again, err2 := LoadContext(ctx, dir)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("not a topology error: %v", err)
			}
			for _, e := range list {
				if e.Pos.File != "f.yaml" && e.Pos.File != dir {
					t.Fatalf("error does not name the file: %q", e)
				}
			}
			require.Error(t, err2)
			require.Equal(t, err.Error(), err2.Error(), "the same input gives the same errors")
			return
		}
		require.NoError(t, err2)
		require.Equal(t, top, again, "the same input gives the same topology")
	})
}

var corpusName = regexp.MustCompile(`[^a-z0-9]+`)

// The committed corpus holds every small hostile case, so `go test` (which
// runs the corpus without -fuzz) replays them through FuzzLoad's checks.
func TestFuzzCorpusHasHostileCases(t *testing.T) {
	if *updateCorpus {
		require.NoError(t, os.MkdirAll(corpusDir, 0o755))
	}
	n := 0
	for _, c := range hostileTopologies {
		if len(c.yaml) > maxCorpusEntry {
			continue
		}
		n++
		p := filepath.Join(corpusDir, "hostile-"+strings.Trim(corpusName.ReplaceAllString(strings.ToLower(c.name), "-"), "-"))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", c.yaml)
		if *updateCorpus {
			require.NoError(t, os.WriteFile(p, []byte(want), 0o644))
			continue
		}
		got, err := os.ReadFile(p)
		require.NoError(t, err, "run go test ./topology/ -run TestFuzzCorpusHasHostileCases -update")
		assert.Equal(t, want, string(got), p)
	}
	assert.Greater(t, n, 24, "most hostile cases are small enough for the corpus")
}
