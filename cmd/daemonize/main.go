//go:build unix

// Command daemonize restarts, stops and inspects a daemon built on
// github.com/daemonize-dev/daemonize, and tells a deploy script how it went:
//
//	daemonize restart -pidfile /run/app/app.pid [-timeout 3m]
//	daemonize stop    -pidfile /run/app/app.pid [-timeout 2m]
//	daemonize status  -pidfile /run/app/app.pid [-json]
//
// restart sends SIGUSR1 and waits for the outcome in the daemon's status
// file: exit 0 once the new process is ready and the old one has exited, 1
// as soon as the daemon knows the restart failed (with its reason), 2 on
// timeout. stop sends SIGTERM and waits until the process has exited and
// removed its pid file: exit 0 if it stopped (or was not running), 1 if not.
// status exits as LSB init scripts do: 0 running, 1 dead with a pid file
// left, 3 not running, 4 unknown (the pid file or the process is not a
// daemonize program's).
//
// Before signalling, the command checks that the pid names a daemonize
// program: its status file must name the same pid, and on Linux the
// process's executable must have the file name the status file records, so
// that a pid reused by another program after a crash is never signalled.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/internal/proc"
)

// Exit codes of status, as LSB init scripts use them.
const (
	statusRunning = 0
	statusDead    = 1
	statusStopped = 3
	statusUnknown = 4
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: daemonize restart|stop|status -pidfile FILE [flags]")
		return 2
	}
	fset := flag.NewFlagSet("daemonize "+args[0], flag.ContinueOnError)
	fset.SetOutput(stderr)
	pidFile := fset.String("pidfile", "", "the daemon's pid `file` (required)")
	var timeout *time.Duration
	var asJSON *bool
	switch args[0] {
	case "restart":
		timeout = fset.Duration("timeout", 3*time.Minute, "how long to wait for the new process and the old one's exit")
	case "stop":
		timeout = fset.Duration("timeout", 2*time.Minute, "how long to wait for the process to exit")
	case "status":
		asJSON = fset.Bool("json", false, "print the status file's content as JSON")
	default:
		fmt.Fprintf(stderr, "daemonize: unknown command %q; want restart, stop or status\n", args[0])
		return 2
	}
	if err := fset.Parse(args[1:]); err != nil {
		return 2
	}
	if *pidFile == "" || fset.NArg() > 0 {
		fmt.Fprintf(stderr, "daemonize %s: want -pidfile FILE and no other arguments\n", args[0])
		return 2
	}
	if timeout != nil && *timeout <= 0 {
		fmt.Fprintf(stderr, "daemonize %s: -timeout %s: want a positive duration\n", args[0], *timeout)
		return 2
	}
	switch args[0] {
	case "restart":
		return restart(*pidFile, *timeout, stdout, stderr)
	case "stop":
		return stop(*pidFile, *timeout, stdout, stderr)
	}
	return status(*pidFile, *asJSON, stdout, stderr)
}

// daemon is a running daemonize program found through its pid file.
type daemon struct {
	pid    int
	status *daemonize.Status
}

// errNotRunning says that nothing runs under the pid file; its code is the
// status exit code that goes with it.
type errNotRunning struct {
	code int
	msg  string
}

func (e *errNotRunning) Error() string { return e.msg }

// find reads the pid file and checks that its pid is a live daemonize
// program. The error is an *errNotRunning when nothing runs there.
func find(pidFile string) (*daemon, error) {
	pid, err := daemonize.ReadPIDFile(pidFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &errNotRunning{statusStopped, fmt.Sprintf("not running: no pid file at %s", pidFile)}
	case err != nil:
		return nil, fmt.Errorf("pid file %s: %v", pidFile, err)
	}
	if !alive(pid) {
		return nil, &errNotRunning{statusDead, fmt.Sprintf("not running: process %d named by %s has exited (stale pid file)", pid, pidFile)}
	}
	st, err := daemonize.ReadStatus(pidFile)
	if err != nil {
		return nil, fmt.Errorf("process %d named by %s is not a daemonize program, or an older one: %v", pid, pidFile, err)
	}
	if st.PID != pid {
		return nil, fmt.Errorf("process %d named by %s is not the one its status file names (%d); is another program writing that pid file?", pid, pidFile, st.PID)
	}
	if exe, err := proc.Executable(pid); err == nil && filepath.Base(exe) != filepath.Base(st.Executable) {
		return nil, fmt.Errorf("process %d runs %s, not %s: the pid was reused by another program; refusing to signal it", pid, exe, st.Executable)
	}
	return &daemon{pid: pid, status: st}, nil
}

// poll calls cond every 10 ms until it returns true or the deadline passes.
func poll(deadline time.Time, cond func() bool) bool {
	return proc.PollUntil(context.Background(), deadline, 10*time.Millisecond, cond) == nil
}

func restart(pidFile string, timeout time.Duration, stdout, stderr io.Writer) int {
	d, err := find(pidFile)
	if err != nil {
		fmt.Fprintf(stderr, "daemonize restart: %v\n", err)
		return 1
	}
	// The outcome to wait for: the next attempt, or the one under way,
	// which a SIGUSR1 joins.
	want := d.status.Restarts + 1
	if d.status.State == daemonize.StateUpgrading {
		want = d.status.Restarts
	}
	start := time.Now()
	if err := syscall.Kill(d.pid, syscall.SIGUSR1); err != nil {
		fmt.Fprintf(stderr, "daemonize restart: signal process %d: %v\n", d.pid, err)
		return 1
	}
	var (
		last   *daemonize.Status
		failed string
	)
	done := poll(start.Add(timeout), func() bool {
		// Whether the old process lives is asked before the status is
		// read: once it is dead it writes nothing more, so the status
		// read after says its last word.
		oldAlive := alive(d.pid)
		st, err := daemonize.ReadStatus(pidFile)
		if err != nil {
			if oldAlive || last == nil {
				return false // not written yet
			}
			failed = "the daemon stopped during the restart"
			return true
		}
		last = st
		r := st.LastRestart
		switch {
		case r != nil && r.Attempt >= want && !r.OK:
			failed = r.Error
			return true
		case r != nil && r.Attempt >= want:
			return st.Previous == nil && !alive(r.OldPID)
		case !oldAlive && st.PID == d.pid:
			failed = fmt.Sprintf("process %d exited during the restart", d.pid)
			return true
		}
		return false
	})
	switch {
	case failed != "":
		fmt.Fprintf(stderr, "daemonize restart: failed after %s: %s\n", time.Since(start).Round(time.Millisecond), failed)
		if last != nil && last.LastRestart != nil && last.LastRestart.Stderr != "" && !strings.Contains(failed, "standard error") {
			fmt.Fprintf(stderr, "last lines of the new process's standard error:\n%s\n", last.LastRestart.Stderr)
		}
		return 1
	case !done:
		state := "unknown"
		if last != nil {
			state = last.State
		}
		fmt.Fprintf(stderr, "daemonize restart: timed out after %s waiting for the new process to be ready and process %d to exit (state: %s)\n", timeout, d.pid, state)
		return 2
	}
	fmt.Fprintf(stdout, "restarted: pid %d -> %d (generation %d) in %s\n", d.pid, last.PID, last.Generation, time.Since(start).Round(time.Millisecond))
	return 0
}

func stop(pidFile string, timeout time.Duration, stdout, stderr io.Writer) int {
	d, err := find(pidFile)
	var nr *errNotRunning
	switch {
	case errors.As(err, &nr):
		fmt.Fprintln(stdout, nr.msg)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "daemonize stop: %v\n", err)
		return 1
	}
	start := time.Now()
	if err := syscall.Kill(d.pid, syscall.SIGTERM); err != nil {
		fmt.Fprintf(stderr, "daemonize stop: signal process %d: %v\n", d.pid, err)
		return 1
	}
	others := []int{d.pid}
	if d.status.Previous != nil {
		others = append(others, d.status.Previous.PID) // still draining: part of the service
	}
	stopped := poll(start.Add(timeout), func() bool {
		for _, pid := range others {
			if alive(pid) {
				return false
			}
		}
		got, err := daemonize.ReadPIDFile(pidFile)
		return err != nil || got != d.pid
	})
	if !stopped {
		fmt.Fprintf(stderr, "daemonize stop: process %d still running after %s\n", d.pid, timeout)
		return 1
	}
	fmt.Fprintf(stdout, "stopped: pid %d in %s\n", d.pid, time.Since(start).Round(time.Millisecond))
	return 0
}

func status(pidFile string, asJSON bool, stdout, stderr io.Writer) int {
	d, err := find(pidFile)
	if err != nil {
		code := statusUnknown
		var nr *errNotRunning
		if errors.As(err, &nr) {
			code = nr.code
		}
		if asJSON {
			json.NewEncoder(stdout).Encode(map[string]any{"running": false, "error": err.Error()})
		} else {
			fmt.Fprintln(stdout, err)
		}
		return code
	}
	st := d.status
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return statusRunning
	}
	fmt.Fprintf(stdout, "%s: pid %d, generation %d, up %s (service up %s)\n", st.State, st.PID, st.Generation,
		time.Since(st.Started).Round(time.Second), time.Since(st.ServiceStarted).Round(time.Second))
	if p := st.Previous; p != nil {
		fmt.Fprintf(stdout, "previous generation: pid %d, %s\n", p.PID, p.State)
	}
	if r := st.LastRestart; r != nil {
		took := r.Ended.Sub(r.Started).Round(time.Millisecond)
		if r.OK {
			fmt.Fprintf(stdout, "last restart: ok at %s, pid %d -> %d, in %s\n", r.Ended.Format(time.RFC3339), r.OldPID, r.NewPID, took)
		} else {
			fmt.Fprintf(stdout, "last restart: failed at %s after %s: %s\n", r.Ended.Format(time.RFC3339), took, r.Error)
		}
	}
	return statusRunning
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !proc.Zombie(pid)
}
