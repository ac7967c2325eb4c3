package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGraphCommand: the command prints what the graph package's goldens
// pin, for each format and a cluster, and fails with exit 1 and a reason.
func TestGraphCommand(t *testing.T) {
	golden := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "graph", "testdata", "golden", name))
		require.NoError(t, err)
		return string(b)
	}
	for _, c := range []struct {
		args   []string
		golden string
	}{
		{[]string{"--topology", "../../examples/kcp"}, "kcp.mmd"},
		{[]string{"--topology", "../../examples/kubeadm", "-o", "dot"}, "kubeadm.dot"},
		{[]string{"--topology", "../../graph/testdata/clusters", "--cluster", "east", "--output", "mermaid"}, "clusters-east.mmd"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"graph"}, c.args...)...)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, golden(c.golden), stdout, c.args)
		assert.Empty(t, stderr)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, `required flag(s) "topology" not set`},
		{[]string{"--topology", "../../examples/kcp", "-o", "png"}, `--output "png" is not supported`},
		{[]string{"--topology", "../../examples/kcp", "--cluster", "nope"}, `cluster "nope" is not in the topology (clusters: kcp-prod)`},
		{[]string{"--topology", t.TempDir() + "/missing"}, "topology in "},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"graph"}, c.args...)...)
		assert.Equal(t, 1, code, c.args)
		assert.Empty(t, stdout, c.args)
		assert.Contains(t, stderr, c.want, c.args)
	}
}
