package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

// TestProgress: signing reports each changed object once, up to the total,
// and the line is only drawn on a terminal.
func TestProgress(t *testing.T) {
	topo, err := topology.Load(filepath.Join("..", "..", "examples", "kubeadm"))
	require.NoError(t, err)
	_, recipient, err := secrets.GenerateAgeKey(renderedAt)
	require.NoError(t, err)
	st, err := plan.ReadState(t.TempDir())
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		calls [][2]int
	)
	opt := render.Options{Options: plan.Options{Now: renderedAt, Recipients: plan.ResolveRecipients(topo, []string{recipient})},
		Progress: func(done, total int) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, [2]int{done, total})
		}}
	res, err := render.Render(t.Context(), topo, st, opt, nil, rand.Reader)
	require.NoError(t, err)
	n := len(res.Plan.Objects) // a first render creates every object
	require.Len(t, calls, n)
	for i, c := range calls {
		assert.Equal(t, [2]int{i + 1, n}, c, "call %d", i)
	}

	var b bytes.Buffer
	draw := progressWriter(&b)
	draw(1, 2)
	draw(2, 2)
	assert.Equal(t, "\rsigning and sealing: 1/2\rsigning and sealing: 2/2\n", b.String())

	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer f.Close()
	assert.Nil(t, progressLine(f), "a file is not a terminal: no progress line")
	assert.Nil(t, progressLine(&b), "nor is a buffer")
}
