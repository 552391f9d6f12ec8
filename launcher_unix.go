//go:build unix

package daemonize

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the launcher of a detached daemon: the process the user
// started, which re-executes the program in a new session and waits until
// the daemon is ready or failed.

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

// markStderr notes where the standard error file at path ends now, if it is
// a regular file, and returns a function that reads the last lines written
// after that point.
func markStderr(path string) func() string {
	st, err := os.Stat(path)
	if path == "" || err != nil || !st.Mode().IsRegular() {
		return func() string { return "" }
	}
	from := st.Size()
	return func() string {
		const maxTail = 16 << 10
		f, err := os.Open(path)
		if err != nil {
			return ""
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() <= from {
			return ""
		}
		from = max(from, st.Size()-maxTail)
		b := make([]byte, st.Size()-from)
		n, err := f.ReadAt(b, from)
		if err != nil && !errors.Is(err, io.EOF) {
			return ""
		}
		return lastLines(string(b[:n]), 10)
	}
}
