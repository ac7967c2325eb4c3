package reconcile

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gitca-dev/gitca/gitsync"
)

func TestErrorReason(t *testing.T) {
	boom := errors.New("boom")
	for want, err := range map[string]error{
		"":                  nil,
		ReasonAuth:          fmt.Errorf("reconcile x: %w", stageError{ReasonStateFetch, fmt.Errorf("state: %w", gitsync.ErrAuth)}),
		ReasonPushRejected:  fmt.Errorf("reconcile x: %w (the remote is unchanged)", fmt.Errorf("gave up: %w", gitsync.ErrRejected)),
		ReasonStateFetch:    fmt.Errorf("reconcile x: %w", stageError{ReasonStateFetch, boom}),
		ReasonTopology:      stageError{ReasonTopology, boom},
		ReasonPush:          pushError(boom),
		ReasonPlaintextKey:  fmt.Errorf("wrapped: %w", stageError{ReasonPlaintextKey, boom}),
		ReasonOther:         context.Canceled,
		ReasonTopologyFetch: stageError{ReasonTopologyFetch, boom},
	} {
		assert.Equal(t, want, ErrorReason(err), "%v", err)
	}
	assert.ErrorIs(t, pushError(gitsync.ErrRejected), gitsync.ErrRejected, "a rejected push stays retryable")
	assert.ErrorIs(t, stageError{ReasonRender, boom}, boom)
}
