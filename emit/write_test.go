package emit

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
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
	assert.Contains(t, err.Error(), filepath.Join(dir, "clusters")+" is a file, where the state tree needs a directory")
	assert.Equal(t, before, listTree(t, dir))
}

func TestReadStateSkipsStaging(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, plan.StageDirPrefix+"9/0"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, plan.StageDirPrefix+"9/0/1"), []byte("x"), 0o600))
	st, err := plan.ReadState(dir)
	require.NoError(t, err)
	assert.Empty(t, st.Files)
}
