package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const docsDir = "../../docs"

// block is a fenced code block of a markdown file.
type block struct {
	file, info, text string
	line             int
}

func codeBlocks(t *testing.T, file string) []block {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var (
		out []block
		cur *block
		b   strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &block{file: file, info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: n}
			b.Reset()
		case cur != nil && trimmed == "```":
			cur.text = b.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			// Blocks inside list items are indented; the shell does not care.
			b.WriteString(strings.TrimPrefix(line, "   "))
			b.WriteString("\n")
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "%s: unterminated code block", file)
	return out
}

// gitcaCall finds a gitca invocation on a shell line: at its start, or
// inside $( ... ).
var gitcaCall = regexp.MustCompile(`(?:^|\$\(|&&\s*|\|\|\s*|;\s*|\bif\s+|=\s*)gitca((?:\s[^)|;&]*)?)(?:$|[)|;&])`)

// TestDocsCommandsParse: every gitca command line in docs/, runnable or not,
// names a real command and flags it accepts.
func TestDocsCommandsParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	require.NoError(t, err)
	seen := 0
	for _, file := range files {
		for _, b := range codeBlocks(t, file) {
			if !strings.HasPrefix(b.info, "sh") {
				continue
			}
			text := strings.ReplaceAll(b.text, "\\\n", " ")
			for _, line := range strings.Split(text, "\n") {
				line = strings.TrimSpace(line)
				if i := strings.Index(line, " # "); i >= 0 {
					line = line[:i]
				}
				for _, m := range gitcaCall.FindAllStringSubmatch(line, -1) {
					args := strings.Fields(m[1])
					for i, a := range args {
						if a == ">" || a == "2>&1" || a == ">/dev/null" || strings.HasPrefix(a, ">") {
							args = args[:i]
							break
						}
					}
					seen++
					root := newRootCmd()
					cmd, rest, err := root.Find(args)
					require.NoError(t, err, "%s:%d: gitca %s", b.file, b.line, strings.Join(args, " "))
					require.True(t, cmd != root, "%s:%d: gitca %s names no command", b.file, b.line, strings.Join(args, " "))
					assert.NoError(t, cmd.ParseFlags(rest), "%s:%d: gitca %s", b.file, b.line, strings.Join(args, " "))
				}
			}
		}
	}
	assert.Greater(t, seen, 20, "the docs show gitca commands")
}

// TestDocsRunnable runs every block marked "sh runnable" of each docs file,
// in order, as one script, in an empty directory with a copy of examples/
// and the gitca built from this tree first on PATH.
func TestDocsRunnable(t *testing.T) {
	e := newEnv(t)
	e.usePlainBinary(t)
	if e.bin == "" {
		t.Skip("no plain gitca binary could be built")
	}
	files, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	require.NoError(t, err)
	ran := 0
	for _, file := range files {
		var script strings.Builder
		for _, b := range codeBlocks(t, file) {
			if b.info == "sh runnable" {
				script.WriteString(b.text)
			}
		}
		if script.Len() == 0 {
			continue
		}
		ran++
		t.Run(filepath.Base(file), func(t *testing.T) {
			dir := t.TempDir()
			cp := exec.Command("cp", "-r", filepath.Join("..", "..", "examples"), filepath.Join(dir, "examples"))
			out, err := cp.CombinedOutput()
			require.NoError(t, err, "%s", out)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script.String())
			cmd.Dir = dir
			var env []string
			for _, kv := range e.vars {
				k, _, _ := strings.Cut(kv, "=")
				switch k {
				case execEnv, "SOPS_AGE_KEY_FILE", "PATH":
					continue // the docs set up their own key; gitca is the built binary
				}
				env = append(env, kv)
			}
			cmd.Env = append(env, "PATH="+filepath.Dir(e.bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err = cmd.CombinedOutput()
			require.NoError(t, err, "%s:\n%s", file, out)
			assert.NotRegexp(t, secretInLog, string(out), "nothing the docs run prints a key")
		})
	}
	assert.Positive(t, ran)
}

// TestReadmeLayoutTable keeps README.md's "Layout of the code" table in step
// with the packages: a package nobody can find in it is as good as undocumented.
func TestReadmeLayoutTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "## Layout of the code\n")
	require.True(t, ok, "README.md has no Layout of the code section")
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)/?` \\|").FindAllStringSubmatch(section, -1) {
		listed[strings.TrimSuffix(m[1], "/")] = true
	}
	var missing []string
	err = filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "../.." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir, _ := filepath.Rel("../..", filepath.Dir(path))
		for p := dir; p != "."; p = filepath.Dir(p) {
			if listed[filepath.ToSlash(p)] {
				return nil
			}
		}
		missing = append(missing, filepath.ToSlash(dir))
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, missing, "Go packages missing from README.md's layout table")
}
