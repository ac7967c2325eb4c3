package gitsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWithRetry(t *testing.T) {
	rejected := fmt.Errorf("push: %w", ErrRejected)
	broken := errors.New("disk full")
	tests := []struct {
		name      string
		attempts  int
		results   []error // fn's result per attempt; nil once past the end
		wantCalls int
		wantIs    []error
		wantNil   bool
	}{
		{name: "first try", attempts: 3, results: []error{nil}, wantCalls: 1, wantNil: true},
		{name: "succeeds after two rejections", attempts: 3, results: []error{rejected, rejected, nil}, wantCalls: 3, wantNil: true},
		{name: "other error returns at once", attempts: 5, results: []error{broken}, wantCalls: 1, wantIs: []error{broken}},
		{name: "other error after a rejection", attempts: 5, results: []error{rejected, broken}, wantCalls: 2, wantIs: []error{broken}},
		{name: "auth error is not retried", attempts: 5, results: []error{fmt.Errorf("x: %w", ErrAuth)}, wantCalls: 1, wantIs: []error{ErrAuth}},
		{name: "gives up after attempts", attempts: 3, results: []error{rejected, rejected, rejected, nil}, wantCalls: 3, wantIs: []error{ErrRejected}},
		{name: "zero attempts still tries once", attempts: 0, results: []error{rejected}, wantCalls: 1, wantIs: []error{ErrRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []int
			err := WithRetry(context.Background(), tt.attempts, time.Microsecond, rand.New(rand.NewPCG(1, 2)), func(attempt int) error {
				calls = append(calls, attempt)
				if attempt < len(tt.results) {
					return tt.results[attempt]
				}
				return nil
			})
			require.Len(t, calls, tt.wantCalls)
			for i, a := range calls {
				assert.Equal(t, i, a, "attempts are numbered from 0")
			}
			if tt.wantNil {
				require.NoError(t, err)
				return
			}
			for _, target := range tt.wantIs {
				require.ErrorIs(t, err, target)
			}
		})
	}
}

func TestWithRetryStopsWaitingWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	start := time.Now()
	err := WithRetry(ctx, 10, time.Hour, nil, func(int) error {
		calls++
		cancel()
		return ErrRejected
	})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrRejected, "the last failure is kept for the log")
	assert.Equal(t, 1, calls)
	assert.Less(t, time.Since(start), time.Minute)
}

func TestBackoff(t *testing.T) {
	base := 100 * time.Millisecond
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, maxBackoff},
		{62, maxBackoff},
		{1000, maxBackoff},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempt), func(t *testing.T) {
			assert.Equal(t, tt.want, backoff(tt.attempt, base, nil), "without jitter")
			rnd := rand.New(rand.NewPCG(uint64(tt.attempt), 7))
			for range 200 {
				d := backoff(tt.attempt, base, rnd)
				assert.GreaterOrEqual(t, d, tt.want/2)
				assert.LessOrEqual(t, d, tt.want)
			}
		})
	}
	assert.Zero(t, backoff(3, 0, nil))
}

func TestBackoffJitterSpreads(t *testing.T) {
	// Two reconcilers seeded differently must not wait in lockstep.
	a := rand.New(rand.NewPCG(1, 1))
	b := rand.New(rand.NewPCG(2, 2))
	same := 0
	for attempt := range 5 {
		if backoff(attempt, time.Second, a) == backoff(attempt, time.Second, b) {
			same++
		}
	}
	assert.Less(t, same, 5)
}
