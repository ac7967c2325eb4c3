// Package render runs one render of a state tree: check what was changed
// outside gitca, plan, apply, emit. It writes nothing; the caller writes the
// tree (emit.Write) or commits it.
package render

import (
	"context"
	"errors"
	"io"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// Result is one render: the plan, and the tree of changes it produced.
type Result struct {
	Plan *plan.Plan
	Tree *emit.Tree
}

// Options are a render's inputs besides topology, state and keys.
type Options struct {
	plan.Options
	// Verify opens every record (apply.Verify), not only those changed
	// outside gitca.
	Verify bool
	// SkipOverlayCheck lets benchmarks measure a render without the kustomize
	// build; users always get the check.
	SkipOverlayCheck bool
	// Progress is apply.Applier.Progress.
	Progress func(done, total int)
}

// Render plans, signs, seals and emits. A plan with nothing to do decrypts
// nothing and signs nothing (Plan opens only records changed outside gitca).
func Render(ctx context.Context, t *topology.Topology, st *state.State, opt Options, ids *secrets.Identities, rnd io.Reader) (*Result, error) {
	p, err := Plan(ctx, t, st, opt, ids)
	if err != nil {
		return nil, err
	}
	if !p.Changes() {
		// The plan is the whole truth: nothing to write means nothing to open,
		// sign, seal or build (the property test checks a full apply and emit
		// agree).
		return &Result{Plan: p, Tree: &emit.Tree{Write: map[string][]byte{}}}, nil
	}
	if len(opt.Recipients.ForCA()) == 0 {
		return nil, errors.New("no age recipients: set Config spec.reconciler.age in the topology, or SOPS_AGE_RECIPIENTS")
	}
	ap := &apply.Applier{Plan: p, State: st, Identities: ids, Rand: rnd, Progress: opt.Progress}
	res, err := ap.Apply(ctx)
	if err != nil {
		return nil, err
	}
	tree, err := emit.Emit(p, st, res)
	if err != nil {
		return nil, err
	}
	// What Flux or Argo CD could not build is refused before anything is written.
	if !tree.Empty() && !opt.SkipOverlayCheck {
		// A kustomize build of a large overlay takes minutes and cannot be
		// stopped; a cancelled run stops waiting for it.
		done := make(chan error, 1)
		go func() { done <- emit.CheckOverlays(p.Layout, st, tree) }()
		select {
		case err := <-done:
			if err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &Result{Plan: p, Tree: tree}, nil
}

// Plan is plan.Make after apply.Verify: records changed outside gitca are
// opened first when ids can (all of them with opt.Verify), so that what they
// hide shows in the plan as damage.
func Plan(ctx context.Context, t *topology.Topology, st *state.State, opt Options, ids *secrets.Identities) (*plan.Plan, error) {
	if err := apply.VerifyContext(ctx, st, ids, opt.Verify); err != nil {
		return nil, err
	}
	return plan.Make(t, st, opt.Options)
}
