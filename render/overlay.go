package render

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
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
func CheckOverlays(t *topology.Topology, st *secrets.State, tr *Tree) error {
	fs, err := overlayFS(t, st, tr)
	if err != nil {
		return err
	}
	dirs, err := overlayDirs(t, fs)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if err := buildOverlay(fs, dir); err != nil {
			return &OverlayError{Dir: dir, Err: err}
		}
	}
	return nil
}

// overlayFS is the state tree after tr, in memory, rooted at "/".
func overlayFS(t *topology.Topology, st *secrets.State, tr *Tree) (filesys.FileSystem, error) {
	fs := filesys.MakeFsInMemory()
	deleted := map[string]bool{}
	for _, p := range tr.Delete {
		deleted[p] = true
	}
	for _, p := range st.Files {
		if deleted[p] || tr.Write[p] != nil || overlayDirOf(t, p) == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(st.Root, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		if err := fs.WriteFile("/"+p, b); err != nil {
			return nil, err
		}
	}
	for p, b := range tr.Write {
		if deleted[p] || overlayDirOf(t, p) == "" {
			continue
		}
		if err := fs.WriteFile("/"+p, b); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// overlayDirs lists the overlay directories that hold a kustomization.yaml.
func overlayDirs(t *topology.Topology, fs filesys.FileSystem) ([]string, error) {
	var dirs []string
	err := fs.Walk("/", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "/")
		if !info.IsDir() && path.Base(rel) == "kustomization.yaml" && overlayDirOf(t, rel) == path.Dir(rel) {
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
	var g ksopsGeneratorObject
	if err := yaml.Unmarshal(raw, &g); err != nil {
		return nil, false, fmt.Errorf("generator %s: %w", gen, err)
	}
	if g.APIVersion != "viaduct.ai/v1" || g.Kind != "ksops" {
		return nil, false, nil
	}
	base := path.Dir(gen)
	out := make([]string, 0, len(g.Files))
	for _, f := range g.Files {
		out = append(out, path.Join(base, f))
	}
	return out, true, nil
}
