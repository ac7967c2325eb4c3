package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/secrets"
)

// TestSignalStopsEveryPhase sends SIGTERM to gitca at random points of long
// runs (a render renewing a thousand certificates: reading, signing,
// sealing, the kustomize build, writing; a plan opening every record) and
// checks that each stops within a second, and leaves the state either as it
// was or completely rendered.
func TestSignalStopsEveryPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a thousand certificates, many times")
	}
	const leafs, signals = 1000, 8
	e := newEnv(t)
	e.usePlainBinary(t)
	key, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	ids, err := secrets.ParseIdentities(bytes.NewReader(key))
	require.NoError(t, err)
	e.vars = append(e.vars, "SOPS_AGE_RECIPIENTS="+ids.Recipients()[0])

	topo := t.TempDir()
	for name, content := range smallTopology(t) {
		require.NoError(t, os.WriteFile(filepath.Join(topo, name), []byte(content), 0o644))
	}
	var b strings.Builder
	for i := range leafs {
		fmt.Fprintf(&b, "---\n%s", leafDoc(fmt.Sprintf("leaf-%04d", i)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(topo, "leafs.yaml"), []byte(b.String()), 0o644))
	base := filepath.Join(t.TempDir(), "state")
	e.mustRun(t, "render", "--topology", topo, "--state", base, "--now", rfc3339(t0))

	later := t0.Add(80 * 24 * time.Hour) // every leaf (90 days) is in its renewal window
	for _, c := range []struct {
		name string
		args func(state string) []string
	}{
		{"render renewing every leaf", func(s string) []string {
			return []string{"render", "--topology", topo, "--state", s, "--now", rfc3339(later)}
		}},
		{"plan opening every record", func(s string) []string {
			return []string{"plan", "--verify", "--topology", topo, "--state", s, "--now", rfc3339(t0)}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			e.mustRun(t, c.args(copyTree(t, base))...)
			span := time.Since(start)
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
			stopped := 0
			for i := range signals {
				state := copyTree(t, base)
				before := snapshot(t, state)
				cmd, _, stderr := e.command(context.Background(), c.args(state)...)
				require.NoError(t, cmd.Start())
				time.Sleep(time.Duration(rng.Int64N(int64(span))))
				sent := time.Now()
				_ = cmd.Process.Signal(syscall.SIGTERM)
				err := cmd.Wait()
				took := time.Since(sent)
				assert.Less(t, took, time.Second, "signal %d: stopped %s after SIGTERM\n%s", i, took, stderr)
				assert.NotContains(t, stderr.String(), "goroutine ", "no stack trace")
				if err == nil {
					continue // finished before the signal arrived
				}
				stopped++
				if after := snapshot(t, state); !assert.ObjectsAreEqual(before, after) {
					// Interrupted while renaming: then it is all there.
					e.mustRun(t, "plan", "--detailed-exitcode", "--topology", topo, "--state", state, "--now", rfc3339(later))
				}
			}
			t.Logf("%d of %d signals stopped a run of %s", stopped, signals, span)
		})
	}
}

// copyTree copies a state directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

// snapshot is every file's content in a tree.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, dir)] = string(b)
		return err
	}))
	return out
}
