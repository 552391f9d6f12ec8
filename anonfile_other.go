//go:build unix && !linux

package daemonize

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// anonFile creates an unlinked temporary file, so that it vanishes with the
// last process holding it.
func anonFile(name string) (*os.File, error) {
	f, err := os.CreateTemp("", name+"-*")
	if err != nil {
		return nil, fmt.Errorf("daemonize: %s: %w", name, err)
	}
	os.Remove(f.Name())
	return f, nil
}

// msgCloexec is 0 where MSG_CMSG_CLOEXEC may be missing: recvFds marks
// each descriptor itself.
const msgCloexec = 0

// socketpair returns a connected pair of stream sockets, close-on-exec.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(pair[0])
		unix.CloseOnExec(pair[1])
	}
	return pair, err
}
