// Package emit turns a plan and the records Apply sealed into the changes of
// the state tree, checks that Flux or Argo CD can build what it would write,
// and writes it all or nothing.
package emit

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/state"
)

// Tree is the complete set of changes a run makes to the state tree.
type Tree struct {
	// Write holds every file whose bytes change, by slash path.
	Write map[string][]byte
	// Delete lists files that gitca manages and no longer produces, sorted.
	Delete []string
}

// Empty reports whether the tree changes nothing.
func (tr *Tree) Empty() bool { return len(tr.Write) == 0 && len(tr.Delete) == 0 }

// Paths lists every changed path, sorted.
func (tr *Tree) Paths() []string {
	out := make([]string, 0, len(tr.Write)+len(tr.Delete))
	for p := range tr.Write {
		out = append(out, p)
	}
	out = append(out, tr.Delete...)
	sort.Strings(out)
	return out
}

// Emit builds the tree a run writes: the records Apply sealed, the files
// derived from the topology and the certificates the run ends with (trust
// bundles, RBAC, kustomizations, GitOps objects, .sops.yaml), and the state
// index; it keeps only what differs from the state. Bundles are recomputed
// from the final certificates, so a CA that changes updates every bundle
// holding it in the same commit.
//
// Every path it writes or deletes must be in the plan: a reviewer approved
// the plan, so a file the plan did not name is refused, not written.
func Emit(p *plan.Plan, st *state.State, res *apply.Result) (*Tree, error) {
	want, err := p.WantedFiles(res.CA)
	if err != nil {
		return nil, err
	}
	for path, rec := range res.Records {
		want[path] = rec.Raw
	}
	// The index is rebuilt only when the plan says it changes: building it
	// is the one cost of a render that grows with every record.
	if p.File(plan.IndexPath) != nil {
		idx, err := index(p, st, res)
		if err != nil {
			return nil, err
		}
		if idx != nil {
			want[plan.IndexPath] = idx
		}
	} else if st.Has(plan.IndexPath) {
		want[plan.IndexPath] = nil
	}

	tree := &Tree{Write: map[string][]byte{}}
	for path, b := range want {
		if b == nil {
			continue // a record the run keeps as it is
		}
		if old, err := st.ReadFile(path); err == nil && bytes.Equal(old, b) {
			continue
		}
		tree.Write[path] = b
	}
	// What is not wanted goes: files in gitca's directories, and the records
	// the plan deletes or moves (also outside them, e.g. under the custom path
	// of a cluster that left the topology) — unless another object now writes
	// the same path.
	for _, f := range st.Files {
		if _, ok := want[f]; ok {
			continue
		}
		if pf := p.File(f); p.Layout.Managed(f) || (pf != nil && pf.Action == plan.FileDelete) {
			tree.Delete = append(tree.Delete, f)
		}
	}
	sort.Strings(tree.Delete)
	if err := checkPlanned(p, tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// checkPlanned refuses a tree that writes or deletes a path the plan did not
// name with that action: the plan is the whole truth of what a run does.
func checkPlanned(p *plan.Plan, tree *Tree) error {
	var bad []string
	for _, path := range tree.Paths() {
		f := p.File(path)
		_, written := tree.Write[path]
		switch {
		case f == nil:
			bad = append(bad, path+" (not in the plan)")
		case written && f.Action == plan.FileDelete:
			bad = append(bad, path+" (the plan deletes it)")
		case !written && f.Action != plan.FileDelete:
			bad = append(bad, path+" (the plan writes it)")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("internal error: the render differs from its plan, refusing to write: %s", strings.Join(bad, ", "))
	}
	return nil
}

// index is the state index after the run, nil when there is nothing to index
// and no index to empty. Records this run sealed come from res, as sealed,
// and are not parsed again.
func index(p *plan.Plan, st *state.State, res *apply.Result) ([]byte, error) {
	var records []*state.Object
	add := func(path string) {
		if rec, ok := res.Records[path]; ok {
			records = append(records, rec)
		} else if o := st.At(path); o != nil {
			records = append(records, o)
		}
	}
	for _, a := range p.Objects {
		if a.Action == plan.ActionDelete {
			continue
		}
		add(a.Path)
		if a.Desired.Copy != nil {
			add(a.Desired.Copy.Path)
		}
	}
	if len(records) == 0 && !st.Has(plan.IndexPath) {
		return nil, nil
	}
	return state.BuildIndex(records)
}
