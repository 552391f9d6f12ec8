package daemonize

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotSupported is returned by [New] on platforms without fork, exec
	// and file descriptor passing (Windows, Plan 9, wasm).
	ErrNotSupported = errors.New("daemonize: not supported on this platform")

	// ErrNotReady is returned by [Daemon.Restart] before [Daemon.Ready].
	ErrNotReady = errors.New("daemonize: not ready")

	// ErrAlreadyReady is returned by [Daemon.Ready] when called twice, and by
	// [Daemon.Listen], [Daemon.ListenPacket] and [Daemon.File] after Ready.
	ErrAlreadyReady = errors.New("daemonize: already ready")

	// ErrStopping is returned by [Daemon.Restart] and [Daemon.Ready] once the
	// process stops, and is the cause of a restart that a stop interrupted.
	ErrStopping = errors.New("daemonize: stopping")

	// ErrHandedOver is returned by [Daemon.Restart] in a process that has
	// handed the service over to a new process: restarts are that process's
	// business now. A process that took the service back after its
	// successor died cannot restart either (the sockets it kept pass on
	// once); it returns ErrHandedOver too.
	ErrHandedOver = errors.New("daemonize: handed over")

	// ErrUpgradeTimeout is the cause of a restart whose new process was not
	// ready within [Options.UpgradeTimeout].
	ErrUpgradeTimeout = errors.New("daemonize: new process not ready within Options.UpgradeTimeout")

	// ErrNeedSupervise is returned by [Daemon.Restart] in a process that is
	// PID 1 of its PID namespace (a container's init) without
	// [Options.Supervise]: handing over would end the namespace.
	ErrNeedSupervise = errors.New("daemonize: restart refused: this process is PID 1 of its PID namespace (a container's init), and it would take every process of the namespace with it when it hands over and exits; set Options.Supervise (-supervise in the examples) so that PID 1 stays a small supervisor")
)

// RestartError says why a restart failed. The old process keeps serving and
// the pid file keeps naming it. Err is an [*ExitError] when the new process
// exited, [ErrUpgradeTimeout] when it was not ready in time, [ErrStopping]
// when a stop interrupted the restart, or why it could not start.
type RestartError struct {
	PID     int    // the new process, 0 if it never started
	Err     error  // the cause
	Message string // the new process's own error, if it reported one
	Stderr  string // the last lines the new process wrote to standard error
}

func (e *RestartError) Error() string {
	var b strings.Builder
	b.WriteString("daemonize: restart failed")
	if e.PID != 0 {
		fmt.Fprintf(&b, ": new process %d", e.PID)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Message != "" {
		fmt.Fprintf(&b, "; it reported: %s", e.Message)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, "; its last lines of standard error: %s", oneLine(e.Stderr))
	}
	return b.String()
}

func (e *RestartError) Unwrap() error { return e.Err }

// ExitError reports that the new process of a restart exited before it was
// ready.
type ExitError struct {
	Code   int    // the exit status, or -1 if a signal ended the process
	Signal string // the signal that ended it ("killed"), if one did
}

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return "exited: signal: " + e.Signal
	}
	return fmt.Sprintf("exited: exit status %d", e.Code)
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " | ") }

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
