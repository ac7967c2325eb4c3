package gitsync

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirstCommitOnEmptyRemoteCreatesBranch(t *testing.T) {
	src, bare := newRemote(t)
	src.Branch = "state"
	r := openRepo(t, src)

	_, ok := r.Head()
	assert.False(t, ok, "an empty remote has no head")
	changed, err := r.Changed()
	require.NoError(t, err)
	assert.Empty(t, changed)

	writeFile(t, filepath.Join(r.Dir(), "ca", "root.yaml"), "root\n")
	changed, err = r.Changed()
	require.NoError(t, err)
	assert.Equal(t, []string{"ca/root.yaml"}, changed)

	h, ok, err := r.Commit("gitca: create root", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	head, ok := r.Head()
	require.True(t, ok)
	assert.Equal(t, h, head)
	assert.Empty(t, remoteTip(t, bare, "state"), "nothing reaches the remote before Push")

	require.NoError(t, r.Push(context.Background(), ""))
	assert.Equal(t, h.String(), remoteTip(t, bare, "state"))
	assert.Equal(t, []string{"ca/root.yaml"}, treeFiles(t, bare, "state"))
	assert.Equal(t, "gitca <gitca@example.test> 2026-11-23T12:00:00+00:00",
		gitCLI(t, bare, "log", "-1", "--format=%an <%ae> %aI", "state"))
	gitCLI(t, bare, "fsck", "--strict")
}

func TestCommitWithoutChangesMakesNoCommit(t *testing.T) {
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"a.yaml": "a\n"})
	r := openRepo(t, src)
	before, ok := r.Head()
	require.True(t, ok)

	// Rewriting a file with identical bytes is not a change.
	writeFile(t, filepath.Join(r.Dir(), "a.yaml"), "a\n")
	h, made, err := r.Commit("gitca: nothing to do", nil, testAuthor())
	require.NoError(t, err)
	assert.False(t, made)
	assert.Equal(t, before, h)
	after, _ := r.Head()
	assert.Equal(t, before, after)
	assert.Equal(t, "1", gitCLI(t, filepath.Join(r.Root(), ".git"), "rev-list", "--count", "HEAD"))
	assert.Equal(t, "1", gitCLI(t, bare, "rev-list", "--count", "main"))
}

func TestCommitStagesModificationsAdditionsAndDeletions(t *testing.T) {
	src, bare := newRemote(t)
	seed(t, src, map[string]string{
		"a.yaml":        "a\n",
		"keep.yaml":     "keep\n",
		"old/gone.yaml": "gone\n",
	})
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "a.yaml"), "a2\n")
	require.NoError(t, os.Remove(filepath.Join(r.Dir(), "old", "gone.yaml")))
	writeFile(t, filepath.Join(r.Dir(), "new", "b.yaml"), "b\n")

	changed, err := r.Changed()
	require.NoError(t, err)
	assert.Equal(t, []string{"a.yaml", "new/b.yaml", "old/gone.yaml"}, changed)

	h, ok, err := r.Commit("gitca: renew a, delete gone", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, r.Push(context.Background(), ""))

	assert.Equal(t, h.String(), remoteTip(t, bare, "main"))
	assert.Equal(t, []string{"a.yaml", "keep.yaml", "new/b.yaml"}, treeFiles(t, bare, "main"))
	assert.Equal(t, "a2", gitCLI(t, bare, "show", "main:a.yaml"))
	assert.Equal(t, "M\ta.yaml\nA\tnew/b.yaml\nD\told/gone.yaml",
		gitCLI(t, bare, "diff", "--name-status", "main~1", "main"))

	changed, err = r.Changed()
	require.NoError(t, err)
	assert.Empty(t, changed, "a commit leaves a clean worktree")
}

func TestCommitSubdirSourceAndGitignore(t *testing.T) {
	src, bare := newRemote(t)
	seed(t, src, map[string]string{".gitignore": "*.tmp\n"})
	src.Dir = "clusters/prod"
	r := openRepo(t, src)
	assert.Equal(t, filepath.Join(r.Root(), "clusters", "prod"), r.Dir())
	writeFile(t, filepath.Join(r.Dir(), "tls.yaml"), "tls\n")
	writeFile(t, filepath.Join(r.Dir(), "render.tmp"), "half\n")

	changed, err := r.Changed()
	require.NoError(t, err)
	assert.Equal(t, []string{"clusters/prod/tls.yaml"}, changed, "ignored files are not changes")
	_, ok, err := r.Commit("gitca: prod", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, r.Push(context.Background(), ""))
	assert.Equal(t, []string{".gitignore", "clusters/prod/tls.yaml"}, treeFiles(t, bare, "main"))
}

func TestCommitMessageTrailers(t *testing.T) {
	src, bare := newRemote(t)
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "x"), "x\n")
	_, ok, err := r.Commit("gitca: 1 create\n\ncreate x: missing\n", []Trailer{
		{Key: "Gitca-Plan", Value: "1 create"},
		{Key: "Gitca-Topology", Value: "0123abc"},
	}, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, r.Push(context.Background(), ""))

	assert.Equal(t, "gitca: 1 create\n\ncreate x: missing\n\nGitca-Plan: 1 create\nGitca-Topology: 0123abc",
		gitCLI(t, bare, "log", "-1", "--format=%B", "main"))
	// git's own trailer parser must see them, or tooling reading them breaks.
	assert.Equal(t, "1 create", gitCLI(t, bare, "log", "-1", "--format=%(trailers:key=Gitca-Plan,valueonly)", "main"))
	assert.Equal(t, "0123abc", gitCLI(t, bare, "log", "-1", "--format=%(trailers:key=Gitca-Topology,valueonly)", "main"))
}

func TestCommitMessageValidation(t *testing.T) {
	tests := []struct {
		name     string
		message  string
		trailers []Trailer
		want     string
		wantErr  string
	}{
		{name: "plain", message: "subject", want: "subject\n"},
		{name: "trimmed", message: "\n subject\n\n", want: "subject\n"},
		{name: "trailers", message: "s", trailers: []Trailer{{"A", "1"}, {"B-C", " 2 "}}, want: "s\n\nA: 1\nB-C: 2\n"},
		{name: "empty message", message: " \n", wantErr: "empty commit message"},
		{name: "key with space", message: "s", trailers: []Trailer{{"A B", "1"}}, wantErr: "invalid trailer key"},
		{name: "key with colon", message: "s", trailers: []Trailer{{"A:", "1"}}, wantErr: "invalid trailer key"},
		{name: "empty key", message: "s", trailers: []Trailer{{"", "1"}}, wantErr: "invalid trailer key"},
		{name: "forged trailer", message: "s", trailers: []Trailer{{"A", "1\nSigned-off-by: x"}}, wantErr: "spans lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := commitMessage(tt.message, tt.trailers)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCommitNeedsAuthorTime(t *testing.T) {
	src, _ := newRemote(t)
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "x"), "x\n")
	_, _, err := r.Commit("s", nil, Signature{Name: "gitca", Email: "g@example.test"})
	require.ErrorContains(t, err, "author")
	_, ok := r.Head()
	assert.False(t, ok)
}

func TestRacingClonesSecondPushRejected(t *testing.T) {
	ctx := context.Background()
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"shared.yaml": "v1\n"})
	a := openRepo(t, src)
	b := openRepo(t, src)

	writeFile(t, filepath.Join(a.Dir(), "shared.yaml"), "from a\n")
	ha, ok, err := a.Commit("a", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	writeFile(t, filepath.Join(b.Dir(), "b.yaml"), "from b\n")
	_, ok, err = b.Commit("b", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, a.Push(ctx, ""))
	err = b.Push(ctx, "")
	require.ErrorIs(t, err, ErrRejected)
	t.Log(err)
	assert.Contains(t, err.Error(), src.URL)
	assert.Equal(t, ha.String(), remoteTip(t, bare, "main"), "a rejected push changes nothing")

	// The retry path: fetch A's commit, re-render, commit again on top.
	require.NoError(t, b.Refresh(ctx))
	head, _ := b.Head()
	assert.Equal(t, ha, head)
	assert.Equal(t, "from a\n", readFile(t, filepath.Join(b.Dir(), "shared.yaml")))
	assert.NoFileExists(t, filepath.Join(b.Dir(), "b.yaml"), "Refresh drops the rejected commit's files")
	writeFile(t, filepath.Join(b.Dir(), "b.yaml"), "from b\n")
	hb, ok, err := b.Commit("b again", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.Push(ctx, ""))

	assert.Equal(t, hb.String(), remoteTip(t, bare, "main"))
	assert.Equal(t, "3", gitCLI(t, bare, "rev-list", "--count", "main"))
	assert.Empty(t, gitCLI(t, bare, "rev-list", "--merges", "main"), "history stays linear")
	assert.Equal(t, []string{"b again", "a", "seed"}, strings.Split(gitCLI(t, bare, "log", "--format=%s", "main"), "\n"))
	gitCLI(t, bare, "fsck", "--strict")
}

func TestWithRetryDrivesRejectedPushToSuccess(t *testing.T) {
	ctx := context.Background()
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"n": "0\n"})
	a := openRepo(t, src)
	b := openRepo(t, src)
	writeFile(t, filepath.Join(a.Dir(), "n"), "a\n")
	_, _, err := a.Commit("a", nil, testAuthor())
	require.NoError(t, err)
	require.NoError(t, a.Push(ctx, ""))

	var tries int
	err = WithRetry(ctx, 3, time.Millisecond, nil, func(attempt int) error {
		tries++
		if attempt > 0 {
			if err := b.Refresh(ctx); err != nil {
				return err
			}
		}
		writeFile(t, filepath.Join(b.Dir(), "b"), "b\n")
		if _, _, err := b.Commit("b", nil, testAuthor()); err != nil {
			return err
		}
		return b.Push(ctx, "")
	})
	require.NoError(t, err)
	assert.Equal(t, 2, tries)
	assert.Equal(t, []string{"b", "n"}, treeFiles(t, bare, "main"))
	assert.Equal(t, "a", gitCLI(t, bare, "show", "main:n"))
}

func TestOpenResetsDirtyCache(t *testing.T) {
	tests := []struct {
		name  string
		dirty func(t *testing.T, r *Repo)
	}{
		{"extra file", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Dir(), "extra", "stray.yaml"), "stray\n")
		}},
		{"ignored temp file", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Dir(), "a.yaml.tmp"), "half\n")
		}},
		{"half-written file", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Dir(), "a.yaml"), "apiVers")
		}},
		{"deleted file", func(t *testing.T, r *Repo) {
			require.NoError(t, os.Remove(filepath.Join(r.Dir(), "sub", "b.yaml")))
		}},
		{"local unpushed commit", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Dir(), "a.yaml"), "unpushed\n")
			writeFile(t, filepath.Join(r.Dir(), "c.yaml"), "unpushed\n")
			_, ok, err := r.Commit("never pushed", nil, testAuthor())
			require.NoError(t, err)
			require.True(t, ok)
		}},
		{"corrupt index", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Root(), ".git", "index"), "DIRC\x00garbage")
		}},
		{"corrupt branch ref", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Root(), ".git", "refs", "heads", "main"), "not-a-hash\n")
		}},
		{"missing objects", func(t *testing.T, r *Repo) {
			require.NoError(t, os.RemoveAll(filepath.Join(r.Root(), ".git", "objects")))
		}},
		{"clone of another remote", func(t *testing.T, r *Repo) {
			other, _ := newRemote(t)
			require.NoError(t, r.repo.DeleteRemote(remoteName))
			_, err := r.repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{other.URL}})
			require.NoError(t, err)
		}},
		{"staged but not committed", func(t *testing.T, r *Repo) {
			writeFile(t, filepath.Join(r.Dir(), "staged.yaml"), "s\n")
			require.NoError(t, os.Remove(filepath.Join(r.Dir(), "a.yaml")))
			_, err := r.wt.Add("staged.yaml")
			require.NoError(t, err)
			_, err = r.wt.Remove("a.yaml")
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, bare := newRemote(t)
			seed(t, src, map[string]string{".gitignore": "*.tmp\n", "a.yaml": "apiVersion: v1\n", "sub/b.yaml": "b\n"})
			tip := remoteTip(t, bare, "main")
			cache := t.TempDir()

			r, err := Open(context.Background(), src, cache, AuthOptions{})
			require.NoError(t, err)
			tt.dirty(t, r)
			// A crashed run never unlocks; process death drops the flock,
			// which closing the lock file here stands in for.
			require.NoError(t, r.Unlock())

			r2 := openIn(t, src, cache)
			assert.Equal(t, r.Root(), r2.Root(), "the cache clone is reused")
			head, ok := r2.Head()
			require.True(t, ok)
			assert.Equal(t, tip, head.String())
			changed, err := r2.Changed()
			require.NoError(t, err)
			assert.Empty(t, changed)
			assert.Equal(t, "apiVersion: v1\n", readFile(t, filepath.Join(r2.Dir(), "a.yaml")))
			assert.Equal(t, "b\n", readFile(t, filepath.Join(r2.Dir(), "sub", "b.yaml")))
			var files []string
			require.NoError(t, filepath.WalkDir(r2.Root(), func(p string, d os.DirEntry, err error) error {
				if d.IsDir() && d.Name() == ".git" {
					return filepath.SkipDir
				}
				if !d.IsDir() {
					rel, _ := filepath.Rel(r2.Root(), p)
					files = append(files, rel)
				}
				return err
			}))
			assert.ElementsMatch(t, []string{".gitignore", "a.yaml", filepath.Join("sub", "b.yaml")}, files)
			assert.Equal(t, tip, remoteTip(t, bare, "main"), "the remote never saw the dirt")
		})
	}
}

func TestResetRestoresRemoteTip(t *testing.T) {
	ctx := context.Background()
	t.Run("existing branch", func(t *testing.T) {
		src, bare := newRemote(t)
		seed(t, src, map[string]string{"a": "a\n"})
		r := openRepo(t, src)
		writeFile(t, filepath.Join(r.Dir(), "a"), "changed\n")
		writeFile(t, filepath.Join(r.Dir(), "b"), "b\n")
		_, ok, err := r.Commit("local", nil, testAuthor())
		require.NoError(t, err)
		require.True(t, ok)
		writeFile(t, filepath.Join(r.Dir(), "c"), "c\n")

		require.NoError(t, r.Reset(ctx))
		head, _ := r.Head()
		assert.Equal(t, remoteTip(t, bare, "main"), head.String())
		assert.Equal(t, "a\n", readFile(t, filepath.Join(r.Dir(), "a")))
		assert.NoFileExists(t, filepath.Join(r.Dir(), "b"))
		assert.NoFileExists(t, filepath.Join(r.Dir(), "c"))
	})
	t.Run("branch not on remote", func(t *testing.T) {
		src, bare := newRemote(t)
		r := openRepo(t, src)
		writeFile(t, filepath.Join(r.Dir(), "a"), "a\n")
		_, ok, err := r.Commit("first", nil, testAuthor())
		require.NoError(t, err)
		require.True(t, ok)

		require.NoError(t, r.Reset(ctx))
		_, ok = r.Head()
		assert.False(t, ok, "an unpushed first commit is dropped")
		assert.NoFileExists(t, filepath.Join(r.Dir(), "a"))
		changed, err := r.Changed()
		require.NoError(t, err)
		assert.Empty(t, changed)
		assert.Empty(t, remoteTip(t, bare, "main"))
	})
	t.Run("after push keeps the pushed commit", func(t *testing.T) {
		src, _ := newRemote(t)
		r := openRepo(t, src)
		writeFile(t, filepath.Join(r.Dir(), "a"), "a\n")
		h, _, err := r.Commit("first", nil, testAuthor())
		require.NoError(t, err)
		require.NoError(t, r.Push(ctx, ""))
		require.NoError(t, r.Reset(ctx))
		head, ok := r.Head()
		require.True(t, ok)
		assert.Equal(t, h, head)
	})
}

func TestPushToPullRequestBranch(t *testing.T) {
	ctx := context.Background()
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"a": "a\n"})
	main := remoteTip(t, bare, "main")
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "a"), "renewed\n")
	h, _, err := r.Commit("gitca: renew a", nil, testAuthor())
	require.NoError(t, err)

	require.NoError(t, r.Push(ctx, "gitca/renew-a"))
	assert.Equal(t, h.String(), remoteTip(t, bare, "gitca/renew-a"))
	assert.Equal(t, main, remoteTip(t, bare, "main"), "PR mode leaves the target branch alone")

	require.ErrorContains(t, r.Push(ctx, "bad..name"), "invalid branch name")
}

func TestPushToReadOnlyRemoteFailsAndLeavesItUnchanged(t *testing.T) {
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"a": "a\n"})
	tip := remoteTip(t, bare, "main")
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "a"), "b\n")
	_, ok, err := r.Commit("change", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)

	makeReadOnly(t, filepath.Join(bare, "objects"))
	err = r.Push(context.Background(), "")
	require.Error(t, err)
	t.Log(err)
	assert.NotErrorIs(t, err, ErrRejected, "a broken remote is not a race to retry")
	assert.NotErrorIs(t, err, ErrAuth)
	assert.Contains(t, err.Error(), src.URL)
	assert.Equal(t, tip, remoteTip(t, bare, "main"))
	gitCLI(t, bare, "fsck", "--strict")
}

// makeReadOnly removes write permission below dir. Root ignores permission
// bits, so there the directories are also made immutable (chattr +i), which
// binds root too; the test is skipped if neither is possible.
func makeReadOnly(t *testing.T, dir string) {
	t.Helper()
	var dirs []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	}))
	for _, d := range dirs {
		require.NoError(t, os.Chmod(d, 0o555))
	}
	t.Cleanup(func() {
		for _, d := range dirs {
			_ = os.Chmod(d, 0o755)
		}
	})
	if os.Geteuid() != 0 {
		return
	}
	out, err := exec.Command("chattr", append([]string{"+i"}, dirs...)...).CombinedOutput()
	if err != nil {
		t.Skipf("running as root and chattr +i is unavailable (%v: %s): cannot make the remote read-only", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", append([]string{"-i"}, dirs...)...).Run() })
}

func TestOpenLocksTheCacheClone(t *testing.T) {
	src, _ := newRemote(t)
	cache := t.TempDir()
	r := openIn(t, src, cache)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Open(ctx, src, cache, AuthOptions{})
	require.ErrorContains(t, err, "locked by another gitca process")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, r.Unlock())
	r2 := openIn(t, src, cache)
	assert.Equal(t, r.Root(), r2.Root())
}

func TestSameRepositoryDifferentBranchesAndDirs(t *testing.T) {
	ctx := context.Background()
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"topology/ca.yaml": "ca\n"})
	cache := t.TempDir()

	topo := src
	topo.Dir = "topology"
	stateDir := src
	stateDir.Dir = "state"
	stateBranch := src
	stateBranch.Branch = "state"

	// All three are open at once: none waits on another's lock.
	rt := openIn(t, topo, cache)
	rd := openIn(t, stateDir, cache)
	rb := openIn(t, stateBranch, cache)
	assert.NotEqual(t, rt.Root(), rd.Root())
	assert.NotEqual(t, rt.Root(), rb.Root())
	assert.Equal(t, "ca\n", readFile(t, filepath.Join(rt.Dir(), "ca.yaml")))

	writeFile(t, filepath.Join(rb.Dir(), "tls.yaml"), "tls\n")
	_, ok, err := rb.Commit("state on its own branch", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, rb.Push(ctx, ""))
	assert.Equal(t, []string{"tls.yaml"}, treeFiles(t, bare, "state"))

	writeFile(t, filepath.Join(rd.Dir(), "tls.yaml"), "tls\n")
	_, ok, err = rd.Commit("state beside the topology", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, rd.Push(ctx, ""))
	assert.Equal(t, []string{"state/tls.yaml", "topology/ca.yaml"}, treeFiles(t, bare, "main"))
	assert.Equal(t, []string{"tls.yaml"}, treeFiles(t, bare, "state"))
}

func TestOpenRejectsUnparsedSource(t *testing.T) {
	for _, src := range []Source{
		{URL: "file:///x"},
		{URL: "file:///x", Branch: "main", Dir: "../escape"},
		{URL: "file:///x", Branch: "main", Dir: "a//b/"},
	} {
		_, err := Open(context.Background(), src, t.TempDir(), AuthOptions{})
		require.ErrorContains(t, err, "ParseSource", "%+v", src)
	}
}

func TestOpenRefusesDirThroughSymlink(t *testing.T) {
	src, _ := newRemote(t)
	r := openRepo(t, src)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(r.Root(), "clusters")))
	_, ok, err := r.Commit("a symlink in the state repo", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, r.Push(context.Background(), ""))

	src.Dir = "clusters/prod"
	_, err = Open(context.Background(), src, t.TempDir(), AuthOptions{})
	require.ErrorContains(t, err, "clusters is a symbolic link to")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was created through the link")
}

// pushTree lands one commit that makes the remote's tree exactly files
// (content "->target" makes a symbolic link), with the git CLI: go-git
// itself refuses to stage through some of the links these tests need.
func pushTree(t *testing.T, bare string, files map[string]string) {
	t.Helper()
	work := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", work}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.test")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	}
	git("init", "-q", "-b", "main")
	git("remote", "add", "origin", bare)
	if remoteTip(t, bare, "main") != "" {
		git("fetch", "-q", "origin", "main")
		git("reset", "-q", "--soft", "origin/main")
	}
	for name, content := range files {
		p := filepath.Join(work, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if target, ok := strings.CutPrefix(content, "->"); ok {
			require.NoError(t, os.Symlink(target, p))
			continue
		}
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	git("add", "-A")
	git("commit", "-q", "-m", "tree")
	git("push", "-q", "origin", "HEAD:main")
}

// TestOpenRefusesLinksInDir: a link anywhere under the source directory
// fails the checkout before any of it is written, naming the link and its
// target; links elsewhere in the repository are checked out as they are; and
// a link a previous checkout left never carries a later one's files out of
// the clone.
func TestOpenRefusesLinksInDir(t *testing.T) {
	src, bare := newRemote(t)
	outside := t.TempDir()
	cache := t.TempDir()
	state := src
	state.Dir = "state"

	pushTree(t, bare, map[string]string{"state/ca/root.yaml": "root", "state/clusters/prod/pki/secret-web.yaml": "web"})
	r := openIn(t, state, cache)
	require.NoError(t, r.Unlock())

	// A link under the state directory, pointing out of the clone.
	pushTree(t, bare, map[string]string{"state/ca/root.yaml": "root", "state/clusters/prod/pki": "->" + outside})
	_, err := Open(context.Background(), state, cache, AuthOptions{})
	var le *LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "state/clusters/prod/pki", le.Path)
	assert.Contains(t, err.Error(), "state/clusters/prod/pki is a symbolic link to")

	// Outside the state directory a link is the repository's business...
	pushTree(t, bare, map[string]string{"state/ca/root.yaml": "root", "docs": "->" + outside})
	r = openIn(t, state, cache)
	fi, err := os.Lstat(filepath.Join(r.Root(), "docs"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink)
	require.NoError(t, r.Unlock())
	// ...and when the next commit makes it a directory, its files land in the clone.
	pushTree(t, bare, map[string]string{"state/ca/root.yaml": "root", "docs/victim": "written through a link?"})
	r = openIn(t, state, cache)
	b, err := os.ReadFile(filepath.Join(r.Root(), "docs", "victim"))
	require.NoError(t, err)
	assert.Equal(t, "written through a link?", string(b))
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was written through a link")
}

func TestOpenMissingRemoteFails(t *testing.T) {
	src, err := ParseSource(filepath.Join(t.TempDir(), "nope.git"))
	require.NoError(t, err)
	_, err = Open(context.Background(), src, t.TempDir(), AuthOptions{})
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), src.URL)
}

// TestPushRejectedWhenRemoteMovesDuringPush covers the race the client-side
// fast-forward check cannot see: the remote branch moves after it was
// advertised. A pre-receive hook plays the other reconciler, moving the
// branch and failing the push the way a lost ref lock does.
func TestPushRejectedWhenRemoteMovesDuringPush(t *testing.T) {
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"a": "a\n"})
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "a"), "mine\n")
	_, ok, err := r.Commit("mine", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, ok)

	tree := gitCLI(t, bare, "rev-parse", "main^{tree}")
	theirs := gitCLI(t, bare, "-c", "user.name=other", "-c", "user.email=o@example.test",
		"commit-tree", "-p", "main", "-m", "theirs", tree)
	hook := filepath.Join(bare, "hooks", "pre-receive")
	require.NoError(t, os.MkdirAll(filepath.Dir(hook), 0o755))
	require.NoError(t, os.WriteFile(hook, []byte("#!/bin/sh\n# git forbids ref updates from a quarantined hook; this one is the other writer.\nunset GIT_QUARANTINE_PATH\ngit update-ref refs/heads/main "+theirs+"\nexit 1\n"), 0o755))

	err = r.Push(context.Background(), "")
	require.ErrorIs(t, err, ErrRejected)
	t.Log(err)
	assert.Equal(t, theirs, remoteTip(t, bare, "main"))

	require.NoError(t, os.Remove(hook))
	require.NoError(t, r.Refresh(context.Background()))
	head, _ := r.Head()
	assert.Equal(t, theirs, head.String())
}

func TestPushDeclinedByRemoteIsNotRejection(t *testing.T) {
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"a": "a\n"})
	tip := remoteTip(t, bare, "main")
	r := openRepo(t, src)
	writeFile(t, filepath.Join(r.Dir(), "a"), "mine\n")
	_, _, err := r.Commit("mine", nil, testAuthor())
	require.NoError(t, err)
	hook := filepath.Join(bare, "hooks", "pre-receive")
	require.NoError(t, os.MkdirAll(filepath.Dir(hook), 0o755))
	require.NoError(t, os.WriteFile(hook, []byte("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n"), 0o755))

	err = r.Push(context.Background(), "")
	require.Error(t, err)
	t.Log(err)
	assert.NotErrorIs(t, err, ErrRejected, "retrying a policy refusal would loop")
	assert.Equal(t, tip, remoteTip(t, bare, "main"))
}

// TestLockHeldByAnotherProcessIsReleasedOnDeath uses flock(1) as the other
// gitca: its lock blocks Open, and killing it frees the clone without any
// stale-lock cleanup.
func TestLockHeldByAnotherProcessIsReleasedOnDeath(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	src, _ := newRemote(t)
	cache := t.TempDir()
	lockPath := filepath.Join(cache, cacheKey(src)+".lock")
	ready := filepath.Join(t.TempDir(), "locked")
	// The holder and its child share the lock; they run in their own
	// process group so one kill ends both, as a crash would.
	holder := exec.Command("flock", "--exclusive", lockPath, "sh", "-c", "touch "+ready+"; exec sleep 60")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, holder.Start())
	kill := func() { _ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); _ = holder.Wait() }
	t.Cleanup(kill)
	require.Eventually(t, func() bool {
		_, err := os.Stat(ready)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Open(ctx, src, cache, AuthOptions{})
	require.ErrorContains(t, err, "locked by another gitca process")

	kill()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	r, err := Open(ctx2, src, cache, AuthOptions{})
	require.NoError(t, err)
	require.NoError(t, r.Unlock())
}

func TestRefreshAfterRemoteBranchDeleted(t *testing.T) {
	ctx := context.Background()
	src, bare := newRemote(t)
	seed(t, src, map[string]string{"a": "a\n"})
	r := openRepo(t, src)
	assert.Equal(t, src, r.Source())
	// Keep another branch so the remote is not empty: the branch, not the
	// repository, is what went missing.
	require.NoError(t, r.Push(ctx, "keep"))
	gitCLI(t, bare, "update-ref", "-d", "refs/heads/main")

	require.NoError(t, r.Refresh(ctx))
	_, ok := r.Head()
	assert.False(t, ok)
	assert.NoFileExists(t, filepath.Join(r.Dir(), "a"))

	// The next run starts the branch again from an empty tree.
	writeFile(t, filepath.Join(r.Dir(), "b"), "b\n")
	h, made, err := r.Commit("restart", nil, testAuthor())
	require.NoError(t, err)
	require.True(t, made)
	require.NoError(t, r.Push(ctx, ""))
	assert.Equal(t, h.String(), remoteTip(t, bare, "main"))
	assert.Equal(t, "1", gitCLI(t, bare, "rev-list", "--count", "main"))
}
