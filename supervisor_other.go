//go:build !linux

package daemonize

import (
	"fmt"
	"os"
)

// canSupervise says why Options.Supervise cannot work here: the supervisor
// needs a reaper of its descendants (Linux's PR_SET_CHILD_SUBREAPER).
func canSupervise() error {
	return fmt.Errorf("daemonize: Options.Supervise needs Linux, where the supervisor can reap the generations (PR_SET_CHILD_SUBREAPER): %w", ErrNotSupported)
}

func supervise(Options, string, *os.File) int { return 1 }
