package topology

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Load reads the topology repo at dir: every *.yaml and *.yml file below it
// (hidden files and directories such as .git skipped, and SOPS-encrypted
// *.sops.yaml files skipped because they are imported keys, not documents),
// each holding any number of documents. It then expands presets, fills
// defaults and validates the whole, and returns either a topology whose
// slices are sorted by name or an ErrorList naming every problem with its
// file:line:col relative to dir.
//
// A directory that declares no object at all (no document in any file) is an
// error naming it, never an empty topology. Every file under dir, not only the
// YAML, is searched for plain private keys, each an error naming the file.
//
// Structural errors (YAML syntax, unknown fields, wrong types, unknown kinds)
// stop Load before the semantic checks, because those would mostly report the
// same typo again as a missing value.
//
// Load is LoadContext without a deadline.
func Load(dir string) (*Topology, error) { return LoadContext(context.Background(), dir) }

// LoadContext is Load that stops soon after ctx is done, also in the middle of
// a large file, returning an error that wraps ctx.Err(). Every file is held to
// MaxFileSize, MaxFileItems, MaxDocuments, MaxAliasNodes and MaxDepth, and
// may not hold a self-referencing alias; each is an error naming the file.
func LoadContext(ctx context.Context, dir string) (*Topology, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files, errs, err := topologyFiles(ctx, root)
	if err != nil {
		return nil, canceled(ctx, dir, err)
	}
	// Reported with the structural errors and again with the semantic ones:
	// a committed key is urgent, whatever else is wrong.
	keyErrs, err := scanPlainKeys(ctx, root)
	if err != nil {
		return nil, canceled(ctx, dir, err)
	}
	t := &Topology{Root: root}
	var configs []*Config
	decoded, err := decodeFiles(ctx, root, files)
	if err != nil {
		return nil, canceled(ctx, dir, err)
	}
	for _, d := range decoded {
		errs = append(errs, d.errs...)
		for _, o := range d.objs {
			switch o := o.(type) {
			case *Config:
				configs = append(configs, o)
			case *CertificateAuthority:
				t.CAs = append(t.CAs, o)
			case *Certificate:
				t.Certificates = append(t.Certificates, o)
			case *KeyPair:
				t.KeyPairs = append(t.KeyPairs, o)
			case *Kubeconfig:
				t.Kubeconfigs = append(t.Kubeconfigs, o)
			case *TrustBundle:
				t.TrustBundles = append(t.TrustBundles, o)
			case *Preset:
				t.Presets = append(t.Presets, o)
			}
		}
	}
	if len(errs) == 0 && len(configs) == 0 && t.empty() {
		// An empty checkout or a wrong //subdir would otherwise plan the
		// deletion of the whole PKI. Deleting everything stays possible by
		// keeping the Config document.
		what := fmt.Sprintf("found %d *.yaml or *.yml files, all empty or comments", len(files))
		if len(files) == 0 {
			what = "found no *.yaml or *.yml file"
		}
		return nil, withKeyErrors(ErrorList{&FieldError{Pos: Position{File: dir}, Msg: "declares no object: a wrong path must not look like an empty PKI",
			Allowed: what + "; a topology declares at least a Config"}}, keyErrs).Err()
	}
	if len(configs) > 0 {
		t.Config = *configs[0]
	}
	for _, c := range configs[min(1, len(configs)):] {
		errs = append(errs, &FieldError{Pos: c.Origin.Position, Field: "kind",
			Msg: fmt.Sprintf("only one Config document is allowed, the first is at %s", posString(configs[0].Origin.Position))})
	}
	if errs.Err() != nil {
		return nil, withKeyErrors(errs, keyErrs).Err()
	}

	t.sort()
	errs = append(errs, t.expandPresets()...)
	errs = append(errs, t.applyPresetRotations()...)
	t.Default()
	t.sort()
	errs = append(errs, t.validate()...)
	if err := withKeyErrors(errs, keyErrs).Err(); err != nil {
		return nil, err
	}
	t.Warnings = t.legacyWarnings()
	return t, nil
}

type decodedFile struct {
	objs []any
	errs ErrorList
}

// decodeFiles decodes files concurrently (a large topology is many files of
// many documents) and returns the results in file order, so the outcome never
// depends on scheduling. It returns as soon as ctx is done: one huge document
// cannot be interrupted inside the YAML parser, so its worker finishes in the
// background, writing only its own slot of a result nobody reads any more.
func decodeFiles(ctx context.Context, root string, files []string) ([]decodedFile, error) {
	out := make([]decodedFile, len(files))
	fileErrs := make([]error, len(files))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for i := range files {
			if ctx.Err() != nil {
				break
			}
			g.Go(func() error {
				data, ferr, err := readTopologyFile(root, files[i])
				switch {
				case err != nil:
					fileErrs[i] = err
				case ferr != nil:
					out[i].errs = ErrorList{ferr}
				default:
					out[i].objs, out[i].errs, fileErrs[i] = decodeFile(ctx, files[i], data)
				}
				return nil
			})
		}
		_ = g.Wait() // each file's error is kept in file order
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range fileErrs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readTopologyFile reads at most MaxFileSize bytes (and one more to tell a file
// that is too large), so a huge file costs no memory.
func readTopologyFile(root, file string) ([]byte, *FieldError, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxFileSize {
		return nil, checkFileText(file, data), nil
	}
	return data, nil, nil
}

// canceled wraps ctx's error, which callers test with errors.Is, naming what was interrupted.
func canceled(ctx context.Context, dir string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("loading topology %s: %w", dir, ctx.Err())
	}
	return err
}

// topologyFiles lists the YAML files below root as slash-separated paths
// relative to it, sorted, so load order never depends on the file system.
// A symlinked file is read only if it resolves inside root: a topology must
// not make gitca read, and echo in errors, files from elsewhere on the machine.
func topologyFiles(ctx context.Context, root string) ([]string, ErrorList, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, nil, err
	}
	var files []string
	var errs ErrorList
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if p != root && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			// WalkDir does not follow a link to a directory: the objects below
			// it would silently be missing, and the plan would delete them.
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				target, _ := os.Readlink(p)
				errs = append(errs, &FieldError{Pos: Position{File: rel}, Msg: fmt.Sprintf("symlink to a directory (%q)", target),
					Allowed: "a real directory: gitca does not follow links to directories"})
				return nil
			}
		}
		if strings.HasSuffix(name, ".sops.yaml") || strings.HasSuffix(name, ".sops.yml") {
			return nil
		}
		if ext := filepath.Ext(name); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				errs = append(errs, &FieldError{Pos: Position{File: rel, Line: 1, Col: 1}, Msg: "broken symlink"})
				return nil
			}
			if r, err := filepath.Rel(realRoot, target); err != nil || !filepath.IsLocal(r) {
				errs = append(errs, &FieldError{Pos: Position{File: rel, Line: 1, Col: 1}, Msg: "symlink points outside the topology repo"})
				return nil
			}
			if fi, err := os.Stat(target); err != nil || !fi.Mode().IsRegular() {
				errs = append(errs, &FieldError{Pos: Position{File: rel}, Msg: "symlink to something that is not a regular file",
					Allowed: "a regular file or a symlink to one inside the topology repo"})
				return nil
			}
		} else if !d.Type().IsRegular() {
			// A FIFO or device would block or never end when read.
			errs = append(errs, &FieldError{Pos: Position{File: rel}, Msg: "not a regular file", Allowed: "a regular file or a symlink to one inside the topology repo"})
			return nil
		}
		files = append(files, rel)
		return nil
	})
	slices.Sort(files)
	return files, errs, err
}

// withKeyErrors adds the plain keys found on lines no other error is about
// already (an age secret key pasted as a recipient is reported as that).
func withKeyErrors(errs, keyErrs ErrorList) ErrorList {
	type line struct {
		file string
		line int
	}
	seen := map[line]bool{}
	for _, e := range errs {
		seen[line{e.Pos.File, e.Pos.Line}] = true
	}
	for _, e := range keyErrs {
		if !seen[line{e.Pos.File, e.Pos.Line}] {
			errs = append(errs, e)
		}
	}
	return errs
}

func (t *Topology) empty() bool {
	return len(t.CAs)+len(t.Certificates)+len(t.KeyPairs)+len(t.Kubeconfigs)+len(t.TrustBundles)+len(t.Presets) == 0
}

// expandPresets merges what each Preset generates into t. Unknown preset types
// are left to validate, which lists the known ones.
func (t *Topology) expandPresets() ErrorList {
	var errs ErrorList
	for _, p := range t.Presets {
		expand, ok := presetExpanders[p.Spec.Type]
		if !ok {
			continue
		}
		x, err := expand(p)
		if err != nil {
			errs = append(errs, presetErrors(p, err)...)
		}
		if x == nil {
			continue
		}
		// Expanders are expected to set these; filling them here keeps a
		// forgetful expander from producing errors that point nowhere.
		origin := func(o *Origin, kind string, apiVersion, k *string) {
			if o.File == "" {
				*o = p.Origin
			}
			if o.Preset == "" {
				o.Preset = p.Metadata.Name
			}
			*apiVersion = cmp.Or(*apiVersion, APIVersion)
			*k = cmp.Or(*k, kind)
		}
		for _, o := range x.CAs {
			origin(&o.Origin, KindCertificateAuthority, &o.APIVersion, &o.Kind)
		}
		for _, o := range x.Certificates {
			origin(&o.Origin, KindCertificate, &o.APIVersion, &o.Kind)
		}
		for _, o := range x.KeyPairs {
			origin(&o.Origin, KindKeyPair, &o.APIVersion, &o.Kind)
		}
		for _, o := range x.Kubeconfigs {
			origin(&o.Origin, KindKubeconfig, &o.APIVersion, &o.Kind)
		}
		for _, o := range x.TrustBundles {
			origin(&o.Origin, KindTrustBundle, &o.APIVersion, &o.Kind)
		}
		t.CAs = append(t.CAs, x.CAs...)
		t.Certificates = append(t.Certificates, x.Certificates...)
		t.KeyPairs = append(t.KeyPairs, x.KeyPairs...)
		t.Kubeconfigs = append(t.Kubeconfigs, x.Kubeconfigs...)
		t.TrustBundles = append(t.TrustBundles, x.TrustBundles...)
	}
	return errs
}

func presetErrors(p *Preset, err error) ErrorList {
	switch e := err.(type) {
	case ErrorList:
		return e
	case *FieldError:
		return ErrorList{e}
	}
	return ErrorList{errAt(p.Origin, "spec", err.Error(), "")}
}

// sort orders every slice by name; duplicates (an error) by where they were declared.
func (t *Topology) sort() {
	sortByName(t.CAs, func(o *CertificateAuthority) (string, Origin) { return o.Metadata.Name, o.Origin })
	sortByName(t.Certificates, func(o *Certificate) (string, Origin) { return o.Metadata.Name, o.Origin })
	sortByName(t.KeyPairs, func(o *KeyPair) (string, Origin) { return o.Metadata.Name, o.Origin })
	sortByName(t.Kubeconfigs, func(o *Kubeconfig) (string, Origin) { return o.Metadata.Name, o.Origin })
	sortByName(t.TrustBundles, func(o *TrustBundle) (string, Origin) { return o.Metadata.Name, o.Origin })
	sortByName(t.Presets, func(o *Preset) (string, Origin) { return o.Metadata.Name, o.Origin })
}

func sortByName[T any](items []*T, key func(*T) (string, Origin)) {
	slices.SortStableFunc(items, func(a, b *T) int {
		an, ao := key(a)
		bn, bo := key(b)
		return cmp.Or(cmp.Compare(an, bn), comparePos(ao.Position, bo.Position))
	})
}

func comparePos(a, b Position) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
}

func posString(p Position) string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }
