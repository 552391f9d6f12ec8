// Package proc holds the process plumbing shared by the integration tests,
// cmd/restartbench and cmd/daemonize: waiting for a condition, reading
// /proc, listing and reaping children, picking a free port, building a
// program with the go tool and installing it by rename, as a deploy does.
//
// Reading /proc and becoming a child subreaper work on Linux only; elsewhere
// those functions return [ErrNotSupported] (or report false), so that the
// package builds everywhere. Reaping needs a Unix system.
package proc

import (
	"context"
	"errors"
	"time"
)

// Interval is how often [Poll] calls its condition: often enough that a
// test does not wait long after the condition holds, seldom enough that
// many tests polling /proc at once do not load the machine.
const Interval = 2 * time.Millisecond

// ErrTimeout is returned by [PollUntil] when the deadline passes before the
// condition holds.
var ErrTimeout = errors.New("proc: condition not met before the deadline")

// Poll calls cond every [Interval] until it returns true or limit has
// passed, and reports whether it returned true. cond is called at least
// once, even with a limit of 0.
func Poll(limit time.Duration, cond func() bool) bool {
	return PollUntil(context.Background(), time.Now().Add(limit), Interval, cond) == nil
}

// PollUntil calls cond every interval until it returns true, and then
// returns nil. It returns [ErrTimeout] if deadline passes first, and
// ctx.Err() if ctx ends first. cond is called at least once.
func PollUntil(ctx context.Context, deadline time.Time, interval time.Duration, cond func() bool) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
