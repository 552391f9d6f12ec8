//go:build unix

package daemonize

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// activatedSockets takes the sockets systemd passed to this process
// (LISTEN_FDS), as entries to claim, each with its descriptor, and removes
// the variables, which a restarted child must not see: it gets the sockets
// through the hand-off like any other.
func activatedSockets(supervised bool) ([]entry, error) {
	names, err := parseListenEnv(os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"), os.Getpid(), supervised)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	if err != nil || len(names) == 0 {
		return nil, err
	}
	var entries []entry
	fail := func(err error) ([]entry, error) {
		for _, e := range entries {
			closeFds(e.fd)
		}
		return nil, err
	}
	for i, name := range names {
		fd := 3 + i
		unix.CloseOnExec(fd)
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return fail(fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s) is not a socket: %w", fd, name, err))
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		e := entry{Name: fmt.Sprintf("%s%d", activatedPrefix, fd), Addr: name, fd: -1}
		var a net.Addr
		if typ == unix.SOCK_DGRAM {
			pc, err := net.FilePacketConn(f)
			if err != nil {
				return fail(fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s): %w", fd, name, err))
			}
			e.Kind, a = kindPacket, pc.LocalAddr()
			pc.Close()
		} else {
			ln, err := net.FileListener(f)
			if err != nil {
				return fail(fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s) is not a listening socket: %w", fd, name, err))
			}
			e.Kind, a = kindListener, ln.Addr()
			if ul, ok := ln.(*net.UnixListener); ok {
				ul.SetUnlinkOnClose(false)
			}
			ln.Close()
		}
		e.Network, e.Bound = a.Network(), a.String()
		if e.fd, err = dupFd(fd); err != nil {
			return fail(fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s): %w", fd, name, err))
		}
		entries = append(entries, e)
	}
	return entries, nil
}
