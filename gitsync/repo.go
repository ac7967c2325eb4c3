package gitsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

var (
	// ErrRejected means the remote branch moved since our fetch; the caller
	// should Refresh, re-plan and commit again (see WithRetry).
	ErrRejected = errors.New("gitsync: push rejected, the remote branch moved")
	// ErrAuth means the remote refused our credentials or we refused its host
	// key. Retrying will not help.
	ErrAuth = errors.New("gitsync: authentication failed")
)

const remoteName = "origin"

// Repo is a clone in the cache dir, checked out at Source.Branch and held
// under an exclusive lock until Unlock.
type Repo struct {
	src      Source
	root     string
	auth     transport.AuthMethod
	authDesc string
	repo     *git.Repository
	wt       *git.Worktree
	lock     *fileLock
}

// Signature is the author and committer of a commit. When is required so that
// the caller's injected clock, not the wall clock, dates the history.
type Signature struct {
	Name, Email string
	When        time.Time
}

// Trailer is a "Key: value" line appended to a commit message, e.g.
// "Gitca-Plan: 3 renew, 1 create".
type Trailer struct{ Key, Value string }

// cacheKey names the clone directory. The branch is part of the key so the
// topology and state can live on two branches of one repository, and the
// directory too, so that two sources on the same branch (topology and state
// in different subdirs) get their own clones instead of waiting on each
// other's lock.
func cacheKey(src Source) string {
	sum := sha256.Sum256([]byte(src.URL + "\x00" + src.Branch + "\x00" + src.Dir))
	return hex.EncodeToString(sum[:])[:16]
}

// Open clones src into cacheDir/<key> or, if a clone is there, fetches and
// hard-resets it to the remote branch tip, discarding whatever a crashed run
// left behind. An empty remote or a missing branch gives an empty worktree;
// the first Commit then creates the branch. Open holds an exclusive lock on
// the clone (cacheDir/<key>.lock) until Unlock or process exit, waiting for
// another process's lock until ctx is done.
func Open(ctx context.Context, src Source, cacheDir string, auth AuthOptions) (*Repo, error) {
	if src.URL == "" || src.Branch == "" {
		return nil, fmt.Errorf("gitsync: incomplete source %+v; build it with ParseSource", src)
	}
	if d, err := cleanDir(src.String(), src.Dir); err != nil || d != src.Dir {
		return nil, fmt.Errorf("gitsync: source directory %q is not a clean path inside the repository; build it with ParseSource", src.Dir)
	}
	method, err := auth.Method(src)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("gitsync: cache dir: %w", err)
	}
	key := cacheKey(src)
	lk, err := lockFile(ctx, filepath.Join(cacheDir, key+".lock"))
	if err != nil {
		return nil, err
	}
	r := &Repo{
		src:      src,
		root:     filepath.Join(cacheDir, key),
		auth:     method,
		authDesc: auth.describe(src),
		lock:     lk,
	}
	if err := r.open(ctx); err != nil {
		_ = lk.unlock()
		return nil, err
	}
	return r, nil
}

func (r *Repo) open(ctx context.Context) error {
	repo, err := git.PlainOpen(r.root)
	reused := err == nil && r.remoteMatches(repo)
	if !reused {
		if repo, err = r.initClone(); err != nil {
			return err
		}
	}
	err = r.sync(ctx, repo)
	var le *LinkError
	if err == nil || !reused || errors.Is(err, ErrAuth) || errors.As(err, &le) || ctx.Err() != nil {
		return err
	}
	// The clone is damaged beyond what a reset repairs: a crash mid-write
	// can leave a broken index, ref or pack. It is only a cache, so start
	// over; if the failure was the network, the fresh clone fails the same
	// way and says so.
	if repo, err = r.initClone(); err != nil {
		return err
	}
	return r.sync(ctx, repo)
}

// sync adopts repo, fetches and resets the worktree to the remote tip.
func (r *Repo) sync(ctx context.Context, repo *git.Repository) error {
	if err := r.use(repo); err != nil {
		return err
	}
	return r.Refresh(ctx)
}

func (r *Repo) use(repo *git.Repository) error {
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("gitsync: worktree of %s: %w", r.root, err)
	}
	r.repo, r.wt = repo, wt
	return nil
}

// remoteMatches guards against a cache dir that, for whatever reason, holds a
// clone of something else.
func (r *Repo) remoteMatches(repo *git.Repository) bool {
	rem, err := repo.Remote(remoteName)
	if err != nil {
		return false
	}
	c := rem.Config()
	return len(c.URLs) == 1 && c.URLs[0] == r.src.URL
}

// initClone starts an empty clone with origin configured. Fetching into an
// initialised repository, rather than git.Clone, treats an empty remote and
// an existing one the same way.
func (r *Repo) initClone() (*git.Repository, error) {
	if err := os.RemoveAll(r.root); err != nil {
		return nil, fmt.Errorf("gitsync: clear cache clone: %w", err)
	}
	repo, err := git.PlainInit(r.root, false)
	if err != nil {
		return nil, fmt.Errorf("gitsync: init cache clone %s: %w", r.root, err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{r.src.URL},
		Fetch: []config.RefSpec{r.fetchSpec()},
	})
	if err != nil {
		return nil, fmt.Errorf("gitsync: configure remote: %w", err)
	}
	return repo, nil
}

func (r *Repo) branchRef() plumbing.ReferenceName {
	return plumbing.NewBranchReferenceName(r.src.Branch)
}

func (r *Repo) trackingRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, r.src.Branch)
}

// fetchSpec fetches only the branch we work on: other branches (PR branches,
// someone's topology) are none of this clone's business.
func (r *Repo) fetchSpec() config.RefSpec {
	return config.RefSpec(fmt.Sprintf("+%s:%s", r.branchRef(), r.trackingRef()))
}

func (r *Repo) fetch(ctx context.Context) error {
	err := r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{r.fetchSpec()},
		Auth:       r.auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, transport.ErrEmptyRemoteRepository), errors.Is(err, git.NoMatchingRefSpecError{}):
		// The branch does not exist (yet, or any more): forget our copy of
		// it so Reset yields the empty tree the first commit starts from.
		if err := r.repo.Storer.RemoveReference(r.trackingRef()); err != nil {
			return fmt.Errorf("gitsync: drop stale %s: %w", r.trackingRef(), err)
		}
		return nil
	default:
		return r.remoteError("fetch from", err)
	}
}

// Dir is the worktree root joined with Source.Dir, created if missing (a
// failure to create it shows up on the caller's first write).
func (r *Repo) Dir() string {
	d := filepath.Join(r.root, filepath.FromSlash(r.src.Dir))
	_ = os.MkdirAll(d, 0o755)
	return d
}

// Root is the worktree root; Changed lists paths relative to it.
func (r *Repo) Root() string { return r.root }

// Source is the address this clone was opened from.
func (r *Repo) Source() Source { return r.src }

// Head is the current commit of the branch, false when the branch has no
// commit yet (empty remote, first run).
func (r *Repo) Head() (plumbing.Hash, bool) {
	ref, err := r.repo.Reference(r.branchRef(), true)
	if err != nil {
		return plumbing.ZeroHash, false
	}
	return ref.Hash(), true
}

// Changed lists the paths, relative to the worktree root and sorted, that
// differ from HEAD: added, modified or deleted. Files matched by .gitignore
// are not listed (and not committed).
func (r *Repo) Changed() ([]string, error) {
	st, err := r.wt.Status()
	if err != nil {
		return nil, fmt.Errorf("gitsync: status: %w", err)
	}
	var out []string
	for p, s := range st {
		if s.Staging == git.Unmodified && s.Worktree == git.Unmodified {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Commit stages every change in the worktree (additions, modifications and
// deletions) and records one commit authored and committed by author. With
// nothing changed it makes no commit and returns the current head and false,
// which is how a no-op run stays out of the history.
func (r *Repo) Commit(message string, trailers []Trailer, author Signature) (plumbing.Hash, bool, error) {
	msg, err := commitMessage(message, trailers)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	if author.Name == "" || author.Email == "" || author.When.IsZero() {
		return plumbing.ZeroHash, false, errors.New("gitsync: commit needs an author name, email and time")
	}
	head, _ := r.Head()
	// Adding computes the worktree status; an unchanged tree then surfaces as
	// ErrEmptyCommit below, so no status of our own is needed first.
	if err := r.wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("gitsync: stage changes: %w", err)
	}
	sig := &object.Signature{Name: author.Name, Email: author.Email, When: author.When}
	h, err := r.wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if errors.Is(err, git.ErrEmptyCommit) {
		return head, false, nil
	}
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("gitsync: commit: %w", err)
	}
	return h, true, nil
}

func commitMessage(message string, trailers []Trailer) (string, error) {
	msg := strings.TrimSpace(message)
	if msg == "" {
		return "", errors.New("gitsync: empty commit message")
	}
	var b strings.Builder
	b.WriteString(msg)
	b.WriteString("\n")
	for i, t := range trailers {
		// git interpret-trailers only recognises tokens without spaces or
		// colons, and a newline in a value would forge a further trailer.
		if t.Key == "" || strings.ContainsAny(t.Key, ": \t\r\n") {
			return "", fmt.Errorf("gitsync: invalid trailer key %q", t.Key)
		}
		if strings.ContainsAny(t.Value, "\r\n") {
			return "", fmt.Errorf("gitsync: trailer %s: value spans lines", t.Key)
		}
		if i == 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: %s\n", t.Key, strings.TrimSpace(t.Value))
	}
	return b.String(), nil
}

// Push sends HEAD to refs/heads/<branch>, the source branch when branch is
// "" (another name is a pull-request branch). It is a plain push: if the
// remote moved since our fetch the error wraps ErrRejected and nothing on the
// remote changed.
func (r *Repo) Push(ctx context.Context, branch string) error {
	if branch == "" {
		branch = r.src.Branch
	}
	head, err := r.pushTo(ctx, "push", branch, false)
	if err != nil {
		return err
	}
	if branch == r.src.Branch {
		// Record that the remote now has our head, so a later Reset keeps
		// this commit instead of rolling back to the pre-push tip.
		ref := plumbing.NewHashReference(r.trackingRef(), head)
		if err := r.repo.Storer.SetReference(ref); err != nil {
			return fmt.Errorf("gitsync: record pushed head: %w", err)
		}
	}
	return nil
}

// pushTo sends HEAD to refs/heads/<branch> and returns what it sent; force
// replaces whatever the branch held. op names the caller in errors.
func (r *Repo) pushTo(ctx context.Context, op, branch string, force bool) (plumbing.Hash, error) {
	dst := plumbing.NewBranchReferenceName(branch)
	if err := dst.Validate(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitsync: %s: invalid branch name %q", op, branch)
	}
	head, ok := r.Head()
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("gitsync: %s: branch %s has no commit to push", op, r.src.Branch)
	}
	spec := fmt.Sprintf("%s:%s", r.branchRef(), dst)
	if force {
		spec = "+" + spec
	}
	err := r.repo.PushContext(ctx, &git.PushOptions{RemoteName: remoteName, RefSpecs: []config.RefSpec{config.RefSpec(spec)}, Auth: r.auth})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, r.pushError(ctx, branch, err)
	}
	return head, nil
}

func (r *Repo) pushError(ctx context.Context, branch string, err error) error {
	if isAuthError(err) {
		return r.remoteError("push to", err)
	}
	where := fmt.Sprintf("%s branch %s", r.src.URL, branch)
	if isRejection(err) || (branch == r.src.Branch && r.remoteMoved(ctx)) {
		return fmt.Errorf("%w: push to %s: %v", ErrRejected, where, err)
	}
	return fmt.Errorf("gitsync: push to %s: %w", where, err)
}

// remoteMoved catches a rejection the client-side check could not see: the
// remote ref changed between its advertisement and our update, and
// git-receive-pack failed to lock or update it.
func (r *Repo) remoteMoved(ctx context.Context) bool {
	rem, err := r.repo.Remote(remoteName)
	if err != nil {
		return false
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth})
	if err != nil {
		return false
	}
	var known plumbing.Hash
	if ref, err := r.repo.Reference(r.trackingRef(), true); err == nil {
		known = ref.Hash()
	}
	for _, ref := range refs {
		if ref.Name() == r.branchRef() {
			return ref.Hash() != known
		}
	}
	return !known.IsZero()
}

// isRejection recognises go-git's client-side fast-forward check and the
// statuses git-receive-pack reports for a ref that moved under us.
func isRejection(err error) bool {
	msg := err.Error()
	for _, m := range []string{"non-fast-forward", "fetch first", "stale info", "failed to update ref", "cannot lock ref", "failed to lock"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

func isAuthError(err error) bool {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
		return true
	}
	msg := err.Error()
	for _, m := range []string{"unable to authenticate", "knownhosts:", "host key mismatch", "Permission denied (publickey"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// remoteError wraps a transport failure, naming the remote and the kind of
// credentials tried; auth failures wrap ErrAuth.
func (r *Repo) remoteError(op string, err error) error {
	if isAuthError(err) {
		return fmt.Errorf("%w: %s %s using %s: %v", ErrAuth, op, r.src.URL, r.authDesc, err)
	}
	return fmt.Errorf("gitsync: %s %s: %w", op, r.src.URL, err)
}

// Reset drops uncommitted changes and local commits: the worktree, index and
// branch return to the remote-tracking branch, or to an empty tree when the
// remote has no such branch. It does not touch the network.
func (r *Repo) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.resetToRemote()
}

// Refresh fetches and resets to the new remote tip: the step before
// re-planning after ErrRejected.
func (r *Repo) Refresh(ctx context.Context) error {
	if err := r.fetch(ctx); err != nil {
		return err
	}
	return r.resetToRemote()
}

func (r *Repo) resetToRemote() error {
	branch := r.branchRef()
	if err := r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
		return fmt.Errorf("gitsync: point HEAD at %s: %w", branch, err)
	}
	tip, err := r.repo.Reference(r.trackingRef(), true)
	switch {
	case err == nil:
		if err := r.checkLinks(tip.Hash()); err != nil {
			return err
		}
		if err := r.removeLinks(); err != nil {
			return err
		}
		if err := r.repo.Storer.SetReference(plumbing.NewHashReference(branch, tip.Hash())); err != nil {
			return fmt.Errorf("gitsync: reset %s: %w", branch, err)
		}
		if err := r.wt.Reset(&git.ResetOptions{Commit: tip.Hash(), Mode: git.HardReset}); err != nil {
			return fmt.Errorf("gitsync: reset worktree to %s: %w", tip.Hash(), err)
		}
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		if err := r.repo.Storer.RemoveReference(branch); err != nil {
			return fmt.Errorf("gitsync: drop %s: %w", branch, err)
		}
		if err := r.repo.Storer.SetIndex(&index.Index{Version: 2}); err != nil {
			return fmt.Errorf("gitsync: clear index: %w", err)
		}
	default:
		return fmt.Errorf("gitsync: read %s: %w", r.trackingRef(), err)
	}
	if err := r.removeUntracked(); err != nil {
		return err
	}
	return r.checkDir()
}

// LinkError is a symbolic link in the part of a commit gitca reads
// (Source.Dir): the checkout would let the repository's content decide where
// reads and writes go.
type LinkError struct {
	Source Source
	Commit string
	Path   string // slash path in the repository
	Target string
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("gitsync: %s: commit %s: %s is a symbolic link to %q: gitca neither reads nor writes through one; replace it with the file or directory itself", e.Source, e.Commit, e.Path, e.Target)
}

// maxLinkTarget bounds how much of a link's target an error quotes.
const maxLinkTarget = 256

// checkLinks refuses a commit that holds a symbolic link under Source.Dir
// (or on the way to it), before anything of it is checked out. Links
// elsewhere in the repository (a monorepo's docs) are no concern of gitca's.
func (r *Repo) checkLinks(commit plumbing.Hash) error {
	c, err := r.repo.CommitObject(commit)
	if err != nil {
		return fmt.Errorf("gitsync: reading commit %s: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("gitsync: reading the tree of %s: %w", commit, err)
	}
	dir := ""
	for _, part := range strings.Split(r.src.Dir, "/") {
		if part == "" {
			continue
		}
		dir = path.Join(dir, part)
		e, err := tree.FindEntry(dir)
		if err != nil {
			return nil // Dir does not exist in this commit: nothing to read
		}
		if e.Mode == filemode.Symlink {
			return r.linkError(commit, dir, e.Hash)
		}
		if e.Mode != filemode.Dir {
			return nil // checkDir names a file in the way
		}
	}
	if dir != "" {
		if tree, err = tree.Tree(dir); err != nil {
			return fmt.Errorf("gitsync: reading %s of %s: %w", dir, commit, err)
		}
	}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gitsync: reading the tree of %s: %w", commit, err)
		}
		if e.Mode == filemode.Symlink {
			return r.linkError(commit, path.Join(dir, name), e.Hash)
		}
	}
}

func (r *Repo) linkError(commit plumbing.Hash, p string, blob plumbing.Hash) error {
	target := "?"
	if b, err := r.repo.BlobObject(blob); err == nil {
		if rd, err := b.Reader(); err == nil {
			buf, _ := io.ReadAll(io.LimitReader(rd, maxLinkTarget))
			rd.Close()
			target = string(buf)
		}
	}
	return &LinkError{Source: r.src, Commit: commit.String(), Path: p, Target: target}
}

// removeLinks deletes every symbolic link in the worktree before a checkout:
// go-git writes through a link a previous checkout left where the new commit
// has a directory. The checkout makes the new commit's own links again.
func (r *Repo) removeLinks() error {
	err := filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == git.GitDirName && filepath.Dir(p) == r.root {
			return fs.SkipDir
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gitsync: clean worktree: %w", err)
	}
	return nil
}

// checkDir refuses a Source.Dir reached through a symlink: the repository's
// content decides where a symlink points, and the renderer must never be
// steered into writing outside the clone.
func (r *Repo) checkDir() error {
	p := r.root
	for _, part := range strings.Split(r.src.Dir, "/") {
		if part == "" {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // Dir creates it as a real directory
		case err != nil:
			return fmt.Errorf("gitsync: %w", err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("gitsync: %s: %s is a symlink in the repository; refusing to use it as the directory", r.src, p)
		case !fi.IsDir():
			return fmt.Errorf("gitsync: %s: %s is not a directory", r.src, p)
		}
	}
	return nil
}

// removeUntracked deletes every file the index does not track, ignored ones
// included (git clean -fdx): a crashed run's temp files must not survive into
// the next run's render.
func (r *Repo) removeUntracked() error {
	idx, err := r.repo.Storer.Index()
	if err != nil {
		return fmt.Errorf("gitsync: read index: %w", err)
	}
	tracked := make(map[string]bool, len(idx.Entries))
	for _, e := range idx.Entries {
		tracked[e.Name] = true
	}
	var dirs []string
	err = filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case rel == git.GitDirName:
			return fs.SkipDir
		case d.IsDir():
			dirs = append(dirs, p)
			return nil
		case tracked[rel]:
			return nil
		}
		return os.Remove(p)
	})
	if err != nil {
		return fmt.Errorf("gitsync: clean worktree: %w", err)
	}
	// Deepest first so emptied parents go too; a non-empty directory holds
	// tracked files and stays.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		_ = os.Remove(d)
	}
	return nil
}

// Unlock releases the clone's lock. The Repo must not be used afterwards.
func (r *Repo) Unlock() error {
	if r.lock == nil {
		return nil
	}
	err := r.lock.unlock()
	r.lock = nil
	return err
}
