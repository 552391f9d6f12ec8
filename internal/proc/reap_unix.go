//go:build unix

package proc

import (
	"errors"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended, as far as this process can tell.
type Exit struct {
	Known  bool            // the process was our child and we reaped it, so Status holds
	Status unix.WaitStatus // its wait status, if Known
}

// String says how the process ended: "exit status 1", "killed by
// terminated", or "unknown" when another process reaped it.
func (e Exit) String() string {
	switch {
	case !e.Known:
		return "unknown"
	case e.Status.Signaled():
		return "killed by " + e.Status.Signal().String()
	}
	return "exit status " + strconv.Itoa(e.Status.ExitStatus())
}

// Reap reports, without waiting, whether pid has exited. If pid is a child
// of this process, Reap reaps it and the Exit says how it ended. Otherwise
// its parent reaps it, and pid counts as exited only once it is gone from
// the process table, not while it is a zombie: a zombie may still come back
// to this process (when it is a subreaper and the parent exits first), and
// must then be reaped here.
func Reap(pid int) (exited bool, e Exit) {
	var ws unix.WaitStatus
	got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	if got == pid {
		return true, Exit{Known: true, Status: ws}
	}
	return errors.Is(err, unix.ECHILD) && errors.Is(unix.Kill(pid, 0), syscall.ESRCH), Exit{}
}
