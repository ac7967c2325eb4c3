package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTopologyReferenceIsFresh fails when a type of package topology changed
// and docs/topology-reference.md was not regenerated.
func TestTopologyReferenceIsFresh(t *testing.T) {
	got, err := Generate(filepath.Join("..", "..", "topology"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("..", "..", "docs", "topology-reference.md"))
	require.NoError(t, err, "run: go generate ./hack/topologyref")
	assert.Equal(t, string(want), string(got), "docs/topology-reference.md is stale: run go generate ./hack/topologyref")
}

func TestReferenceCoversEveryKind(t *testing.T) {
	got, err := Generate(filepath.Join("..", "..", "topology"))
	require.NoError(t, err)
	for _, kind := range documents {
		assert.Contains(t, string(got), "\n## "+kind+"\n", kind)
	}
	for _, s := range []string{"## CASpec", "`renewBefore`", "`ECDSA-P256`", "## KCPPreset", "`dnsNames`"} {
		assert.Contains(t, string(got), s)
	}
}
