package gitsync

import (
	"context"
	"fmt"
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
