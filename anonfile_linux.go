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

// msgCloexec makes the descriptors recvFds receives close-on-exec.
const msgCloexec = unix.MSG_CMSG_CLOEXEC

// socketpair returns a connected pair of stream sockets, close-on-exec.
func socketpair() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
