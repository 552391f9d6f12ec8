package daemonize

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unread returns how many bytes wait unread in c's socket: a request that
// has arrived, which the server has not read yet.
func unread(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}
