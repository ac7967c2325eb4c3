package emit

import (
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/state"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// OverlayError is a cluster overlay that kustomize cannot build.
type OverlayError struct {
	Dir string // the overlay directory, e.g. clusters/prod
	Err error
}

func (e *OverlayError) Error() string {
	return fmt.Sprintf("overlay %s does not build with kustomize: %v", e.Dir, e.Err)
}

func (e *OverlayError) Unwrap() error { return e.Err }

// CheckOverlays builds every cluster overlay as it will be after tr is
// written over the state — the state's files, the run's writes, minus its
// deletions — in memory, with kustomize's own builder, so a run whose output
// Flux or Argo CD could not build is refused before anything is written. It
// reads sealed files as they are and decrypts nothing: kustomize passes a
// Secret's sops block through untouched, as Flux's kustomize-controller
// relies on.
//
// A ksops-flavour overlay's generator needs the ksops plugin, which is not
// linked in: its files are built as plain resources instead, which checks the
// same things (every file present and parseable, no two objects with one ID).
//
// Only overlays the run touches are built. When a run changes only the
// contents of resources an overlay already lists (a renewal), just those
// files are built: the rest of the overlay built before and is unchanged, and
// a changed file keeps its object's ID, so it cannot collide with them. This
// keeps a renewal of 1% of ten thousand Secrets from paying for a kustomize
// build of all of them (kustomize's resource map is quadratic in size).
func CheckOverlays(l plan.Layout, st *state.State, tr *Tree) error {
	touched := map[string][]string{} // overlay dir → changed files in it
	structural := map[string]bool{}  // overlays whose layout changes
	note := func(p string, deleted bool) {
		dir := l.OverlayDir(p)
		if dir == "" {
			return
		}
		touched[dir] = append(touched[dir], p)
		if deleted || !isResourceFile(st, p) {
			structural[dir] = true
		}
	}
	for p := range tr.Write {
		note(p, false)
	}
	for _, p := range tr.Delete {
		note(p, true)
	}
	for _, p := range st.Unvouched {
		_, written := tr.Write[p]
		_, deleted := slices.BinarySearch(tr.Delete, p) // Emit sorts Delete
		if !written && !deleted {
			note(p, false)
		}
	}
	if len(touched) == 0 {
		return nil
	}
	var full []string
	for dir := range touched {
		if structural[dir] {
			full = append(full, dir)
			continue
		}
		if err := buildChanged(st, dir, touched[dir], tr); err != nil {
			return &OverlayError{Dir: dir, Err: err}
		}
	}
	if len(full) == 0 {
		return nil
	}
	fs, err := overlayFS(l, st, tr)
	if err != nil {
		return err
	}
	dirs, err := overlayDirs(l, fs)
	if err != nil {
		return err
	}
	sort.Strings(full)
	for _, dir := range dirs {
		if !slices.Contains(full, dir) {
			continue
		}
		if err := buildOverlay(fs, dir); err != nil {
			return &OverlayError{Dir: dir, Err: err}
		}
	}
	return nil
}

// isResourceFile: an existing record rewritten in place. Anything else —
// a new file, a kustomization, a generator — changes the overlay's layout.
func isResourceFile(st *state.State, p string) bool {
	return !plan.IsKustomization(p) && st.Has(p)
}

// buildChanged builds a scratch overlay of just the changed files (and the
// unvouched ones, read from the state).
func buildChanged(st *state.State, dir string, files []string, tr *Tree) error {
	fs := filesys.MakeFsInMemory()
	sort.Strings(files)
	var res []string
	for _, p := range files {
		rel := strings.TrimPrefix(p, dir+"/")
		b, ok := tr.Write[p]
		if !ok {
			var err error
			if b, err = st.ReadFile(p); err != nil {
				return err
			}
		}
		if err := fs.WriteFile("/"+dir+"/"+rel, b); err != nil {
			return err
		}
		res = append(res, rel)
	}
	k, err := yaml.Marshal(kusttypes.Kustomization{TypeMeta: kusttypes.TypeMeta{APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind}, Resources: res})
	if err != nil {
		return err
	}
	if err := fs.WriteFile("/"+dir+"/kustomization.yaml", k); err != nil {
		return err
	}
	return buildOverlay(fs, dir)
}

// overlayFS is the state tree after tr, in memory, rooted at "/".
func overlayFS(l plan.Layout, st *state.State, tr *Tree) (filesys.FileSystem, error) {
	fs := filesys.MakeFsInMemory()
	deleted := map[string]bool{}
	for _, p := range tr.Delete {
		deleted[p] = true
	}
	for _, p := range st.Files {
		if deleted[p] || tr.Write[p] != nil || l.OverlayDir(p) == "" {
			continue
		}
		b, err := st.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := fs.WriteFile("/"+p, b); err != nil {
			return nil, err
		}
	}
	for p, b := range tr.Write {
		if deleted[p] || l.OverlayDir(p) == "" {
			continue
		}
		if err := fs.WriteFile("/"+p, b); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// overlayDirs lists the overlay directories that hold a kustomization.yaml.
func overlayDirs(l plan.Layout, fs filesys.FileSystem) ([]string, error) {
	var dirs []string
	err := fs.Walk("/", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "/")
		if !info.IsDir() && path.Base(rel) == "kustomization.yaml" && l.OverlayDir(rel) == path.Dir(rel) {
			dirs = append(dirs, path.Dir(rel))
		}
		return nil
	})
	sort.Strings(dirs)
	return dirs, err
}

// buildOverlay runs kustomize build on one overlay.
func buildOverlay(fs filesys.FileSystem, dir string) error {
	kpath := "/" + dir + "/kustomization.yaml"
	raw, err := fs.ReadFile(kpath)
	if err != nil {
		return err
	}
	var k kusttypes.Kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		return fmt.Errorf("kustomization.yaml: %w", err)
	}
	if len(k.Generators) > 0 {
		// Swap the KSOPS generators for the files they decrypt; restore the
		// kustomization afterwards so the shared in-memory tree stays as written.
		defer func() { _ = fs.WriteFile(kpath, raw) }()
		var rest []string
		for _, g := range k.Generators {
			files, ok, err := ksopsFiles(fs, "/"+dir, g)
			if err != nil {
				return err
			}
			if !ok {
				rest = append(rest, g)
				continue
			}
			k.Resources = append(k.Resources, files...)
		}
		k.Generators = rest
		b, err := yaml.Marshal(k)
		if err != nil {
			return err
		}
		if err := fs.WriteFile(kpath, b); err != nil {
			return err
		}
	}
	_, err = krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/"+dir)
	return err
}

// ksopsFiles reads a generator file; ok is false when it is not a KSOPS generator.
func ksopsFiles(fs filesys.FileSystem, dir, gen string) ([]string, bool, error) {
	raw, err := fs.ReadFile(path.Join(dir, gen))
	if err != nil {
		return nil, false, fmt.Errorf("generator %s: %w", gen, err)
	}
	var g plan.KSOPSGeneratorObject
	if err := yaml.Unmarshal(raw, &g); err != nil {
		return nil, false, fmt.Errorf("generator %s: %w", gen, err)
	}
	if !g.IsKSOPS() {
		return nil, false, nil
	}
	base := path.Dir(gen)
	out := make([]string, 0, len(g.Files))
	for _, f := range g.Files {
		out = append(out, path.Join(base, f))
	}
	return out, true, nil
}
