package gitsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// maxBackoff bounds a single wait: several reconcilers racing on one state
// repository settle within seconds, and a longer sleep only delays the run.
const maxBackoff = 30 * time.Second

// WithRetry calls fn (attempt counts from 0) until it succeeds, returns an
// error that does not wrap ErrRejected, or attempts run out. Between
// rejected attempts it waits base·2^attempt, capped at maxBackoff, with
// "equal jitter" from rnd (half fixed, half random) so racing reconcilers
// spread out; a nil rnd means no jitter. ctx cancels the wait.
func WithRetry(ctx context.Context, attempts int, base time.Duration, rnd *rand.Rand, fn func(attempt int) error) error {
	attempts = max(attempts, 1)
	var err error
	for attempt := range attempts {
		if err = fn(attempt); err == nil || !errors.Is(err, ErrRejected) {
			return err
		}
		if attempt == attempts-1 {
			break
		}
		t := time.NewTimer(backoff(attempt, base, rnd))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
	return fmt.Errorf("gitsync: gave up after %d attempts: %w", attempts, err)
}

// backoff is the wait after the given failed attempt.
func backoff(attempt int, base time.Duration, rnd *rand.Rand) time.Duration {
	if base <= 0 {
		return 0
	}
	d := maxBackoff
	// Shift only while it cannot overflow or pass the cap.
	if attempt < 62 && base <= maxBackoff>>attempt {
		d = base << attempt
	}
	if rnd == nil {
		return d
	}
	half := d / 2
	return half + time.Duration(rnd.Int64N(int64(d-half)+1))
}
