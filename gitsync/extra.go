package gitsync

import (
	"context"
	"errors"
	"fmt"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
)

// ReplaceBranch force-pushes HEAD to refs/heads/<branch>, whatever that branch
// held: a pull-request branch that gitca owns and re-proposes on every run,
// where the previous proposal is superseded rather than built upon. It
// refuses the source branch, whose history only ever moves forward (Push).
func (r *Repo) ReplaceBranch(ctx context.Context, branch string) error {
	dst := plumbing.NewBranchReferenceName(branch)
	if branch == "" || branch == r.src.Branch {
		return fmt.Errorf("gitsync: replace branch: %q is the source branch; use Push", branch)
	}
	if err := dst.Validate(); err != nil {
		return fmt.Errorf("gitsync: replace branch: invalid branch name %q", branch)
	}
	if _, ok := r.Head(); !ok {
		return fmt.Errorf("gitsync: replace branch: branch %s has no commit to push", r.src.Branch)
	}
	err := r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", r.branchRef(), dst))},
		Auth:       r.auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if isAuthError(err) {
			return r.remoteError("push to", err)
		}
		return fmt.Errorf("gitsync: push to %s branch %s: %w", r.src.URL, branch, err)
	}
	return nil
}
