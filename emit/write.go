package emit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/state"
)

// stageBatch is how many files make it worth staging on another core.
const stageBatch = 64

// Write is WriteContext without cancellation.
func Write(dir string, tr *Tree) error { return WriteContext(context.Background(), dir, tr) }

// WriteContext applies a tree to a state directory, all or nothing as far as
// the file system allows: every file is first written in full to a staging
// directory, and only then renamed into place, so a failure before the
// renames (a full disk, a bad path, a cancelled ctx) leaves the directory as
// it was and a reader never sees half a file.
//
// The state tree may come from a repository someone else wrote, so every
// file is created, renamed and removed through an os.Root of dir: nothing
// outside dir is ever touched. os.Root would still follow a symbolic link
// that stays inside dir, so every path is first checked for one on its way
// (state.CheckNoLinks), and a link anywhere is an error naming it and its
// target, before anything is written.
//
// Files are staged in parallel, each worker in its own directory: creating a
// file holds its directory's lock, and on some file systems (ext4 without a
// journal skips recently freed inodes one by one) a create costs a millisecond
// of kernel time, which one directory would serialise.
func WriteContext(ctx context.Context, dir string, tr *Tree) error {
	paths := make([]string, 0, len(tr.Write))
	for p := range tr.Write {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(paths) == 0 && len(tr.Delete) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range append(slices.Clone(paths), tr.Delete...) {
		if err := checkPath(root, p); err != nil {
			return err
		}
	}
	if len(paths) > 0 {
		if err := writeAll(ctx, root, paths, tr.Write); err != nil {
			return err
		}
	}
	for _, p := range tr.Delete {
		if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removeEmptyParents(root, path.Dir(p))
	}
	return nil
}

// checkPath refuses a path that is not a clean relative path inside the
// tree, or that goes through a symbolic link.
func checkPath(root *os.Root, p string) error {
	if p == "" || path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)) || strings.HasPrefix(p, "/") {
		return fmt.Errorf("refusing to write %q: not a clean relative path inside the state tree", p)
	}
	return state.CheckNoLinks(root, p)
}

func writeAll(ctx context.Context, root *os.Root, paths []string, content map[string][]byte) (err error) {
	removeStaleStages(root)
	// Directories this run creates are removed again if it fails.
	var created []string
	defer func() {
		if err != nil {
			for _, d := range created {
				root.RemoveAll(d)
			}
		}
	}()
	seen := map[string]bool{}
	for _, p := range paths {
		d := path.Dir(p)
		if seen[d] {
			continue
		}
		seen[d] = true
		top, err := firstMissing(root, d)
		if err != nil {
			return err
		}
		if top == "" {
			continue
		}
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
		created = append(created, top)
	}

	stage, err := makeStage(root)
	if err != nil {
		return err
	}
	defer root.RemoveAll(stage)
	staged, err := stageFiles(ctx, root, stage, paths, content)
	if err != nil {
		return err
	}
	// Every file is staged; only renames remain. They are not cancelled: a
	// tree half renamed is what staging exists to avoid.
	for i, p := range paths {
		if err := root.Rename(staged[i], p); err != nil {
			return err
		}
	}
	return nil
}

// makeStage creates a new staging directory at the tree's root.
func makeStage(root *os.Root) (string, error) {
	for {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		name := plan.StageDirPrefix + hex.EncodeToString(b[:])
		err := root.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
}

// firstMissing is the outermost directory on the way from the root to d
// that does not exist yet ("" when d exists), so that a failed run removes
// exactly what it created. A file in the way is an error naming it.
func firstMissing(root *os.Root, d string) (string, error) {
	if d == "." {
		return "", nil
	}
	cur := ""
	for _, part := range strings.Split(d, "/") {
		cur = path.Join(cur, part)
		fi, err := root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return cur, nil
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is a file, where the state tree needs a directory", cur)
		}
	}
	return "", nil
}

// stageFiles writes each file under stage and returns where each one went.
func stageFiles(ctx context.Context, root *os.Root, stage string, paths []string, content map[string][]byte) ([]string, error) {
	workers := min(runtime.GOMAXPROCS(0), (len(paths)+stageBatch-1)/stageBatch)
	staged := make([]string, len(paths))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wdir := path.Join(stage, strconv.Itoa(w))
			if errs[w] = root.Mkdir(wdir, 0o700); errs[w] != nil {
				return
			}
			for i := w; i < len(paths); i += workers {
				if errs[w] = ctx.Err(); errs[w] != nil {
					return
				}
				staged[i] = path.Join(wdir, strconv.Itoa(i))
				if errs[w] = writeNew(root, staged[i], content[paths[i]]); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return staged, errors.Join(errs...)
}

// writeNew creates a file with mode 0644 whatever the umask: the state tree
// is a git checkout, and git records only whether a file is executable.
// O_EXCL: os.Root never follows a link when creating.
func writeNew(root *os.Root, name string, b []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeStaleStages removes staging directories a killed run left behind
// (real directories only: a link by that name is the state's to explain,
// and state reading refuses it).
func removeStaleStages(root *os.Root) {
	entries, _ := fs.ReadDir(root.FS(), ".")
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), plan.StageDirPrefix) {
			root.RemoveAll(e.Name())
		}
	}
}

func removeEmptyParents(root *os.Root, d string) {
	for d != "." && d != "/" && d != "" {
		if err := root.Remove(d); err != nil {
			return
		}
		d = path.Dir(d)
	}
}
