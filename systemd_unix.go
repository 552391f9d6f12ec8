//go:build unix

package daemonize

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// activatedSockets takes the sockets systemd passed to this process
// (LISTEN_FDS), as entries to claim and their files by entry name, and
// removes the variables, which a restarted child must not see: it gets the
// sockets through the hand-off like any other.
func activatedSockets(supervised bool) ([]entry, map[string]*os.File, error) {
	names, err := parseListenEnv(os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"), os.Getpid(), supervised)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	if err != nil || len(names) == 0 {
		return nil, nil, err
	}
	var entries []entry
	files := make(map[string]*os.File)
	for i, name := range names {
		fd := 3 + i
		unix.CloseOnExec(fd)
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return nil, nil, fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s) is not a socket: %w", fd, name, err)
		}
		f := os.NewFile(uintptr(fd), name)
		e := entry{Name: fmt.Sprintf("sd.%d", fd), Addr: name}
		var a net.Addr
		if typ == unix.SOCK_DGRAM {
			pc, err := net.FilePacketConn(f)
			if err != nil {
				return nil, nil, fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s): %w", fd, name, err)
			}
			e.Kind, a = kindPacket, pc.LocalAddr()
			pc.Close()
		} else {
			ln, err := net.FileListener(f)
			if err != nil {
				return nil, nil, fmt.Errorf("daemonize: LISTEN_FDS: descriptor %d (%s) is not a listening socket: %w", fd, name, err)
			}
			e.Kind, a = kindListener, ln.Addr()
			if ul, ok := ln.(*net.UnixListener); ok {
				ul.SetUnlinkOnClose(false)
			}
			ln.Close()
		}
		e.Network, e.Bound = a.Network(), a.String()
		entries = append(entries, e)
		files[e.Name] = f
	}
	return entries, files, nil
}
