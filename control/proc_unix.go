//go:build unix

package control

import (
	"errors"
	"syscall"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

// alive reports whether pid is a running process (not a zombie, where the
// system tells).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !proc.Zombie(pid)
}

// executable returns the path of the program pid runs, where the system
// tells.
func executable(pid int) (string, bool) {
	exe, err := proc.Executable(pid)
	return exe, err == nil
}
