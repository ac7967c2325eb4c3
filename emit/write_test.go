package emit

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/state"
)

// listTree is every file and directory under dir with its content and mode.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		require.NoError(t, err)
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			require.NoError(t, err)
			out[rel] = "link to " + target
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[rel] = fi.Mode().String() + " " + string(b)
		return nil
	}))
	return out
}

func TestWrite(t *testing.T) {
	for _, n := range []int{1, stageBatch*3 + 1} { // one stager, and one per core
		t.Run(fmt.Sprint(n, " files"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "clusters/old/pki"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "clusters/old/pki/gone.yaml"), []byte("old"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "keep.yaml"), []byte("keep"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "over.yaml"), []byte("before"), 0o644))
			// A killed run's leftovers are cleared.
			require.NoError(t, os.MkdirAll(filepath.Join(dir, plan.StageDirPrefix+"123/0"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, plan.StageDirPrefix+"123/0/1"), []byte("x"), 0o600))

			tr := &Tree{Write: map[string][]byte{"over.yaml": []byte("after")}, Delete: []string{"clusters/old/pki/gone.yaml"}}
			want := map[string]string{
				"./": "dir", "clusters/": "dir", "keep.yaml": "-rw-r--r-- keep", "over.yaml": "-rw-r--r-- after",
			}
			for i := range n {
				p := fmt.Sprintf("clusters/c%d/pki/secret-%d.yaml", i%3, i)
				tr.Write[p] = []byte(p)
				want[p] = "-rw-r--r-- " + p
				want[path.Dir(path.Dir(p))+"/"], want[path.Dir(p)+"/"] = "dir", "dir"
			}
			old := syscall.Umask(0o077) // modes must not depend on the umask
			err := Write(dir, tr)
			syscall.Umask(old)
			require.NoError(t, err)
			// Nothing else: no staging directory, no emptied directory.
			assert.Equal(t, want, listTree(t, dir))
		})
	}
}

// TestWriteFailureLeavesTreeAsItWas: a file where a directory must go fails
// the write before anything is renamed, and the directories it made are gone.
func TestWriteFailureLeavesTreeAsItWas(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "clusters"), []byte("a file"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "over.yaml"), []byte("before"), 0o644))
	before := listTree(t, dir)
	tr := &Tree{Write: map[string][]byte{
		"a/new/dir/x.yaml":    []byte("x"),
		"over.yaml":           []byte("after"),
		"clusters/c/pki.yaml": []byte("y"),
	}}
	err := Write(dir, tr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "clusters is a file, where the state tree needs a directory")
	assert.Equal(t, before, listTree(t, dir))
}

// TestWriteCancelled: a cancelled write stops while staging, and removes the
// directories it made.
func TestWriteCancelled(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "over.yaml"), []byte("before"), 0o644))
	before := listTree(t, dir)
	tr := &Tree{Write: map[string][]byte{"a/new/dir/x.yaml": []byte("x"), "over.yaml": []byte("after")}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, WriteContext(ctx, dir, tr), context.Canceled)
	assert.Equal(t, before, listTree(t, dir))
}

// TestWriteNeverFollowsALink: a symbolic link anywhere on the way to a file
// the run writes or deletes (a directory of the layout, the file itself,
// pointing out of the tree or within it), or a path that is not inside the
// tree, fails the write before anything is written, naming the link and its
// target; nothing outside the tree is touched.
func TestWriteNeverFollowsALink(t *testing.T) {
	for _, c := range []struct {
		name, link, target string // link is made in the tree; target "OUT" is the outside directory
		write, del         string
		want               string
	}{
		{"overlay namespace dir to outside", "clusters/prod/pki", "OUT", "clusters/prod/pki/secret-web.yaml", "", `clusters/prod/pki is a symbolic link to "OUT"`},
		{"ca dir to outside", "ca", "OUT", "ca/root.yaml", "", `ca is a symbolic link to "OUT"`},
		{".gitca to outside", ".gitca", "OUT", ".gitca/index.json", "", `.gitca is a symbolic link to "OUT"`},
		{"the file itself", "clusters/prod/pki/secret-web.yaml", "OUT/victim", "clusters/prod/pki/secret-web.yaml", "", `clusters/prod/pki/secret-web.yaml is a symbolic link to "OUT/victim"`},
		{"a link inside the tree", "clusters/prod/pki", "../../ca", "clusters/prod/pki/secret-web.yaml", "", `clusters/prod/pki is a symbolic link to "../../ca"`},
		{"delete through a link", "clusters/old", "OUT", "", "clusters/old/victim", `clusters/old is a symbolic link to "OUT"`},
		{"traversal", "", "", "../escape.yaml", "", `refusing to write "../escape.yaml"`},
		{"absolute", "", "", "/tmp/escape.yaml", "", `refusing to write "/tmp/escape.yaml"`},
		{"unclean", "", "", "clusters/./x.yaml", "", `refusing to write "clusters/./x.yaml"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			dir, out := filepath.Join(base, "state"), filepath.Join(base, "outside")
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "clusters/prod"), 0o755))
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "ca"), 0o755))
			require.NoError(t, os.MkdirAll(out, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(out, "victim"), []byte("outside"), 0o644))
			target := strings.ReplaceAll(c.target, "OUT", out)
			want := strings.ReplaceAll(c.want, "OUT", out)
			if c.link != "" {
				l := filepath.Join(dir, filepath.FromSlash(c.link))
				require.NoError(t, os.RemoveAll(l))
				require.NoError(t, os.MkdirAll(filepath.Dir(l), 0o755))
				require.NoError(t, os.Symlink(target, l))
			}
			before, outBefore := listTree(t, dir), listTree(t, out)
			tr := &Tree{Write: map[string][]byte{"clusters/prod/other.yaml": []byte("x")}}
			if c.write != "" {
				tr.Write[c.write] = []byte("written")
			}
			if c.del != "" {
				tr.Delete = []string{c.del}
			}
			err := Write(dir, tr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
			assert.Equal(t, before, listTree(t, dir), "nothing written in the tree")
			assert.Equal(t, outBefore, listTree(t, out), "nothing written or removed outside")
			if c.link != "" {
				var se *state.SymlinkError
				require.ErrorAs(t, err, &se)
			}
		})
	}
}

func TestReadStateSkipsStaging(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, plan.StageDirPrefix+"9/0"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, plan.StageDirPrefix+"9/0/1"), []byte("x"), 0o600))
	st, err := plan.ReadState(dir)
	require.NoError(t, err)
	assert.Empty(t, st.Files)
}
