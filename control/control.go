//go:build unix

package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// pollEvery is how often the status file is read while waiting.
const pollEvery = 10 * time.Millisecond

var (
	// ErrNotRunning is the error of [Find] when no process runs under the
	// pid file; it is an [*NotRunningError].
	ErrNotRunning = errors.New("control: not running")

	// ErrNotDaemon is the error of [Find] when the pid file names a process
	// that is not a daemonize program, or not this one's.
	ErrNotDaemon = errors.New("control: not a daemonize program")
)

// NotRunningError says that nothing runs under a pid file.
type NotRunningError struct {
	PIDFile string
	PID     int // the pid the file names, if any: it has exited (a stale pid file)
}

func (e *NotRunningError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("not running: no pid file at %s", e.PIDFile)
	}
	return fmt.Sprintf("not running: process %d named by %s has exited (stale pid file)", e.PID, e.PIDFile)
}

// Is reports whether target is [ErrNotRunning].
func (e *NotRunningError) Is(target error) bool { return target == ErrNotRunning }

// Process is a running daemonize program found through its pid file.
type Process struct {
	PID    int               // the process the pid file names
	Status *daemonize.Status // its status file
}

// Find reads the pid file and checks that its pid is a live daemonize
// program. The error is a [*NotRunningError] when nothing runs there, and
// wraps [ErrNotDaemon] when the pid is some other program's.
func Find(pidFile string) (*Process, error) {
	pid, err := daemonize.ReadPIDFile(pidFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &NotRunningError{PIDFile: pidFile}
	case err != nil:
		return nil, fmt.Errorf("pid file %s: %w", pidFile, err)
	}
	if !alive(pid) {
		return nil, &NotRunningError{PIDFile: pidFile, PID: pid}
	}
	st, err := daemonize.ReadStatus(pidFile)
	if err != nil {
		return nil, fmt.Errorf("process %d named by %s is not a daemonize program, or an older one: %v: %w", pid, pidFile, err, ErrNotDaemon)
	}
	if st.PID != pid && st.Supervisor != pid {
		return nil, fmt.Errorf("process %d named by %s is not the one its status file names (%d); is another program writing that pid file? %w", pid, pidFile, st.PID, ErrNotDaemon)
	}
	if exe, ok := executable(pid); ok && filepath.Base(exe) != filepath.Base(st.Executable) {
		return nil, fmt.Errorf("process %d runs %s, not %s: the pid was reused by another program; refusing to signal it: %w", pid, exe, st.Executable, ErrNotDaemon)
	}
	return &Process{PID: pid, Status: st}, nil
}

// Restarted is the outcome of a successful [Restart].
type Restarted struct {
	OldPID, NewPID int // the process that served before, and the one that serves now
	Generation     int // the new process's generation
	Took           time.Duration
}

// RestartFailedError is the error of a [Restart] that the daemon reports as
// failed: the old process keeps serving.
type RestartFailedError struct {
	Reason string                   // why, as the daemon says
	Stderr string                   // the new process's last lines of standard error, where known
	Status *daemonize.RestartStatus // the daemon's record of the attempt, if it made one
	Took   time.Duration
}

func (e *RestartFailedError) Error() string {
	return fmt.Sprintf("failed after %s: %s", e.Took.Round(time.Millisecond), e.Reason)
}

// TimeoutError is the error of a [Restart] or [Stop] whose context ended
// before the outcome was known. It wraps the context's error.
type TimeoutError struct {
	What  string          // what was awaited
	State daemonize.State // the daemon's state at that moment, if known
	Err   error
}

func (e *TimeoutError) Error() string {
	s := "timed out waiting for " + e.What
	if e.State != "" {
		s += fmt.Sprintf(" (state: %s)", e.State)
	}
	return s
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// Restart asks the daemon under pidFile to restart (SIGUSR1) and waits for
// the outcome: a [*Restarted] once the new process is ready and the old one
// has exited; a [*RestartFailedError] as soon as the daemon knows the
// restart failed; a [*TimeoutError] when ctx ends first.
//
// The outcome is the one of the first restart attempt that answers this
// request: one that started after it was sent, or one that was running and
// started the same executable (see [daemonize.RestartStatus.Covers]).
func Restart(ctx context.Context, pidFile string) (*Restarted, error) {
	p, err := Find(pidFile)
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	if err := syscall.Kill(p.PID, syscall.SIGUSR1); err != nil {
		return nil, fmt.Errorf("signal process %d: %w", p.PID, err)
	}
	var (
		last     *daemonize.Status
		answered *daemonize.RestartStatus // the attempt that answered the request, once known
	)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		// Whether the old process lives is asked before the status is
		// read: once it is dead it writes nothing more, so the status read
		// after says its last word.
		oldAlive := alive(p.PID)
		st, err := daemonize.ReadStatus(pidFile)
		switch {
		case err != nil && !oldAlive && last != nil:
			return nil, &RestartFailedError{Reason: "the daemon stopped during the restart", Took: time.Since(sent)}
		case err == nil:
			last = st
			if r := st.LastRestart; r != nil && !r.Covers.Before(sent) && (answered == nil || r.Attempt >= answered.Attempt) {
				if !r.OK {
					return nil, &RestartFailedError{Reason: r.Error, Stderr: r.Stderr, Status: r, Took: time.Since(sent)}
				}
				answered = r
			}
			if answered != nil && st.Previous == nil && !alive(answered.OldPID) {
				return &Restarted{OldPID: answered.OldPID, NewPID: answered.NewPID, Generation: st.Generation, Took: time.Since(sent)}, nil
			}
			if !oldAlive && st.PID == p.PID {
				return nil, &RestartFailedError{Reason: fmt.Sprintf("process %d exited during the restart", p.PID), Took: time.Since(sent)}
			}
		}
		select {
		case <-ctx.Done():
			te := &TimeoutError{What: fmt.Sprintf("the new process to be ready and process %d to exit", p.PID), Err: ctx.Err()}
			if last != nil {
				te.State = last.State
			}
			return nil, te
		case <-tick.C:
		}
	}
}

// Stopped is the outcome of [Stop].
type Stopped struct {
	PID     int  // the process that was stopped, 0 if none ran
	Running bool // whether one ran
	Took    time.Duration
}

// Stop asks the daemon under pidFile to stop (SIGTERM) and waits until it
// has exited and removed its pid file, together with a previous generation
// that still drains. If nothing runs there, it returns a [*Stopped] that
// says so. When ctx ends first the error is a [*TimeoutError].
func Stop(ctx context.Context, pidFile string) (*Stopped, error) {
	p, err := Find(pidFile)
	if errors.Is(err, ErrNotRunning) {
		return &Stopped{}, nil
	}
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("signal process %d: %w", p.PID, err)
	}
	pids := []int{p.PID}
	if p.Status.Previous != nil {
		pids = append(pids, p.Status.Previous.PID) // still draining: part of the service
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		// A restart that was handing over when the signal left makes a
		// new process serve: the stop is for it too.
		if st, err := daemonize.ReadStatus(pidFile); err == nil && st.Previous != nil && st.Previous.PID == p.PID && !contains(pids, st.PID) {
			pids = append(pids, st.PID)
			syscall.Kill(st.PID, syscall.SIGTERM)
		}
		if !anyAlive(pids) {
			if got, err := daemonize.ReadPIDFile(pidFile); err != nil || !contains(pids, got) {
				return &Stopped{PID: p.PID, Running: true, Took: time.Since(start)}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, &TimeoutError{What: fmt.Sprintf("process %d to exit", p.PID), State: daemonize.StateStopping, Err: ctx.Err()}
		case <-tick.C:
		}
	}
}

func contains(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if alive(p) {
			return true
		}
	}
	return false
}
