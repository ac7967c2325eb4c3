package render

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

// Result is one render: the plan, and the tree of changes it produced.
type Result struct {
	Plan *Plan
	Tree *Tree
}

// Render plans, signs, seals and emits, without touching the state directory:
// the caller writes Result.Tree (Write) or commits it. A plan with nothing to do
// decrypts nothing and signs nothing (CheckAndPlan opens only records changed
// outside gitca).
func Render(ctx context.Context, t *topology.Topology, st *secrets.State, opt Options, ids *secrets.Identities, rnd io.Reader) (*Result, error) {
	p, err := CheckAndPlan(t, st, opt, ids)
	if err != nil {
		return nil, err
	}
	if len(opt.Recipients.ForCA()) == 0 && p.Changes() {
		return nil, errors.New("no age recipients: set Config spec.reconciler.age in the topology, or SOPS_AGE_RECIPIENTS")
	}
	ap := &Applier{Topology: t, Plan: p, State: st, Identities: ids, Rand: rnd}
	out, err := ap.Apply(ctx)
	if err != nil {
		return nil, err
	}
	tree, err := Emit(t, p, st, out)
	if err != nil {
		return nil, err
	}
	if tree.Empty() {
		return &Result{Plan: p, Tree: tree}, nil
	}
	// What Flux or Argo CD could not build is refused before anything is written.
	if !opt.skipOverlayCheck {
		if err := CheckOverlays(t, st, tree); err != nil {
			return nil, err
		}
	}
	if err := addIndex(st, p, out, tree); err != nil {
		return nil, err
	}
	return &Result{Plan: p, Tree: tree}, nil
}

// CheckAndPlan is NewPlan after VerifyState: records changed outside gitca
// are opened first when ids can (all of them with opt.Verify), so that what
// they hide shows in the plan as damage.
func CheckAndPlan(t *topology.Topology, st *secrets.State, opt Options, ids *secrets.Identities) (*Plan, error) {
	if err := VerifyState(st, ids, opt.Verify); err != nil {
		return nil, err
	}
	return NewPlan(t, st, opt)
}

// addIndex writes the state index (secrets.IndexPath) for the tree after this
// run, so the next plan hashes records instead of parsing them. Records this
// run sealed come from out, as sealed, and are not parsed again.
func addIndex(st *secrets.State, p *Plan, out *Output, tree *Tree) error {
	var records []*secrets.Object
	add := func(path string) {
		if rec, ok := out.Records[path]; ok {
			records = append(records, rec)
		} else {
			records = append(records, st.At(path))
		}
	}
	for _, a := range p.Actions {
		if a.Action == ActionDelete {
			continue
		}
		add(a.Path)
		if a.Desired.Copy != nil {
			add(a.Desired.Copy.Path)
		}
	}
	idx, err := secrets.BuildIndex(records)
	if err != nil {
		return err
	}
	if o, err := os.ReadFile(filepath.Join(st.Root, secrets.IndexPath)); err != nil || !bytes.Equal(o, idx) {
		tree.Write[secrets.IndexPath] = idx
	}
	return nil
}
