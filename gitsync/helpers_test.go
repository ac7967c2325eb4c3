package gitsync

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/stretchr/testify/require"
)

// testClock is the injected "now" for every commit the tests make.
var testClock = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testAuthor() Signature {
	return Signature{Name: "gitca", Email: "gitca@example.test", When: testClock}
}

// newRemote makes an empty bare repository and returns its source and path.
func newRemote(t *testing.T) (Source, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	_, err := git.PlainInit(dir, true)
	require.NoError(t, err)
	src, err := ParseSource("file://" + dir)
	require.NoError(t, err)
	return src, dir
}

// openRepo opens src in a fresh cache dir and unlocks it at test end.
func openRepo(t *testing.T, src Source) *Repo {
	t.Helper()
	return openIn(t, src, t.TempDir())
}

func openIn(t *testing.T, src Source, cache string) *Repo {
	t.Helper()
	r, err := Open(context.Background(), src, cache, AuthOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Unlock() })
	return r
}

// seed lands one commit with files on the remote through a throwaway clone.
func seed(t *testing.T, src Source, files map[string]string) {
	t.Helper()
	r := openRepo(t, src)
	for name, content := range files {
		writeFile(t, filepath.Join(r.Dir(), name), content)
	}
	_, ok, err := r.Commit("seed", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, r.Push(context.Background(), ""))
	require.NoError(t, r.Unlock())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// gitCLI runs the real git against gitDir to check what go-git wrote, with
// the user's and system's configuration kept out.
func gitCLI(t *testing.T, gitDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir=" + gitDir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// remoteTip is the remote branch's commit as the git CLI sees it, "" when
// the branch does not exist.
func remoteTip(t *testing.T, bare, branch string) string {
	t.Helper()
	cmd := exec.Command("git", "--git-dir="+bare, "rev-parse", "--verify", "-q", "refs/heads/"+branch)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}

// treeFiles lists the files of a commit-ish on the remote.
func treeFiles(t *testing.T, bare, rev string) []string {
	t.Helper()
	out := gitCLI(t, bare, "ls-tree", "-r", "--name-only", rev)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}
