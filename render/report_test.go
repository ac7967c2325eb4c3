package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/topology"
)

// golden (the -update flag is declared in emit_test.go) compares got with testdata/golden/plan/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", "plan", name)
	if *update || os.Getenv("UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./render -run %s -update", t.Name())
	assert.Equal(t, string(want), string(got))
}

// TestPlanOutputGolden plans a state three weeks after it was rendered, with a
// SAN edited and an object removed, and checks the three outputs for people
// and machines. Everything in it derives from t0, so it is reproducible.
func TestPlanOutputGolden(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	e.edit("leafs.yaml", "www.example.com]", "www.example.com, api.example.com]")
	e.edit("leafs.yaml", "kind: KeyPair\nmetadata:\n  name: sa\n", "kind: KeyPair\nmetadata:\n  name: sa2\n")
	tp, err := topology.Load(e.topo)
	require.NoError(t, err)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	p, err := plan.Make(tp, st, plan.Options{Now: t0.Add(21 * 24 * time.Hour), Recipients: plan.ResolveRecipients(tp, []string{e.recipient})})
	require.NoError(t, err)

	var text, md, js bytes.Buffer
	require.NoError(t, p.WriteText(&text, true))
	require.NoError(t, p.WriteMarkdown(&md))
	require.NoError(t, p.WriteJSON(&js))
	golden(t, "plan.txt", text.Bytes())
	golden(t, "plan.md", md.Bytes())
	golden(t, "plan.json", js.Bytes())
	assert.NotContains(t, js.String(), e.recipient, "plans name no recipients")
	assert.False(t, strings.Contains(js.String(), "PRIVATE KEY"))
}

func TestPlanOutputNoChanges(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	res := e.run(t0.Add(time.Hour), nil)
	var md bytes.Buffer
	require.NoError(t, res.Plan.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "No changes. The state matches the topology.")
	assert.Equal(t, "8 keep; no file changes", res.Plan.Summary())
}
