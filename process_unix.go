//go:build unix

package daemonize

import (
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file holds the small Unix calls the rest of the package makes.

const supported = true

// The signals the library handles besides SIGTERM and SIGINT.
const (
	sigRestart = syscall.SIGUSR1
	sigReopen  = syscall.SIGHUP
)

func notifySignals(c chan<- os.Signal) {
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, sigRestart, sigReopen)
}

func signalProcess(pid int, sig syscall.Signal) { syscall.Kill(pid, sig) }

// processGone reports whether pid has exited and been reaped.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func setUmask(mask fs.FileMode) { unix.Umask(int(mask)) }

// monotonicUSec reads CLOCK_MONOTONIC in microseconds, as systemd does; it
// is the same clock in every process of the machine.
func monotonicUSec() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

func setCloseOnExec(f *os.File) { unix.CloseOnExec(int(f.Fd())) }

// isTerminal reports whether f is a character device other than /dev/null.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && !os.SameFile(st, null)
}

// lockRegion takes a POSIX record lock on n bytes of f at off, waiting for
// it with wait. Record locks belong to a process, so a parent and its child
// exclude each other even though they share the open file, and the kernel
// releases them when the process dies.
func lockRegion(f *os.File, off, n int64, wait bool) (unlock func(), err error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: n}
	cmd := unix.F_SETLK
	if wait {
		cmd = unix.F_SETLKW
	}
	for {
		err = unix.FcntlFlock(f.Fd(), cmd, &lk)
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

// isPID1 reports whether this process is the init of its PID namespace.
func isPID1() bool { return os.Getpid() == 1 }
