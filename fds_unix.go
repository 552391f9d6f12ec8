//go:build unix

package daemonize

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockRegion takes a POSIX record lock on n bytes of f at off, waiting for
// it. Record locks belong to a process, so a parent and its child exclude
// each other even though they share the open file.
func lockRegion(f *os.File, off, n int64) (unlock func(), err error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: n}
	for {
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return func() {
		lk.Type = unix.F_UNLCK
		unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	}, nil
}
