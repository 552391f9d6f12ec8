package daemonize

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// newHandoff creates the hand-off file in memory: it needs no writable
// directory and vanishes with the last process holding it.
func newHandoff() (*handoff, error) {
	fd, err := unix.MemfdCreate("daemonize-handoff", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return &handoff{f: os.NewFile(uintptr(fd), "daemonize-handoff")}, nil
}
