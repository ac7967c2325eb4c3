package emit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gitca-dev/gitca/plan"
)

// stageBatch is how many files make it worth staging on another core.
const stageBatch = 64

// Write applies a tree to a state directory, all or nothing as far as the
// file system allows: every file is first written in full to a staging
// directory, and only then renamed into place, so a failure before the renames
// (a full disk, a bad path) leaves the directory as it was and a reader never
// sees half a file.
//
// Files are staged in parallel, each worker in its own directory: creating a
// file holds its directory's lock, and on some file systems (ext4 without a
// journal skips recently freed inodes one by one) a create costs a millisecond
// of kernel time, which one directory would serialise.
func Write(dir string, tr *Tree) error {
	paths := make([]string, 0, len(tr.Write))
	for p := range tr.Write {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(paths) > 0 {
		if err := writeAll(dir, paths, tr.Write); err != nil {
			return err
		}
	}
	for _, p := range tr.Delete {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil && !os.IsNotExist(err) {
			return err
		}
		removeEmptyParents(dir, filepath.Dir(filepath.Join(dir, filepath.FromSlash(p))))
	}
	return nil
}

func writeAll(dir string, paths []string, content map[string][]byte) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	removeStaleStages(dir)
	// Directories this run creates are removed again if it fails.
	var created []string
	defer func() {
		if err != nil {
			for _, d := range created {
				os.RemoveAll(d)
			}
		}
	}()
	seen := map[string]bool{}
	for _, p := range paths {
		d := filepath.Dir(filepath.Join(dir, filepath.FromSlash(p)))
		if seen[d] {
			continue
		}
		seen[d] = true
		top, err := firstMissing(dir, d)
		if err != nil {
			return err
		}
		if top == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		created = append(created, top)
	}

	stage, err := os.MkdirTemp(dir, plan.StageDirPrefix+"*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	staged, err := stageFiles(stage, paths, content)
	if err != nil {
		return err
	}
	// Every file is staged; only renames remain.
	for i, p := range paths {
		if err := os.Rename(staged[i], filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return err
		}
	}
	return nil
}

// firstMissing is the outermost directory on the way from root to d that does
// not exist yet ("" when d exists), so that a failed run removes exactly what
// it created. A file in the way is an error naming it.
func firstMissing(root, d string) (string, error) {
	rel, err := filepath.Rel(root, d)
	if err != nil || rel == "." {
		return "", err
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Stat(cur)
		if errors.Is(err, os.ErrNotExist) {
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
func stageFiles(stage string, paths []string, content map[string][]byte) ([]string, error) {
	workers := min(runtime.GOMAXPROCS(0), (len(paths)+stageBatch-1)/stageBatch)
	staged := make([]string, len(paths))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wdir := filepath.Join(stage, strconv.Itoa(w))
			if errs[w] = os.Mkdir(wdir, 0o700); errs[w] != nil {
				return
			}
			for i := w; i < len(paths); i += workers {
				staged[i] = filepath.Join(wdir, strconv.Itoa(i))
				if errs[w] = writeNew(staged[i], content[paths[i]]); errs[w] != nil {
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
func writeNew(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
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

// removeStaleStages removes staging directories a killed run left behind.
func removeStaleStages(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), plan.StageDirPrefix) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

func removeEmptyParents(root, d string) {
	for d != root && strings.HasPrefix(d, root) {
		if err := os.Remove(d); err != nil {
			return
		}
		d = filepath.Dir(d)
	}
}
