//go:build unix

package daemonize

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sockets and files a generation passes on travel to the new process in
// bulk: before it starts the new process, the old one sends their
// descriptors over a socket pair (SCM_RIGHTS), a few hundred to a message,
// and tableflip passes the pair's other end. The new process reads them all
// with a few system calls. Passed one by one through tableflip, each cost
// the new process a name to decode and five system calls before it could
// say it was ready: 40 ms with a thousand listeners.

// maxFdsPerMessage stays under Linux's limit of 253 descriptors a message.
const maxFdsPerMessage = 250

// sendFds returns the receiving end of a socket pair that holds duplicates
// of fds, in order, until it is read or closed.
func sendFds(fds []int) (*os.File, error) {
	pair, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("daemonize: socket pair for the hand-off: %w", err)
	}
	defer unix.Close(pair[0])
	// Room for every message: macOS and the BSDs start with 8 KiB.
	// Linux caps it at net.core.wmem_max and takes that as a hint.
	unix.SetsockoptInt(pair[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	for rest := fds; len(rest) > 0; {
		n := min(len(rest), maxFdsPerMessage)
		// Nobody reads until the new process starts: a full buffer is
		// an error here, not a wait.
		if err := unix.Sendmsg(pair[0], []byte{0}, unix.UnixRights(rest[:n]...), nil, unix.MSG_DONTWAIT); err != nil {
			unix.Close(pair[1])
			switch {
			case errors.Is(err, unix.ETOOMANYREFS):
				err = fmt.Errorf("%w: too many descriptors in flight for this user; raise the open files limit (ulimit -n) above twice the sockets and files passed", err)
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS):
				err = fmt.Errorf("%w: the socket pair cannot hold so many descriptors; pass fewer sockets and files", err)
			}
			return nil, fmt.Errorf("daemonize: passing %d descriptors to the new process: %w", len(fds), err)
		}
		rest = rest[n:]
	}
	return os.NewFile(uintptr(pair[1]), "daemonize-files"), nil
}

// recvFds reads n descriptors that sendFds sent, close-on-exec.
func recvFds(f *os.File, n int) ([]int, error) {
	var fds []int
	fail := func(err error) ([]int, error) {
		closeFds(fds...)
		return nil, fmt.Errorf("daemonize: descriptors from the old process: %w", err)
	}
	if msgCloexec == 0 {
		// No MSG_CMSG_CLOEXEC: no process may start until each is marked.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
	}
	oob := make([]byte, unix.CmsgSpace(maxFdsPerMessage*4))
	for len(fds) < n {
		got, _, flags, err := recvRights(f, oob, 0)
		fds = append(fds, got...)
		switch {
		case err != nil:
			return fail(err)
		case flags&unix.MSG_CTRUNC != 0:
			return fail(errors.New("message truncated"))
		case len(got) == 0:
			return fail(fmt.Errorf("got %d of %d", len(fds), n))
		}
	}
	if len(fds) != n {
		return fail(fmt.Errorf("got %d, want %d", len(fds), n))
	}
	return fds, nil
}

// discardFds closes f, the receiving end sendFds returned, and the
// descriptors still waiting in it, nobody having read them; f may be nil.
func discardFds(f *os.File) {
	if f == nil {
		return
	}
	defer f.Close()
	if msgCloexec == 0 {
		// As in recvFds: no process may start while one is open.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
	}
	oob := make([]byte, unix.CmsgSpace(maxFdsPerMessage*4))
	for {
		fds, n, _, err := recvRights(f, oob, unix.MSG_DONTWAIT)
		closeFds(fds...)
		if err != nil || n == 0 && len(fds) == 0 {
			return
		}
	}
}

// recvRights reads one message of sendFds from f and returns the
// descriptors it carried, close-on-exec, the bytes read and the message's
// flags. The caller holds syscall.ForkLock where msgCloexec is 0.
func recvRights(f *os.File, oob []byte, flags int) (fds []int, n, msgFlags int, err error) {
	var b [1]byte
	var oobn int
	for {
		n, oobn, msgFlags, _, err = unix.Recvmsg(int(f.Fd()), b[:], oob, flags|msgCloexec)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, 0, 0, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if rights, err := unix.ParseUnixRights(&m); err == nil {
			if msgCloexec == 0 {
				for _, fd := range rights {
					unix.CloseOnExec(fd)
				}
			}
			fds = append(fds, rights...)
		}
	}
	return fds, n, msgFlags, err
}

// checkFdLimit says what to do when the open files limit leaves too little
// room for n inherited sockets and files: each takes a descriptor, and a
// listener a second one once made.
func checkFdLimit(n int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	if need := uint64(2*n + 64); uint64(lim.Cur) < need {
		return fmt.Errorf("daemonize: the open files limit is %d, too low for the %d sockets and files to inherit: raise it to %d at least (ulimit -n, or LimitNOFILE= for systemd)", lim.Cur, n, need)
	}
	return nil
}

// closeFds closes descriptors this package owns.
func closeFds(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// dupFd duplicates fd, close-on-exec.
func dupFd(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
}

// dupConn duplicates the descriptor of c, a socket or a file, close-on-exec,
// without changing its blocking mode (File would).
func dupConn(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) { fd, err = dupFd(int(s)) })
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}

// fileFromFd returns a duplicate of fd as an *os.File named name.
func fileFromFd(fd int, name string) (*os.File, error) {
	d, err := dupFd(fd)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(d), name), nil
}
