//go:build unix

package daemonize

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const supported = true

// The signals besides SIGTERM and SIGINT.
const (
	sigRestart = syscall.SIGUSR1
	sigReopen  = syscall.SIGHUP
)

func notifySignals(c chan<- os.Signal) {
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, sigRestart, sigReopen)
}

func signalProcess(pid int, sig syscall.Signal) { syscall.Kill(pid, sig) }

// processExists reports whether pid exists, a zombie included.
func processExists(pid int) bool { return syscall.Kill(pid, 0) != syscall.ESRCH }

func setUmask(mask fs.FileMode) { unix.Umask(int(mask)) }

// monotonicUSec reads CLOCK_MONOTONIC in microseconds, as systemd does.
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

// openOutputs opens the files for standard output and error for appending,
// once when both name the same path. An empty path gives a nil file.
func openOutputs(stdout, stderr string) (out, errf *os.File, err error) {
	open := func(path string) (*os.File, error) {
		if path == "" {
			return nil, nil
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("daemonize: output file: %w", err)
		}
		return f, nil
	}
	if out, err = open(stdout); err != nil {
		return nil, nil, err
	}
	if stderr == stdout {
		return out, out, nil
	}
	if errf, err = open(stderr); err != nil {
		if out != nil {
			out.Close()
		}
		return nil, nil, err
	}
	return out, errf, nil
}

// redirect points descriptors 1 and 2 at the files, so that fmt, log,
// panics and the runtime's fatal errors all land there. dup2 replaces a
// descriptor atomically: every write goes wholly to the old file or wholly
// to the new one, so reopening loses and splits no line.
func redirect(stdout, stderr string) error {
	out, errf, err := openOutputs(stdout, stderr)
	if err != nil {
		return err
	}
	for fd, f := range []*os.File{1: out, 2: errf} {
		if f == nil || err != nil {
			continue
		}
		if derr := unix.Dup2(int(f.Fd()), fd); derr != nil {
			err = fmt.Errorf("daemonize: redirect descriptor %d to %s: %w", fd, f.Name(), derr)
		}
	}
	for _, f := range []*os.File{out, errf} {
		if f != nil {
			f.Close()
		}
	}
	return err
}

// reopen opens the output files again by path, after logrotate renamed them.
func reopen(stdout, stderr string) error { return redirect(stdout, stderr) }

// closeStrayFiles marks every descriptor above 2 close-on-exec, so that the
// daemon does not hold a pipe or socket its launcher inherited: an ssh
// session or a pipeline waiting for that pipe's end would hang forever.
func closeStrayFiles() {
	entries, _ := os.ReadDir("/dev/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// launch starts the detached daemon, waits until it is ready or failed, and
// returns the launching process's exit status.
func launch(o Options, exe string) int {
	if err := startDaemon(o, exe); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startDaemon(o Options, exe string) error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer null.Close()
	out, errf, err := openOutputs(o.Stdout, o.Stderr)
	if err != nil {
		return err
	}
	defer out.Close()
	defer errf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer r.Close()
	tail := markStderr(o.Stderr)
	closeStrayFiles()

	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, envDetached+"=")
	}), envDetached+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, out, errf
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("daemonize: start the daemon: %w", err)
	}
	pid := cmd.Process.Pid

	r.SetReadDeadline(time.Now().Add(o.StartTimeout))
	var reported []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, text, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "ready":
			cmd.Process.Release()
			return nil
		case "error":
			reported = append(reported, text)
		}
	}
	timedOut := errors.Is(sc.Err(), os.ErrDeadlineExceeded)
	if timedOut {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var status error
	select {
	case status = <-exited:
	case <-time.After(killGrace):
		cmd.Process.Kill()
		status = <-exited
	}

	if o.PIDFile != "" {
		removeFailedStart(o.PIDFile, pid)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "daemonize: the daemon (pid %d) did not start", pid)
	if timedOut {
		fmt.Fprintf(&b, ": not ready within %s (Options.StartTimeout); stopped it", o.StartTimeout)
	}
	for _, r := range reported {
		b.WriteString(": " + r)
	}
	if status != nil {
		fmt.Fprintf(&b, " (%v)", status)
	} else {
		b.WriteString(" (it exited with status 0 before it was ready)")
	}
	if t := tail(); t != "" && len(reported) == 0 {
		fmt.Fprintf(&b, "\nlast lines of %s:\n%s", o.Stderr, t)
	}
	return errors.New(b.String())
}
