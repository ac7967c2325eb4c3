package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogFormat: with --log-format json the error of any command is a JSON
// record on stderr; an unknown format is refused before the command runs.
func TestLogFormat(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, "plan", "--topology", t.TempDir()+"/missing", "--state", t.TempDir(), "--log-format", "json")
	require.Equal(t, 1, r.code)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Len(t, lines, 1, r.stderr)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec), r.stderr)
	assert.Equal(t, "ERROR", rec["level"])
	assert.Equal(t, "gitca failed", rec["msg"])
	assert.Contains(t, rec["error"], "missing")

	r = e.run(t, "plan", "--topology", t.TempDir()+"/missing", "--state", t.TempDir())
	assert.True(t, strings.HasPrefix(r.stderr, "Error: "), "text stays text: %s", r.stderr)

	r = e.run(t, "status", "--state", t.TempDir(), "--log-format", "xml")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `--log-format "xml" is not supported (allowed: text, json)`)
}
