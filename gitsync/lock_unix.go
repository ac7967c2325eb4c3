//go:build unix

package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often a waiting Open retries the lock. flock cannot be
// interrupted by a context, so we poll with LOCK_NB instead of blocking.
const lockPoll = 50 * time.Millisecond

// fileLock is an flock(2) lock: the kernel drops it when the process dies, so
// a crashed gitca never leaves a stale lock behind.
type fileLock struct{ f *os.File }

func lockFile(ctx context.Context, path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gitsync: open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("gitsync: lock %s: %w", path, err)
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("gitsync: cache clone is locked by another gitca process (%s): %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// unlock releases the lock but leaves the file: removing it would let a
// waiter lock the old inode while a newcomer locks a fresh one.
func (l *fileLock) unlock() error {
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
