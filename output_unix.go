//go:build unix

package daemonize

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file owns standard output and error: the files they are appended
// to, their reopening on SIGHUP, and the capture of a new process's
// standard error while a restart waits for it.
//
// The capture: tableflip gives the new process os.Stderr as its standard
// error. New points os.Stderr at a duplicate of descriptor 2 (the runtime's
// own crash output, and loggers made before New, keep descriptor 2 itself);
// during a restart that duplicate names a capture file, so that the new
// process writes there until it is ready. The old process quotes the
// capture, and only it, in the failure report, and copies it into the log;
// a new process that becomes ready copies it there itself and points its
// descriptor 2 back at the real file.

// stdStderr is the os.Stderr of the runtime, descriptor 2. Kept here so that
// it is never collected (its finalizer would close descriptor 2) once New
// has pointed os.Stderr elsewhere.
var stdStderr = os.Stderr

// output is the process's standard output and error.
type output struct {
	mu      sync.Mutex
	stdout  string   // path, "" when inherited
	stderr  string   // path, "" when inherited
	errFd   int      // the descriptor behind os.Stderr, -1 before setup
	real    *os.File // the real standard error passed on, when it has no path
	own     bool     // this process's standard error is a capture until Ready
	capture *os.File // a new process's capture, while a restart waits for it
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

// setup points os.Stderr at a duplicate of descriptor 2. In a new process
// whose standard error is captured, it also takes the real one the parent
// passed (files), to go back to at Ready; tableflip passes it on again.
// Otherwise, when standard error has no path, it passes a duplicate of it
// on.
func (o *output) setup(files fileTable, captured bool) error {
	fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fmt.Errorf("daemonize: standard error: %w", err)
	}
	o.errFd = fd
	os.Stderr = os.NewFile(uintptr(fd), "/dev/stderr")
	switch {
	case captured:
		o.own = true
		if o.real, err = files.File(stderrName); err != nil {
			return fmt.Errorf("daemonize: standard error: %w", err)
		}
	case o.stderr == "":
		if o.real, err = dupFile(stdStderr); err == nil {
			err = files.AddFile(stderrName, o.real)
		}
		if err != nil {
			return fmt.Errorf("daemonize: standard error: %w", err)
		}
	}
	return nil
}

// reopen opens the output files again by path, after logrotate renamed them.
func (o *output) reopen() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := redirect(o.stdout, o.stderr); err != nil {
		return err
	}
	if o.capture == nil && !o.own {
		o.sync()
	}
	return nil
}

// sync points os.Stderr's descriptor back at descriptor 2.
func (o *output) sync() {
	if o.errFd >= 0 {
		dupOnto(2, o.errFd)
	}
}

// dupOnto makes newfd a duplicate of oldfd, close-on-exec like every
// descriptor of a Go program: dup2 alone would clear the flag, and every
// process started after (the next generation included) would inherit it.
// Holding syscall.ForkLock keeps any fork out of the moment between.
func dupOnto(oldfd, newfd int) error {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	if err := unix.Dup2(oldfd, newfd); err != nil {
		return err
	}
	unix.CloseOnExec(newfd)
	return nil
}

// beginCapture points os.Stderr's descriptor at a new capture file, which
// the next process tableflip starts gets as its standard error.
func (o *output) beginCapture() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := anonFile("daemonize-stderr")
	if err == nil {
		err = dupOnto(int(f.Fd()), o.errFd)
	}
	if err != nil {
		return fmt.Errorf("daemonize: capture the new process's standard error: %w", err)
	}
	o.capture = f
	return nil
}

// endCapture points os.Stderr back at the real standard error once the new
// process is started, and returns the capture.
func (o *output) endCapture() *os.File {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sync()
	f := o.capture
	o.capture = nil
	return f
}

// flush appends what a capture holds to the real standard error, so that
// the log loses nothing, and closes it.
func flush(capture *os.File) {
	if capture == nil {
		return
	}
	io.Copy(stdStderr, io.NewSectionReader(capture, 0, 1<<62))
	capture.Close()
}

// release ends this process's own capture at Ready: descriptor 2 points at
// the real standard error again. With keep, what it wrote before Ready is
// appended there too; otherwise the parent, which waits for it, does that.
func (o *output) release(keep bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.own {
		return nil
	}
	o.own = false
	if o.stderr != "" {
		// The path may have been rotated since the parent opened it.
		if err := redirect("", o.stderr); err != nil {
			return err
		}
	} else if o.real != nil {
		if err := unix.Dup2(int(o.real.Fd()), 2); err != nil {
			return fmt.Errorf("daemonize: standard error: %w", err)
		}
	} else {
		return errors.New("daemonize: standard error: the parent passed no file to go back to")
	}
	// The capture is still open through os.Stderr's descriptor until sync.
	capture, err := dupFile(os.Stderr)
	o.sync()
	if err == nil && keep {
		flush(capture)
	} else if err == nil {
		capture.Close()
	}
	return nil
}

// tailOf returns the last lines a capture holds.
func tailOf(capture *os.File) string {
	const maxTail = 16 << 10
	st, err := capture.Stat()
	if err != nil || st.Size() == 0 {
		return ""
	}
	from := max(0, st.Size()-maxTail)
	b := make([]byte, st.Size()-from)
	n, err := capture.ReadAt(b, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return lastLines(string(b[:n]), 10)
}

// dupFile returns a duplicate of f, close-on-exec.
func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
