package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"

	"github.com/gitca-dev/gitca/secrets"
)

// A state tree comes from a repository that a pull request may have written.
// It is read and written only through an os.Root, so that nothing outside it
// is ever reached, and no symbolic link is followed at all: os.Root would
// follow a link that stays inside the tree, which would still let one record
// stand in for another, or a directory of one overlay be another's.

// MaxIndexSize bounds the state index, which grows with the records: about
// 1.1 KB per record, so 64 MiB is some fifty thousand records.
const MaxIndexSize = 64 << 20

// SymlinkError is a symbolic link in a state tree: gitca neither reads nor
// writes through one.
type SymlinkError struct {
	Path   string // slash path relative to the tree root
	Target string // what the link points to, as stored
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link to %q: a state tree holds no links, and gitca neither reads nor writes through one (replace it with the directory or file itself)", e.Path, e.Target)
}

// NotRegularError is a state tree entry that is neither a file nor a
// directory (a FIFO would block a reader forever, a device is no state).
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is not a regular file (%s): a state tree holds only files and directories", e.Path, e.Mode.Type())
}

// linkError describes the entry at rel of root as a SymlinkError.
func linkError(root *os.Root, rel string) error {
	target, err := root.Readlink(rel)
	if err != nil {
		target = "?"
	}
	return &SymlinkError{Path: rel, Target: target}
}

// CheckNoLinks checks that no component of rel (a slash path below root),
// the last one included, is a symbolic link, and that each one that exists
// but the last is a directory. Missing components are fine: the caller is
// about to create them.
func CheckNoLinks(root *os.Root, rel string) error {
	cur := ""
	for _, part := range splitPath(rel) {
		cur = path.Join(cur, part)
		fi, err := root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return linkError(root, cur)
		case cur != rel && !fi.IsDir():
			return fmt.Errorf("%s is a file, where the state tree needs a directory", cur)
		}
	}
	return nil
}

func splitPath(rel string) []string {
	var out []string
	for rel != "" && rel != "." {
		dir, file := path.Split(rel)
		out = append([]string{file}, out...)
		rel = path.Clean(dir)
		if rel == "/" {
			break
		}
	}
	return out
}

// treeReader opens the files of a tree below its root. Each directory is
// opened once, as a Root of its own, so that opening a file costs one
// openat rather than one per path component.
type treeReader struct {
	root *os.Root
	mu   sync.Mutex
	dirs map[string]*os.Root
}

func newTreeReader(root *os.Root) *treeReader {
	return &treeReader{root: root, dirs: map[string]*os.Root{}}
}

func (t *treeReader) dir(d string) (*os.Root, error) {
	if d == "" {
		return t.root, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.dirs[d]; r != nil {
		return r, nil
	}
	if err := CheckNoLinks(t.root, d); err != nil {
		return nil, err
	}
	r, err := t.root.OpenRoot(d)
	if err != nil {
		return nil, err
	}
	t.dirs[d] = r
	return r, nil
}

// Close closes the directories opened; the tree's root stays open.
func (t *treeReader) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.dirs {
		r.Close()
	}
	t.dirs = map[string]*os.Root{}
}

// open opens one file of the tree for reading without following a link at
// its last component (CheckNoLinks refused links at the others, and os.Root
// keeps one swapped in meanwhile from leading outside) and without blocking
// on a FIFO; anything but a regular file is refused.
func (t *treeReader) open(rel string) (*os.File, fs.FileInfo, error) {
	d, base := path.Split(rel)
	r, err := t.dir(path.Clean("./" + d))
	if err != nil {
		return nil, nil, err
	}
	f, err := r.OpenFile(base, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, linkError(t.root, rel)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &NotRegularError{Path: rel, Mode: fi.Mode()}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// readFile reads one file of the tree (open), refusing one over limit bytes
// before reading it.
func (t *treeReader) readFile(rel string, limit int64) ([]byte, error) {
	f, fi, err := t.open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, &secrets.LimitError{What: "bytes", Got: int(min(fi.Size(), 1<<62)), Limit: int(limit)}
	}
	// Read one byte past the size: a file that grew since Stat shows, and
	// one past the limit is refused.
	b := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, b)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return b[:n], nil
	case err != nil:
		return nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(f, limit+1-int64(n)))
	if err != nil {
		return nil, err
	}
	b = append(b, rest...)
	if int64(len(b)) > limit {
		return nil, &secrets.LimitError{What: "bytes", Limit: int(limit)}
	}
	return b, nil
}

// walkTree calls fn with the slash path of every regular file below root,
// skipping the directories skip names, and fails on the first symbolic link
// or special file, naming it. Sizes come from the directory entries: files
// over MaxFileSize (MaxIndexSize for the index) fail before they are read.
// With skipLinks, links and special files are passed over instead (what a
// plaintext scan of a whole checkout wants: a link's target inside the tree
// is scanned as itself), and sizeLimit may be nil.
func walkTree(ctx context.Context, root *os.Root, skip func(name string) bool, skipLinks bool, sizeLimit func(rel string) int64, fn func(rel string) error) error {
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch t := d.Type(); {
		case p == ".":
			return nil
		case skipLinks && !t.IsRegular() && !d.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			return linkError(root, p)
		case skip != nil && skip(d.Name()):
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case d.IsDir():
			return nil
		case !t.IsRegular():
			return &NotRegularError{Path: p, Mode: t}
		}
		if sizeLimit == nil {
			return fn(p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if limit := sizeLimit(p); fi.Size() > limit {
			return fmt.Errorf("%s: %w", p, &secrets.LimitError{What: "bytes", Got: int(min(fi.Size(), 1<<62)), Limit: int(limit)})
		}
		return fn(p)
	})
}
