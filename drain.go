package daemonize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// This file is the end of a process: the drain after a stop or a
// hand-over, and the clean-up after it.

// drain begins the drain: for a stop (final), every copy of every listening
// socket is closed first, so that new connections are refused at once.
// Then Draining is closed and the drain functions run; their end comes
// back to the lifecycle as evDrained.
func (d *Daemon) drain(final bool, epoch int) {
	if final {
		d.refuseNew()
		d.status.set(func(st *Status) { st.State = StateStopping })
		d.logError(d.notify.send("STOPPING=1", "STATUS=stopping: draining"))
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, stop := context.WithTimeoutCause(ctx, d.opts.DrainTimeout, errDrainDeadline)
	d.drainMu.Lock()
	close(d.drainingC)
	fns := slices.Clone(d.onDrain)
	for _, s := range d.servers {
		fns = append(fns, s.drain)
	}
	d.cancelDrain = cancel
	done := make(chan struct{})
	d.drainsDone = done
	d.drainMu.Unlock()
	if final {
		go d.notify.extendStop(ctx, d.opts.DrainTimeout, d.logError)
	}
	go func() {
		defer stop()
		err := d.runDrains(ctx, fns)
		close(done)
		if context.Cause(ctx) != errTakeBack {
			d.life.send(evDrained{epoch, err})
		}
	}()
}

// errDrainDeadline is the cause of a drain context past its deadline.
var errDrainDeadline = errors.New("daemonize: drain deadline (Options.DrainTimeout) passed")

// refuseNew closes every copy of every listening socket this process
// holds: the program's listeners, tableflip's copies, the ones kept for a
// take-back. The previous generation, if it still drains, is told to hurry
// and let go of the copies it kept. Sockets systemd passed stay open in
// systemd, where new connections wait for the next start. It waits for a
// MAINPID hand-back to systemd under way, so that STOPPING=1 is taken.
func (d *Daemon) refuseNew() {
	d.handoff.markStopping()
	if d.releaseServe != nil {
		d.releaseServe()
	}
	d.fds.closeListeners(false)
	d.fds.releaseKept()
	d.flip.stop()
	d.notify.settled()
}

// runDrains runs every drain function until it returns or the drain
// deadline passes.
func (d *Daemon) runDrains(ctx context.Context, fns []func(context.Context) error) error {
	results := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { results <- fn(ctx) }()
	}
	var errs []error
	for left := len(fns); left > 0; left-- {
		select {
		case err := <-results:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errTakeBack) {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			if context.Cause(ctx) == errTakeBack {
				// They return at once, and must have before the servers
				// serve again.
				for ; left > 0; left-- {
					<-results
				}
				return errTakeBack
			}
			// Give the drains a moment to return their own account of
			// what was still running, then stop waiting.
			grace := time.NewTimer(100 * time.Millisecond)
			defer grace.Stop()
		collect:
			for ; left > 0; left-- {
				select {
				case err := <-results:
					if err != nil {
						errs = append(errs, err)
					}
				case <-grace.C:
					break collect
				}
			}
			if left > 0 {
				errs = append(errs, fmt.Errorf("%d drain functions still running", left))
			}
			err := fmt.Errorf("daemonize: drain deadline (%s) passed: %w", d.opts.DrainTimeout, errors.Join(errs...))
			d.log.Error(err.Error())
			return err
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("daemonize: drain: %w", errors.Join(errs...))
	}
	return nil
}

// hurry makes the drain under way finish quickly: another restart or a
// stop waits for it. Idle connections are closed at once, and the service
// is not taken back any more.
func (d *Daemon) hurry() {
	if d.hurried.Swap(true) {
		return
	}
	d.log.Info("daemonize: hurrying the drain")
	d.fds.releaseKept()
}

// hurrying reports whether the drain should finish quickly: this process
// was asked to, or the process it handed over to asks it to.
func (d *Daemon) hurrying() bool {
	return d.hurried.Load() || d.successor.Load() != 0 && d.handoff.hurry()
}

// hurryPredecessor asks the previous generation, which drains, to hurry.
func (d *Daemon) hurryPredecessor() { d.handoff.askHurry() }

// predecessorGone: the previous generation has exited.
func (d *Daemon) predecessorGone(ready bool) {
	if !ready {
		d.log.Warn("daemonize: the old process exited before this one was ready; serving alone once ready", "deadline", d.readyDeadline())
		return
	}
	d.status.set(func(st *Status) {
		st.Previous = nil
		// The old process wrote which requests the restart answered.
		if old, err := ReadStatus(d.opts.PIDFile); err == nil && old.LastRestart != nil && st.LastRestart != nil && old.LastRestart.Attempt == st.LastRestart.Attempt {
			st.LastRestart.Covers = old.LastRestart.Covers
		}
	})
	if d.gen > 1 {
		d.notify.adopted(d.logError) // the previous generation named this one MAINPID
	}
}

func (d *Daemon) reopenOutput() { d.logError(d.out.reopen()) }

func (d *Daemon) signal(pid int, sig syscall.Signal) { signalProcess(pid, sig) }

// exit ends the process at once, on a second stop signal or a stop before
// Ready.
func (d *Daemon) exit(code int, why string) {
	d.log.Warn("daemonize: exiting at once", "pid", os.Getpid(), "reason", why)
	if d.parent != 0 && os.Getppid() != d.parent {
		d.out.release(true) // nobody else copies what it wrote
	}
	d.handoff.markStopping()
	d.cleanup()
	os.Exit(code)
}

// cleanup releases what this process holds for the service. The pid file,
// the status file and the lock go only with the last process; one that
// handed over leaves them to its successor.
func (d *Daemon) cleanup() {
	last := d.readyDone.Load() && d.successor.Load() == 0
	if d.pid != nil {
		d.pid.remove(os.Getpid(), last)
	}
	d.fds.closeListeners(false)
	d.fds.releaseKept()
	if last {
		for _, p := range d.fds.unixPaths() {
			os.Remove(p)
		}
	}
	d.flip.stop()
	d.notify.settled()
}
