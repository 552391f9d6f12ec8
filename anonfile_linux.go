package daemonize

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// anonFile creates a file in memory: it needs no writable directory and
// vanishes with the last process holding it.
func anonFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("daemonize: %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}
