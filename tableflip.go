package daemonize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
)

// This file is the library's only contact with tableflip, which starts the
// new process of a restart, passes it descriptors and learns when it is
// ready. The rest of the package speaks of a flipper. tableflip's quirks,
// and how each is handled here:
//
//   - It marks a restarted process with an environment variable, which it
//     leaves set for the processes that one starts: startFlipper reads it
//     and removes it.
//   - It starts the new process from os.Args[0], looked up in PATH:
//     startFlipper sets os.Args[0] to the absolute path of the executable.
//   - It gives the new process os.Stdin, os.Stdout and os.Stderr as they
//     are when the process starts: see output_unix.go for how the new
//     process's standard error is captured until it is ready.
//   - Its upgrade timeout kills the new process with SIGKILL. It is set to
//     Options.UpgradeTimeout, so that a new process that never reaches New
//     (a wrong file installed, a hang in init) is stopped on time; the
//     library gives up on the others slightly earlier (see readyGuard).
//   - It refuses an upgrade, without starting anything, until its own
//     goroutine has seen this process ready and its parent gone, which
//     happens a moment after the library knows: upgrade retries those
//     refusals for a while.
//   - Its errors are text ("child pid=42 exited: exit status 1", "new child
//     pid=42 timed out"): upgrade turns them into the library's errors.
//   - It closes its copies of the passed descriptors in its own goroutine,
//     after a successful upgrade or after Stop: stop waits for that.
//   - It passes each descriptor under a name, which costs the new process a
//     name to decode and five system calls per descriptor before it can be
//     ready (40 ms with a thousand listeners). Only the library's own few
//     files travel so; the program's sockets and files go in bulk over a
//     socket pair whose end tableflip passes (passfd_unix.go). Each new
//     process keeps tableflip's copy of that end, at its end of file, until
//     its own first restart replaces it.
//   - It starts the new process with syscall.StartProcess and then calls
//     os.FindProcess, whose first call in a process (Go 1.23 and later, on
//     Linux) checks that pidfds work by starting and reaping a child of its
//     own: 1.2 ms of this process's time just as the new one starts.
//     warmProcessCheck has Go make that check once this process is ready.
//   - It waits for the new process with a blocking waitid (os.Process.Wait)
//     from the moment it starts it. While a goroutine sits in that system
//     call, Go's scheduler monitor (sysmon) wakes every 20 µs for the next
//     10 ms, exactly while the new process starts: a tableflip that waited
//     in the netpoller instead made restarts about 1.2 ms faster on a
//     2-core VM. The library cannot change how tableflip waits; the README
//     counts it as tableflip's part of a restart.

// tableflipMarker is the variable tableflip sets for a restarted process.
const tableflipMarker = "TABLEFLIP_HAS_PARENT_7DIU3"

// flipper passes descriptors to the next generation and starts it.
type flipper struct {
	upg    *tableflip.Upgrader
	parent chan struct{} // closed once the parent process has exited; nil without one
}

// startFlipper sets tableflip up. restarted says whether this process was
// started by a restart.
func startFlipper(exe string, upgradeTimeout time.Duration) (f *flipper, restarted bool, err error) {
	restarted = os.Getenv(tableflipMarker) != ""
	os.Args[0] = exe
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout})
	os.Unsetenv(tableflipMarker)
	if err != nil {
		return nil, restarted, fmt.Errorf("daemonize: %w", err)
	}
	f = &flipper{upg: upg}
	if upg.HasParent() {
		f.parent = make(chan struct{})
		go func() {
			upg.WaitForParent(context.Background())
			close(f.parent)
		}()
	}
	return f, restarted, nil
}

// File returns the file the parent passed under name, or nil.
func (f *flipper) File(name string) (*os.File, error) { return f.upg.Fds.File(name) }

// AddFile passes a duplicate of file to the next generation under name.
func (f *flipper) AddFile(name string, file *os.File) error { return f.upg.Fds.AddFile(name, file) }

// parentGone returns a channel closed once the parent process has exited;
// nil if there is none.
func (f *flipper) parentGone() <-chan struct{} {
	if f.parent == nil {
		return nil
	}
	return f.parent
}

// errParentExiting says that the parent closed the pipe tableflip tells it
// on, which it does only as it exits.
var errParentExiting = errors.New("the old process is exiting")

// ready tells the parent that this process is ready, which ends its
// upgrade successfully, and closes the inherited descriptors nobody took.
func (f *flipper) ready() error {
	if err := f.upg.Ready(); err != nil {
		if strings.HasSuffix(err.Error(), syscall.EPIPE.Error()) {
			return fmt.Errorf("daemonize: %w: %w", errParentExiting, err)
		}
		return fmt.Errorf("daemonize: %w", err)
	}
	return nil
}

// upgrade starts the new process and waits until it is ready, exits, or
// the upgrade timeout passes. Its error says which, with the new process's
// pid where tableflip names it.
func (f *flipper) upgrade() (pid int, err error) {
	deadline := time.Now().Add(time.Second)
	for {
		err = f.upg.Upgrade()
		if err == nil {
			return 0, nil
		}
		if msg := err.Error(); msg != "process is not ready yet" && msg != "parent hasn't exited" || time.Now().After(deadline) {
			pid, err := childError(err)
			if errors.Is(err, ErrUpgradeTimeout) && pid != 0 {
				// tableflip's timer sends the new process SIGKILL and
				// returns; its own goroutine reaps it a moment later. The
				// failure is reported once no such process is left.
				within(killGrace, func() bool { return processGone(pid) })
			}
			return pid, err
		}
		time.Sleep(time.Millisecond)
	}
}

// childError turns an upgrade error of tableflip into the library's terms.
func childError(err error) (pid int, _ error) {
	msg := err.Error()
	switch {
	case msg == "terminating":
		return 0, ErrStopping
	case strings.HasPrefix(msg, "child pid="):
		rest := strings.TrimPrefix(msg, "child pid=")
		n, status, _ := strings.Cut(rest, " exited")
		pid, _ = strconv.Atoi(n)
		return pid, exitError(strings.TrimPrefix(status, ": "))
	case strings.HasPrefix(msg, "new child pid=") && strings.HasSuffix(msg, " timed out"):
		pid, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(msg, "new child pid="), " timed out"))
		return pid, ErrUpgradeTimeout
	}
	return 0, errors.New(strings.Replace(msg, "can't start child", "cannot start the new process", 1))
}

// exitError parses a process status as os.ProcessState prints it: "" (exit
// 0), "exit status 1", "signal: killed".
func exitError(status string) *ExitError {
	if sig, ok := strings.CutPrefix(status, "signal: "); ok {
		return &ExitError{Code: -1, Signal: sig}
	}
	code, _ := strconv.Atoi(strings.TrimPrefix(status, "exit status "))
	return &ExitError{Code: code}
}

// stop ends tableflip for good: no upgrade can start, a running one kills
// its new process, and tableflip's copies of the passed descriptors are
// closed by the time stop returns (or after killGrace, if tableflip hangs).
func (f *flipper) stop() {
	f.upg.Stop()
	select {
	case <-f.upg.Exit():
	case <-time.After(killGrace):
	}
}

// warmProcessCheck has Go check, once, whether pidfds work (see the
// quirks above), so that tableflip's os.FindProcess in a restart finds the
// answer ready.
func warmProcessCheck() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
}
