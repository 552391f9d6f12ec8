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
// The command is flag parsing around the package
// github.com/daemonize-dev/daemonize/control, which deploy tools written in
// Go can use directly.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/daemonize-dev/daemonize/control"
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

func restart(pidFile string, timeout time.Duration, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := control.Restart(ctx, pidFile)
	var (
		failed  *control.RestartFailedError
		timeOut *control.TimeoutError
	)
	switch {
	case errors.As(err, &timeOut):
		fmt.Fprintf(stderr, "daemonize restart: %s: %v\n", timeout, err)
		return 2
	case errors.As(err, &failed):
		fmt.Fprintf(stderr, "daemonize restart: %v\n", err)
		if failed.Stderr != "" && !strings.Contains(failed.Reason, "standard error") {
			fmt.Fprintf(stderr, "last lines of the new process's standard error:\n%s\n", failed.Stderr)
		}
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "daemonize restart: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restarted: pid %d -> %d (generation %d) in %s\n", r.OldPID, r.NewPID, r.Generation, r.Took.Round(time.Millisecond))
	return 0
}

func stop(pidFile string, timeout time.Duration, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := control.Stop(ctx, pidFile)
	var timeOut *control.TimeoutError
	switch {
	case errors.As(err, &timeOut):
		fmt.Fprintf(stderr, "daemonize stop: %s: %v\n", timeout, err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "daemonize stop: %v\n", err)
		return 1
	case !r.Running:
		fmt.Fprintf(stdout, "not running: nothing to stop under %s\n", pidFile)
		return 0
	}
	fmt.Fprintf(stdout, "stopped: pid %d in %s\n", r.PID, r.Took.Round(time.Millisecond))
	return 0
}

func status(pidFile string, asJSON bool, stdout, stderr io.Writer) int {
	p, err := control.Find(pidFile)
	if err != nil {
		code := statusUnknown
		var nr *control.NotRunningError
		if errors.As(err, &nr) {
			code = statusStopped
			if nr.PID != 0 {
				code = statusDead
			}
		}
		if asJSON {
			json.NewEncoder(stdout).Encode(map[string]any{"running": false, "error": err.Error()})
		} else {
			fmt.Fprintln(stdout, err)
		}
		return code
	}
	st := p.Status
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return statusRunning
	}
	fmt.Fprintf(stdout, "%s: pid %d, generation %d, up %s (service up %s)\n", st.State, st.PID, st.Generation,
		time.Since(st.Started).Round(time.Second), time.Since(st.ServiceStarted).Round(time.Second))
	if st.Supervisor != 0 {
		fmt.Fprintf(stdout, "supervisor: pid %d\n", st.Supervisor)
	}
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
