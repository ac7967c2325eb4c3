package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ReplaceBranch force-pushes HEAD to refs/heads/<branch>, whatever that branch
// held: a pull-request branch that gitca owns and re-proposes on every run,
// where the previous proposal is superseded rather than built upon. It
// refuses the source branch, whose history only ever moves forward (Push).
func (r *Repo) ReplaceBranch(ctx context.Context, branch string) error {
	if branch == "" || branch == r.src.Branch {
		return fmt.Errorf("gitsync: replace branch: %q is the source branch; use Push", branch)
	}
	_, err := r.pushTo(ctx, "replace branch", branch, true)
	return err
}

// Commit is a commit of another branch, as BranchHead reads it.
type Commit struct {
	Hash     plumbing.Hash
	Message  string
	Trailers map[string]string
}

// BranchHead fetches another branch of the remote (a proposal branch gitca
// pushed for review) and returns its head commit; ok is false when the
// branch does not exist. It leaves the branch this clone works on alone.
func (r *Repo) BranchHead(ctx context.Context, branch string) (c *Commit, ok bool, err error) {
	src := plumbing.NewBranchReferenceName(branch)
	if err := src.Validate(); err != nil {
		return nil, false, fmt.Errorf("gitsync: invalid branch name %q", branch)
	}
	dst := plumbing.ReferenceName("refs/gitca/branches/" + branch)
	err = r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", src, dst))},
		Auth:       r.auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository), errors.Is(err, git.NoMatchingRefSpecError{}):
		_ = r.repo.Storer.RemoveReference(dst)
		return nil, false, nil
	default:
		return nil, false, r.remoteError("fetch from", err)
	}
	ref, err := r.repo.Reference(dst, true)
	if err != nil {
		return nil, false, nil
	}
	obj, err := r.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, false, fmt.Errorf("gitsync: reading %s: %w", branch, err)
	}
	return &Commit{Hash: obj.Hash, Message: obj.Message, Trailers: parseTrailers(obj.Message)}, true, nil
}

// parseTrailers reads the "Key: Value" lines of a message's last paragraph,
// as commitMessage writes them.
func parseTrailers(msg string) map[string]string {
	paras := strings.Split(strings.TrimSpace(msg), "\n\n")
	out := map[string]string{}
	for _, l := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return map[string]string{}
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
