package daemonize

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RestartError says why a restart failed. The old process keeps serving and
// the pid file keeps naming it.
type RestartError struct {
	PID     int    // the new process, 0 if it never started
	Err     error  // what went wrong: it exited, or was not ready in time
	Message string // the new process's own error, if it reported one
	Stderr  string // the last lines the new process wrote to standard error, where known
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

// Restart starts the executable at the same path as a new process, passes it
// the listeners, and waits until it is ready. Then this process stops
// serving: [Daemon.Stopping] is closed and [Daemon.Wait] drains. On failure
// the new process is stopped and this one keeps serving; the error is a
// [*RestartError].
//
// A restart asked for while one runs joins it and gets its outcome. One asked
// for while the previous generation still drains starts once that process has
// exited. SIGUSR1 calls Restart.
func (d *Daemon) Restart() error {
	reply := make(chan error, 1)
	select {
	case d.requests <- reply:
	case <-d.stopC:
		return fmt.Errorf("daemonize: restart: %w", ErrStopping)
	}
	return <-reply
}

// run handles the signals and restart requests for the life of the process.
// It alone starts restarts, so there is never more than one child.
func (d *Daemon) run() {
	var (
		attempt     chan error     // result of the running restart, nil if none
		abort       chan struct{}  // closed to stop the running restart
		waiters     []chan<- error // callers waiting for the running or pending restart
		pending     bool           // a restart waits for the previous generation to exit
		parentGone  = d.parentGone // nil once the parent is gone (or if there is none)
		orphaned    <-chan time.Time
		stopSignals int
		stopAfter   bool // stop once the running restart has ended
	)
	var began time.Time // of the running attempt
	start := func() {
		d.restarts++
		began = time.Now()
		n := d.restarts
		d.logError(d.notify.send(reloading(fmt.Sprintf("restarting: generation %d", d.gen+1))...))
		attempt, abort = make(chan error, 1), make(chan struct{})
		go func() { attempt <- d.upgrade(abort, n, began) }()
	}
	// request asks for a restart: from code with a reply channel, from
	// SIGUSR1 without. A signal that comes before Ready, or while the
	// previous generation still drains, is kept and acted on once the way
	// is clear: a deploy's request is never dropped.
	request := func(reply chan<- error) {
		select {
		case <-d.stopC:
			if reply != nil {
				reply <- fmt.Errorf("daemonize: restart: %w", ErrStopping)
			} else {
				d.log.Info("daemonize: restart signal ignored: stopping")
			}
			return
		default:
		}
		ready := d.isReady()
		if !ready && reply != nil {
			reply <- fmt.Errorf("daemonize: restart before Ready: %w", ErrNotReady)
			return
		}
		if err := d.handOverDone(); err != nil {
			if reply != nil {
				reply <- err
			} else {
				d.log.Error(err.Error())
			}
			return
		}
		if reply != nil {
			waiters = append(waiters, reply)
		}
		switch {
		case attempt != nil:
			d.log.Info("daemonize: restart already running; request joins it")
		case !ready || parentGone != nil:
			if !pending {
				d.log.Info("daemonize: restart waits until this process is ready and the previous generation has exited")
			}
			pending = true
		default:
			start()
		}
	}
	readyC := d.readyC
	for {
		select {
		case sig := <-d.sigs:
			switch sig {
			case sigReopen:
				if err := reopen(d.opts.Stdout, d.opts.Stderr); err != nil {
					d.log.Error(err.Error())
				}
			case sigRestart:
				request(nil)
			default:
				stopSignals++
				if stopSignals > 1 {
					d.exitNow("second "+sig.String(), attempt != nil)
				}
				if !d.isReady() {
					d.exitNow(sig.String()+" before ready", false)
				}
				if attempt != nil {
					stopAfter = true
					close(abort)
					continue
				}
				d.beginStop(sig.String())
			}
		case <-d.stopReq:
			if attempt != nil {
				stopAfter = true
				close(abort)
				continue
			}
			d.beginStop("Stop called")
		case reply := <-d.requests:
			request(reply)
		case err := <-attempt:
			// Reported here, once the attempt is over, so that a SIGUSR1
			// sent after the report starts a new attempt.
			d.reportRestart(err, began)
			attempt = nil
			for _, w := range waiters {
				w <- err
			}
			waiters = nil
			if stopAfter {
				if err == nil {
					// The child won the race with the stop signal: it
					// is the service now, so the signal is for it too.
					d.signalSuccessor(syscall.SIGTERM)
				}
				d.beginStop("stop signal during restart")
			}
		case <-readyC:
			readyC = nil
			if pending && parentGone == nil && d.isReady() {
				pending = false
				start()
			}
		case <-parentGone:
			parentGone = nil
			if d.isReady() {
				d.setStatus(func(st *Status) { st.Previous = nil })
				if pending {
					pending = false
					start()
				}
			} else {
				d.log.Warn("daemonize: the old process exited before this one was ready; serving alone once ready", "limit", d.opts.UpgradeTimeout)
				orphaned = time.After(d.opts.UpgradeTimeout)
			}
		case <-orphaned:
			if !d.isReady() {
				d.exitNow(fmt.Sprintf("not ready %s after the old process exited", d.opts.UpgradeTimeout), false)
			}
		}
	}
}

// reportRestart logs the outcome of a restart attempt and writes it to the
// status file and to systemd. After a success the new process owns the
// status file, and it gets to be systemd's main process.
func (d *Daemon) reportRestart(err error, began time.Time) {
	if err == nil {
		// Stop accepting first; Wait returns only once the rest is done.
		defer close(d.handedOver)
		pid := d.successorPID()
		if d.canTakeBack() {
			go d.drainForSuccessor(pid, began)
		} else {
			d.beginStop("handed over to the new process")
		}
		d.notify.stopWatchdog()
		d.logError(d.notify.send(fmt.Sprintf("MAINPID=%d", pid), "READY=1",
			fmt.Sprintf("STATUS=serving: generation %d, pid %d", d.gen+1, pid)))
		if d.pid != nil {
			// The new process's status, which it left to us to write.
			d.statusMu.Lock()
			st := readyStatus(d.status, os.Getpid(), pid, d.gen+1, d.restarts, began, time.Now())
			d.writeStatus(&st)
			d.statusMu.Unlock()
		}
		d.log.Info("daemonize: restart done; draining", "new_pid", pid)
		return
	}
	var re *RestartError
	if !errors.As(err, &re) {
		re = &RestartError{Err: err}
	}
	defer d.log.Error(err.Error()) // once the status file says it too
	d.setStatus(func(st *Status) {
		st.State = StateReady
		st.LastRestart = &RestartStatus{
			Attempt: st.Restarts, Started: began, Ended: time.Now(),
			OldPID: os.Getpid(), NewPID: re.PID, Error: re.Error(), Stderr: re.Stderr,
		}
	})
	d.logError(d.notify.send("READY=1", "STATUS=restart failed, still "+d.describe()+": "+truncate(oneLine(re.Error()), 200)))
}

// handOverDone says why this process cannot restart any more: it handed
// over already, or took the service back after that.
func (d *Daemon) handOverDone() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.successor != 0:
		return fmt.Errorf("daemonize: restart: this process handed over to pid %d already; signal that one: %w", d.successor, ErrStopping)
	case d.spent:
		return errors.New("daemonize: restart: this process took the service back after its successor died, and tableflip hands a process's sockets over once: stop it and start the service again")
	}
	return nil
}

// successorPID returns the pid of the process that took over, or 0.
func (d *Daemon) successorPID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.successor
}

// signalSuccessor sends sig to the process that took over, if any.
func (d *Daemon) signalSuccessor(sig syscall.Signal) {
	if pid := d.successorPID(); pid != 0 {
		signalProcess(pid, sig)
	}
}

// upgrade runs one restart: start the child, wait for it to be ready, and
// stop it if it is not ready in time or abort is closed.
func (d *Daemon) upgrade(abort <-chan struct{}, attempt int, began time.Time) error {
	d.log.Info("daemonize: restarting", "executable", d.exe, "generation", d.gen+1)
	if err := checkExecutable(d.exe); err != nil {
		return &RestartError{Err: err}
	}
	err := d.handoff.begin(manifest{
		Generation:     d.gen + 1,
		Started:        d.started.UnixNano(),
		Restarts:       attempt,
		AttemptStarted: began.UnixNano(),
		NotifySocket:   d.notify.socket,
		WatchdogUSec:   d.notify.watchdog.Microseconds(),
		Files:          d.fds.passOn(),
	})
	if err != nil {
		return &RestartError{Err: err}
	}
	tail := markStderr(d.opts.Stderr)
	// Say "upgrading" while the child starts, not before: it takes
	// milliseconds to get to Ready, and only this process writes the
	// status until the attempt has ended.
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		d.setStatus(func(st *Status) { st.State, st.Restarts = StateUpgrading, attempt })
	}()
	defer func() { <-statusDone }()
	result := make(chan error, 1)
	go func() { result <- d.tableflipUpgrade() }()
	timer := time.NewTimer(d.opts.UpgradeTimeout)
	defer timer.Stop()
	select {
	case err = <-result:
	case <-timer.C:
		err = d.giveUp(result, fmt.Errorf("not ready within %s (Options.UpgradeTimeout)", d.opts.UpgradeTimeout))
	case <-abort:
		err = d.giveUp(result, fmt.Errorf("stopped: this process got a stop signal: %w", ErrStopping))
	}
	pid, msg := d.handoff.child()
	if pid == 0 {
		pid = tableflipChild(err)
	}
	if err == nil {
		d.mu.Lock()
		d.successor = pid
		d.mu.Unlock()
		d.fds.closeListeners(d.canTakeBack())
		d.log.Info("daemonize: new process ready", "new_pid", pid, "took", time.Since(began))
		if !d.opts.Detach && isTerminal(os.Stderr) {
			fmt.Fprintf(os.Stderr, "daemonize: restarted as pid %d; pid %d exits once its requests are done; stop the new one with: kill %d\n", pid, os.Getpid(), pid)
		}
		return nil
	}
	re := &RestartError{PID: pid, Err: err, Message: msg, Stderr: tail()}
	if d.pid != nil {
		// The child may have written the pid file before it died.
		if got, _ := ReadPIDFile(d.pid.path); got != os.Getpid() {
			if werr := d.pid.write(os.Getpid()); werr != nil {
				d.log.Error(werr.Error())
			}
		}
	}
	return re
}

// tableflipUpgrade runs tableflip's upgrade. tableflip learns that the
// process is ready and that its parent has exited in its own goroutine, a
// moment after we do; until then it refuses to upgrade without starting a
// child, so those refusals are retried for a while.
func (d *Daemon) tableflipUpgrade() error {
	deadline := time.Now().Add(time.Second)
	for {
		err := d.upg.Upgrade()
		if err == nil || time.Now().After(deadline) ||
			!strings.Contains(err.Error(), "parent hasn't exited") && !strings.Contains(err.Error(), "process is not ready yet") {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// giveUp stops a child that is not ready, unless it declared itself ready
// first: then the restart succeeds after all.
func (d *Daemon) giveUp(result <-chan error, why error) error {
	won, state, err := d.handoff.transition(stateAborted)
	if err != nil {
		d.log.Error(err.Error())
	}
	if !won && state == stateReady {
		return <-result
	}
	pid, _ := d.handoff.child()
	if pid == 0 {
		// The child has not reached New, so it cannot have been told
		// how to stop, and only tableflip knows its pid: tableflip kills
		// it, at once when stopping, else at its own (later) timeout,
		// and reaps it in the background.
		if errors.Is(why, ErrStopping) {
			d.upg.Stop()
		}
		err := <-result
		if pid = tableflipChild(err); pid != 0 {
			waitGone(pid, killGrace)
		}
		return fmt.Errorf("%w; %v", why, err)
	}
	signalProcess(pid, syscall.SIGTERM)
	grace := time.NewTimer(killGrace)
	defer grace.Stop()
	select {
	case err = <-result:
	case <-grace.C:
		signalProcess(pid, syscall.SIGKILL)
		err = <-result
	}
	return fmt.Errorf("%w; %v", why, err)
}

// tableflipChild returns the child's pid from a tableflip error ("child
// pid=42 exited: ..."), or 0.
func tableflipChild(err error) int {
	if err == nil {
		return 0
	}
	_, after, ok := strings.Cut(err.Error(), "pid=")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(after)
	}
	pid, _ := strconv.Atoi(after[:end])
	return pid
}

// waitGone waits, at most limit, until the process pid no longer exists:
// until our child has been reaped.
func waitGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for processExists(pid) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// checkExecutable says clearly when the program's file is gone or broken.
func checkExecutable(path string) error {
	st, err := os.Stat(path)
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

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
