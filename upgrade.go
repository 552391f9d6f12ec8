package daemonize

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// This file runs one restart attempt: start the executable as a new
// process, pass it the sockets, wait until it is ready or stop it, and
// report.

// readyGuard is how much earlier than tableflip's own timeout (which kills
// the new process) the library stops waiting for it, so that a new process
// that declared itself ready just in time always gets word to tableflip
// before tableflip's timer fires.
func readyGuard(upgradeTimeout time.Duration) time.Duration {
	return min(upgradeTimeout/10, 250*time.Millisecond)
}

func (d *Daemon) now() time.Time { return time.Now() }

// startAttempt starts the restart a in its own goroutine.
func (d *Daemon) startAttempt(a *attempt) {
	a.exe, a.exeErr = os.Stat(d.exe)
	d.logError(d.notify.send(reloading(fmt.Sprintf("restarting: generation %d", d.gen+1))...))
	go func() {
		err := d.upgrade(a)
		d.life.send(evAttemptDone{a, err})
	}()
}

// abortAttempt stops the new process of a at once: the process stops.
func (d *Daemon) abortAttempt(a *attempt) {
	select {
	case <-a.abort:
	default:
		close(a.abort)
	}
}

// exeChanged reports whether the executable was replaced since a began.
func (d *Daemon) exeChanged(a *attempt) bool {
	now, err := os.Stat(d.exe)
	return err != nil || a.exe == nil || !os.SameFile(now, a.exe) || now.Size() != a.exe.Size() || !now.ModTime().Equal(a.exe.ModTime())
}

// upgrade runs the attempt a: start the new process, wait for it to be
// ready, and stop it if it is not ready in time or a is aborted.
func (d *Daemon) upgrade(a *attempt) error {
	if err := checkExecutable(d.exe, a.exe, a.exeErr); err != nil {
		d.log.Info("daemonize: restarting", "executable", d.exe, "generation", d.gen+1)
		return &RestartError{Err: err}
	}
	wait := d.opts.UpgradeTimeout - readyGuard(d.opts.UpgradeTimeout)
	files, sent, err := d.passFiles()
	if err != nil {
		return &RestartError{Err: err}
	}
	// tableflip keeps its copy of the pair's end until the next attempt
	// replaces it, and the garbage collector closes it: what a failed new
	// process left unread is closed now, not descriptors by the thousand
	// later.
	defer discardFds(sent)
	err = d.handoff.begin(manifest{
		Generation:     d.gen + 1,
		Started:        d.started.UnixNano(),
		Restarts:       a.n,
		AttemptStarted: a.began.UnixNano(),
		Deadline:       monotonicUSec() + wait.Microseconds(),
		NotifySocket:   d.notify.socket,
		WatchdogUSec:   d.notify.watchdog.Microseconds(),
		StderrCaptured: true,
		Supervisor:     d.supervisor,
		Files:          files,
	})
	if err == nil {
		err = d.out.beginCapture()
	}
	if err != nil {
		return &RestartError{Err: err}
	}
	// Say "upgrading" while the new process starts, not before: it takes
	// milliseconds to get to Ready, and only this process writes the
	// status until the attempt has ended.
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		d.status.set(func(st *Status) { st.State, st.Restarts = StateUpgrading, a.n })
	}()
	defer func() { <-statusDone }()

	results := make(chan flipResult, 1)
	go func() {
		pid, err := d.flip.upgrade()
		results <- flipResult{pid, err}
	}()
	// Logged once the new process starts, not before: its output waits in
	// the capture, so the log keeps this line first.
	d.log.Info("daemonize: restarting", "executable", d.exe, "generation", d.gen+1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	timedOut := fmt.Errorf("%w (%s)", ErrUpgradeTimeout, d.opts.UpgradeTimeout)
	var r flipResult
	select {
	case r = <-results:
		if errors.Is(r.err, ErrUpgradeTimeout) {
			r.err = timedOut
		}
	case <-timer.C:
		r = d.giveUp(results, timedOut)
	case <-a.abort:
		r = d.giveUp(results, fmt.Errorf("stopped: this process got a stop signal: %w", ErrStopping))
	}
	capture := d.out.endCapture()
	pid, msg := d.handoff.child()
	if pid == 0 {
		pid = r.pid
	}
	a.pid = pid
	var tail string
	if r.err != nil {
		tail = tailOf(capture)
	}
	flush(capture)
	if r.err == nil {
		d.log.Info("daemonize: new process ready", "new_pid", pid, "took", time.Since(a.began))
		return nil
	}
	if d.pid != nil {
		// The new process may have written the pid file before it died.
		if got, _ := ReadPIDFile(d.pid.path); got != os.Getpid() {
			d.logError(d.pid.write(os.Getpid()))
		}
	}
	return &RestartError{PID: pid, Err: r.err, Message: msg, Stderr: tail}
}

// passFiles sends the program's sockets and files for the new process, and
// returns their entries and the receiving end of the socket pair they are
// in (nil if none), which tableflip passes.
func (d *Daemon) passFiles() ([]entry, *os.File, error) {
	files, ch, err := d.fds.passOn()
	if err != nil || ch == nil {
		return files, nil, err
	}
	if err := d.flip.AddFile(filesName, ch); err != nil {
		ch.Close()
		return nil, nil, fmt.Errorf("daemonize: %w", err)
	}
	return files, ch, nil
}

// flipResult is the end of tableflip's upgrade: the new process's pid, if
// tableflip named it, and the error of a failure.
type flipResult struct {
	pid int
	err error
}

// giveUp stops a new process that is not ready, unless it declared itself
// ready first: then the restart succeeds after all. It returns the
// attempt's result, with why as the error of a failure.
func (d *Daemon) giveUp(results <-chan flipResult, why error) flipResult {
	won, state, err := d.handoff.transition(stateAborted, nil)
	d.logError(err)
	if !won && state == stateReady {
		return <-results
	}
	if pid, _ := d.handoff.child(); pid != 0 {
		signalProcess(pid, syscall.SIGKILL)
	} else if errors.Is(why, ErrStopping) {
		// It has not reached New, so only tableflip knows its pid;
		// tableflip kills it when stopped, as the process stops anyway.
		// Otherwise tableflip's own timeout, UpgradeTimeout, kills it.
		d.flip.stop()
	}
	r := <-results
	if r.err == nil || errors.Is(r.err, ErrUpgradeTimeout) {
		r.err = why
	} else {
		r.err = fmt.Errorf("%w; %w", why, r.err)
	}
	return r
}

// checkExecutable says clearly when the program's file is gone or broken,
// from what os.Stat(path) returned.
func checkExecutable(path string, st os.FileInfo, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("executable %s no longer exists: install the binary there again (by rename) and retry; a binary built by go run is deleted when go run exits", path)
	case err != nil:
		return fmt.Errorf("executable %s: %w", path, err)
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("executable %s is not an executable file (mode %s)", path, st.Mode())
	}
	return nil
}

// handOver makes the ready new process of a the service.
func (d *Daemon) handOver(a *attempt) {
	d.successor.Store(int64(a.pid))
	keep := d.canTakeBack()
	d.fds.closeListeners(keep)
	if !d.opts.Detach && isTerminal(stdStderr) {
		fmt.Fprintf(stdStderr, "daemonize: restarted as pid %d; pid %d exits once its requests are done; stop the new one with: kill %d\n", a.pid, os.Getpid(), a.pid)
	}
	d.notify.stopWatchdog()
	d.logError(d.notify.send(fmt.Sprintf("MAINPID=%d", a.pid), "READY=1",
		fmt.Sprintf("STATUS=serving: generation %d, pid %d", d.gen+1, a.pid)))
	if d.pid != nil {
		// The new process's status, which it left to us to write.
		d.status.writeAs(readyStatus(d.status.get(), os.Getpid(), a.pid, d.gen+1, a.n, a.began, a.ended), a.covers)
	}
	if keep {
		go d.watchSuccessor(d.gen + 1)
	}
	d.log.Info("daemonize: restart done; draining", "new_pid", a.pid)
}

// restartFailed reports the failure of a: in the log, the status file and
// to systemd.
func (d *Daemon) restartFailed(a *attempt, err error) {
	var re *RestartError
	if !errors.As(err, &re) {
		re = &RestartError{Err: err}
	}
	d.status.set(func(st *Status) {
		st.State = StateReady
		st.LastRestart = &RestartStatus{
			Attempt: a.n, Started: a.began, Ended: a.ended, Covers: a.covers,
			OldPID: os.Getpid(), NewPID: re.PID, Error: re.Error(), Stderr: re.Stderr,
		}
	})
	d.log.Error(err.Error())
	d.logError(d.notify.send("READY=1", "STATUS=restart failed, still "+d.describe()+": "+truncate(oneLine(re.Error()), 200)))
}

// restartRefused reports a restart asked for by signal that this process
// refuses: in the log, and in the status file, where a deploy tool that sent
// the signal waits for its answer.
func (d *Daemon) restartRefused(err error) {
	now := time.Now()
	d.status.set(func(st *Status) {
		st.LastRestart = &RestartStatus{Attempt: st.Restarts, Started: now, Ended: now, Covers: now, OldPID: os.Getpid(), Error: err.Error()}
	})
	d.log.Warn(err.Error())
}
