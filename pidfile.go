package daemonize

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/daemonize-dev/daemonize/internal/atomicfile"
)

// ErrAlreadyRunning is returned by [New] when the pid file is locked by a
// live process. The error is an [*AlreadyRunningError] naming that process.
var ErrAlreadyRunning = errors.New("daemonize: already running")

// AlreadyRunningError reports that another live process holds the pid file.
type AlreadyRunningError struct {
	PIDFile string // the pid file path
	PID     int    // the running process, 0 if it has not written its pid yet
}

func (e *AlreadyRunningError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("daemonize: pid file %s: another process holds its lock and is still starting; stop it first", e.PIDFile)
	}
	return fmt.Sprintf("daemonize: pid file %s: process %d is already running; stop it first or use another pid file", e.PIDFile, e.PID)
}

// Is reports whether target is [ErrAlreadyRunning].
func (e *AlreadyRunningError) Is(target error) bool { return target == ErrAlreadyRunning }

// pidFile is a pid file and the lock that says a live process owns it.
//
// The lock is an flock on path+".lock": it dies with the last process that
// holds it, so a crash never leaves a stale lock, and a restarted child
// inherits the descriptor and with it the lock. The pid file itself is
// replaced by rename, so readers never see it empty or half-written.
type pidFile struct {
	path string
	lock *os.File
}

// lockPath names the lock file that guards the pid file at path.
func lockPath(path string) string { return path + ".lock" }

// checkPIDPath refuses paths that cannot hold a pid file, with an error that
// says what to fix.
func checkPIDPath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("daemonize: pid file %s: directory %s does not exist; create it first", path, dir)
	case err != nil:
		return fmt.Errorf("daemonize: pid file %s: %w", path, err)
	case !st.IsDir():
		return fmt.Errorf("daemonize: pid file %s: %s is not a directory", path, dir)
	}
	st, err = os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("daemonize: pid file %s: %w", path, err)
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("daemonize: pid file %s is a symbolic link; refusing to follow it: remove it or choose another path", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("daemonize: pid file %s is not a regular file (%s); remove it or choose another path", path, st.Mode().Type())
	}
	return nil
}

// lockPIDFile takes the lock guarding the pid file at path. It fails with an
// [*AlreadyRunningError] when a live process holds it.
func lockPIDFile(path string) (*pidFile, error) {
	if err := checkPIDPath(path); err != nil {
		return nil, err
	}
	for range 10 {
		f, err := openNoFollow(lockPath(path))
		if err != nil {
			return nil, fmt.Errorf("daemonize: pid file %s: lock: %w", path, err)
		}
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("daemonize: pid file %s: lock %s: %w", path, f.Name(), err)
		}
		if !locked {
			f.Close()
			pid, _ := ReadPIDFile(path)
			return nil, &AlreadyRunningError{PIDFile: path, PID: pid}
		}
		// The owner may have removed the lock file between our open and our
		// lock: then we hold a lock nobody else can see. Try again.
		if sameFile(f, lockPath(path)) {
			return &pidFile{path: path, lock: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("daemonize: pid file %s: lock file keeps being replaced; is another instance starting and stopping in a loop?", path)
}

// removeFailedStart removes what a start of process pid that failed left
// beside the pid file at path: its status file, and the lock file if no
// process holds it.
func removeFailedStart(path string, pid int) {
	if st, err := ReadStatus(path); err == nil && st.PID == pid {
		os.Remove(StatusPath(path))
	}
	f, err := os.OpenFile(lockPath(path), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if locked, err := tryLock(f); err == nil && locked && sameFile(f, lockPath(path)) {
		os.Remove(lockPath(path))
	}
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}

// write replaces the pid file with one naming pid. A reader sees the old
// content or the new one, never a missing, empty or partial file.
func (p *pidFile) write(pid int) error {
	if err := checkPIDPath(p.path); err != nil {
		return err
	}
	if err := atomicfile.Write(p.path, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		return fmt.Errorf("daemonize: pid file %s: %w", p.path, err)
	}
	return nil
}

// remove deletes the pid file and the status file if they still name pid,
// and with release also the lock file, as the last process of the service
// stops.
func (p *pidFile) remove(pid int, release bool) {
	if st, err := ReadStatus(p.path); err == nil && st.PID == pid {
		os.Remove(StatusPath(p.path))
	}
	if got, err := ReadPIDFile(p.path); err == nil && got == pid {
		os.Remove(p.path)
	}
	if release && sameFile(p.lock, lockPath(p.path)) {
		os.Remove(lockPath(p.path))
	}
	if release {
		p.lock.Close()
	}
}

// ReadPIDFile returns the pid written in the pid file at path. It does not
// tell whether that process still runs.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("daemonize: read pid file: %w", err)
	}
	return parsePID(string(b))
}

// parsePID parses the content of a pid file: a positive decimal number and
// an optional trailing newline.
func parsePID(s string) (int, error) {
	s = strings.TrimSuffix(s, "\n")
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != s {
		return 0, fmt.Errorf("daemonize: pid file holds %q, not a process id", truncate(s, 40))
	}
	return pid, nil
}
