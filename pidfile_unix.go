//go:build unix

package daemonize

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openNoFollow opens or creates path for locking, refusing a symbolic link.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
	if errors.Is(err, unix.ELOOP) {
		return nil, errors.New(path + " is a symbolic link; refusing to follow it")
	}
	return f, err
}

// tryLock takes an exclusive flock on f without waiting. It reports false
// when another open file holds the lock.
func tryLock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		}
		return false, err
	}
}
