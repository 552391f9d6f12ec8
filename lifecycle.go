package daemonize

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// This file is the life of one process of the service: a state, one loop
// that owns it, and one method per event. What the lifecycle does to the
// world (start a restart, drain, signal, exit) goes through the world
// interface, which the Daemon implements and tests fake.

// state is where this process is in the life of the service.
type state int

const (
	starting   state = iota // before Ready
	serving                 // ready, and no restart runs
	restarting              // serving while a new process starts
	handedOver              // a new process serves; this one drains, and may take the service back
	tookBack                // serving again after its successor died; it cannot restart again
	stopping                // draining before it exits
)

func (s state) String() string {
	return [...]string{"starting", "serving", "restarting", "handed over", "took back", "stopping"}[s]
}

// next lists the states each state may move to: the process model's
// transitions.
var next = map[state][]state{
	starting:   {serving, stopping},
	serving:    {restarting, stopping},
	restarting: {serving, handedOver, stopping},
	handedOver: {tookBack},
	tookBack:   {stopping},
}

// attempt is one restart: a new process started from the executable.
type attempt struct {
	n       int            // the service's restart count, this attempt included
	began   time.Time      // when it started
	waiters []chan<- error // Restart calls it answers
	abort   chan struct{}  // closed to stop it
	exe     os.FileInfo    // the executable when it began, to see whether a deploy replaced it since
	exeErr  error          // why it could not be read then

	// Set when it ends.
	pid    int       // the new process, 0 if it never started
	ended  time.Time // when it ended
	covers time.Time // restart requests that arrived before this are answered by it
}

// world is what the lifecycle asks of the process and the OS.
type world interface {
	now() time.Time
	// becomeReady does the work of Ready.
	becomeReady() error

	// startAttempt starts a; its end comes back as attemptDone.
	startAttempt(a *attempt)
	// abortAttempt stops the new process of a at once.
	abortAttempt(a *attempt)
	// exeChanged reports whether the executable was replaced since a began.
	exeChanged(a *attempt) bool
	// handOver makes the ready new process of a the service: this process
	// stops accepting, and systemd and the status file name the new one.
	handOver(a *attempt)
	// restartFailed reports the failure of a.
	restartFailed(a *attempt, err error)
	// restartRefused reports a restart asked for by signal that this
	// process refuses.
	restartRefused(err error)

	// drain starts draining, for a stop (final) or after a hand-over; its
	// end comes back as drained with epoch.
	drain(final bool, epoch int)
	// hurry makes the running drain finish quickly: another restart or a
	// stop waits for it.
	hurry()
	// takeBack makes this process serve again after its successor died,
	// if it can; the drain for the hand-over ends without a drained event.
	takeBack(a *attempt) bool

	// hurryPredecessor asks the previous generation, which drains, to hurry.
	hurryPredecessor()
	// predecessorGone is told once the previous generation has exited.
	predecessorGone(ready bool)

	reopenOutput()
	signal(pid int, sig syscall.Signal)
	// exit ends the process at once.
	exit(code int, why string)
}

// The events besides signals.
type (
	evReady       struct{ reply chan<- error }
	evRestart     struct{ reply chan<- error }
	evStop        struct{}
	evAttemptDone struct {
		a   *attempt
		err error
	}
	evSuccessorEnded struct{ stopping bool }
	evDrained        struct {
		epoch int
		err   error
	}
)

// lifecycle owns the state of this process. Only its loop touches its
// fields.
type lifecycle struct {
	w   world
	log *slog.Logger

	signals     chan os.Signal
	events      chan any
	parentGone  <-chan struct{}  // closed when the previous generation has exited; nil once handled or if none
	deadline    <-chan time.Time // a restarted process not ready by then exits
	done        chan struct{}    // closed when the drain has ended
	drainErr    error            // the drain's error, once done
	pid1        bool             // PID 1 without a supervisor: a hand-over would end the namespace
	supervised  bool             // under the supervisor of Options.Supervise, which passes stop signals on
	predecessor bool             // the previous generation still drains

	st          state
	restarts    int            // the service's restart attempts so far
	wanted      bool           // a restart was asked for and has not started
	queued      []chan<- error // Restart calls waiting for the next attempt
	running     *attempt       // the attempt under way
	last        *attempt       // the last attempt that succeeded: it made the successor
	followUp    bool           // a restart was asked for during the running attempt
	followers   []chan<- error // Restart calls waiting for the follow-up
	stopAfter   bool           // stop once the running attempt ends
	exitAfter   string         // exit at once, for this reason, once the running attempt ends
	stopSignals int
	lastStop    time.Time // when the last stop signal counted
	successor   int       // the process this one handed over to
	drainEpoch  int
}

func newLifecycle(w world, log *slog.Logger, restarts int, parentGone <-chan struct{}) *lifecycle {
	return &lifecycle{
		w:           w,
		log:         log,
		signals:     make(chan os.Signal, 16),
		events:      make(chan any),
		parentGone:  parentGone,
		predecessor: parentGone != nil,
		done:        make(chan struct{}),
		restarts:    restarts,
	}
}

// run handles events for the life of the process.
func (l *lifecycle) run() {
	for {
		select {
		case sig := <-l.signals:
			l.onSignal(sig)
		case ev := <-l.events:
			l.handle(ev)
		case <-l.parentGone:
			l.parentGone = nil
			l.onPredecessorGone()
		case <-l.deadline:
			l.deadline = nil
			l.onDeadline()
		}
	}
}

// send delivers an event to the loop.
func (l *lifecycle) send(ev any) { l.events <- ev }

func (l *lifecycle) handle(ev any) {
	switch ev := ev.(type) {
	case evReady:
		ev.reply <- l.onReady()
	case evRestart:
		l.onRestart(ev.reply)
	case evStop:
		l.onStop("Stop called", false)
	case evAttemptDone:
		l.onAttemptDone(ev.a, ev.err)
	case evSuccessorEnded:
		l.onSuccessorEnded(ev.stopping)
	case evDrained:
		l.onDrained(ev.epoch, ev.err)
	default:
		panic(fmt.Sprintf("daemonize: unknown event %T", ev))
	}
}

// setState moves to the state to, checking the process model.
func (l *lifecycle) setState(to state) {
	allowed := false
	for _, s := range next[l.st] {
		allowed = allowed || s == to
	}
	if !allowed {
		panic(fmt.Sprintf("daemonize: internal error: %s -> %s", l.st, to))
	}
	l.st = to
	switch {
	case (l.running != nil) != (to == restarting):
		panic(fmt.Sprintf("daemonize: internal error: %s with attempt %v", to, l.running))
	case (l.successor != 0) != (to == handedOver):
		panic(fmt.Sprintf("daemonize: internal error: %s with successor %d", to, l.successor))
	}
}

func (l *lifecycle) onSignal(sig os.Signal) {
	switch sig {
	case sigReopen:
		l.w.reopenOutput()
	case sigRestart:
		l.onRestart(nil)
	default:
		// Under a supervisor, one stop often arrives twice: from systemd,
		// which signals every process of the unit, or a terminal, which
		// signals the process group, and passed on by the supervisor.
		now := l.w.now()
		if l.supervised && l.stopSignals > 0 && now.Sub(l.lastStop) < sameStop {
			return
		}
		l.lastStop = now
		l.stopSignals++
		l.onStop(sig.String(), true)
	}
}

// sameStop is how close together two stop signals of a supervised process
// count as one.
const sameStop = 250 * time.Millisecond

// onReady: the program calls Ready.
func (l *lifecycle) onReady() error {
	switch l.st {
	case starting:
	case stopping:
		return fmt.Errorf("daemonize: Ready: %w", ErrStopping)
	default:
		return fmt.Errorf("daemonize: Ready called twice: %w", ErrAlreadyReady)
	}
	if err := l.w.becomeReady(); err != nil {
		return err
	}
	l.deadline = nil
	l.setState(serving)
	l.startIfAsked()
	return nil
}

// onRestart: a restart is asked for, from code with a reply channel or by
// SIGUSR1 without. A request is answered only by an attempt that starts
// the executable after the request arrived; requests made during an
// attempt share one follow-up.
func (l *lifecycle) onRestart(reply chan<- error) {
	refuse := func(err error) {
		if reply != nil {
			reply <- err
		} else {
			l.w.restartRefused(err)
		}
	}
	switch l.st {
	case starting:
		if reply != nil {
			reply <- fmt.Errorf("daemonize: restart before Ready: %w", ErrNotReady)
			return
		}
		l.log.Info("daemonize: restart asked for before Ready; it starts once this process is ready")
		l.wanted = true
	case serving:
		if l.pid1 {
			refuse(ErrNeedSupervise)
			return
		}
		l.ask(reply)
		l.startIfAsked()
	case restarting:
		l.followUp = true
		if reply != nil {
			l.followers = append(l.followers, reply)
		}
	case handedOver:
		if reply != nil {
			reply <- fmt.Errorf("daemonize: restart: this process handed over to pid %d; ask that one: %w", l.successor, ErrHandedOver)
			return
		}
		l.log.Info("daemonize: restart signal passed on to the process that took over", "pid", l.successor)
		l.w.signal(l.successor, sigRestart)
	case tookBack:
		refuse(fmt.Errorf("daemonize: restart refused: this process took the service back after its successor died, and a process hands over once (tableflip starts no second new process after a successful one); stop it and start the service again: %w", ErrHandedOver))
	case stopping:
		refuse(fmt.Errorf("daemonize: restart: %w", ErrStopping))
	}
}

// ask records a request for the next attempt.
func (l *lifecycle) ask(reply chan<- error) {
	l.wanted = true
	if reply != nil {
		l.queued = append(l.queued, reply)
	}
}

// startIfAsked starts the restart that was asked for, once this process
// serves and the previous generation has exited. Until then, it asks that
// generation to hurry.
func (l *lifecycle) startIfAsked() {
	switch {
	case !l.wanted || l.st != serving:
	case l.predecessor:
		l.log.Info("daemonize: restart waits until the previous generation has exited; asking it to hurry")
		l.w.hurryPredecessor()
	default:
		l.restarts++
		a := &attempt{n: l.restarts, began: l.w.now(), waiters: l.queued, abort: make(chan struct{})}
		l.wanted, l.queued = false, nil
		l.running = a
		l.setState(restarting)
		l.w.startAttempt(a)
	}
}

// onStop: SIGTERM, SIGINT or Stop.
func (l *lifecycle) onStop(why string, signal bool) {
	again := signal && l.stopSignals > 1
	switch l.st {
	case starting:
		if signal {
			l.w.exit(1, why+" before ready")
			return
		}
		l.beginStop(why)
	case serving, tookBack:
		l.beginStop(why)
	case restarting:
		switch {
		case again && l.exitAfter != "":
			l.w.exit(1, why+" again, during a restart")
		case again:
			// The aborted attempt ends within moments. Exiting before
			// then would leave a new process that won the race serving,
			// never told of the stop, its socket files removed by this one.
			l.exitAfter = "second " + why
			l.w.abortAttempt(l.running)
		case !l.stopAfter:
			l.stopAfter = true
			l.w.abortAttempt(l.running)
		}
	case handedOver:
		if again {
			l.w.exit(1, "second "+why)
			return
		}
		l.w.hurry()
	case stopping:
		if again {
			l.w.exit(1, "second "+why)
		}
	}
}

func (l *lifecycle) beginStop(why string) {
	l.log.Info("daemonize: stopping", "pid", os.Getpid(), "reason", why)
	l.setState(stopping)
	l.drainEpoch++
	l.w.drain(true, l.drainEpoch)
}

// onAttemptDone: the running attempt ended, with err nil if the new
// process is ready.
func (l *lifecycle) onAttemptDone(a *attempt, err error) {
	l.running = nil
	a.ended = l.w.now()
	a.covers = a.began
	followUp, followers := l.followUp, l.followers
	l.followUp, l.followers = false, nil
	if err != nil {
		l.w.restartFailed(a, err)
		answer(a.waiters, err)
		if l.stopAfter {
			answer(followers, fmt.Errorf("daemonize: restart: %w", ErrStopping))
			if l.exitAfter != "" {
				l.w.exit(1, l.exitAfter)
				return
			}
			l.beginStop("stop signal during a restart")
			return
		}
		l.setState(serving)
		if followUp {
			l.wanted, l.queued = true, followers
			l.startIfAsked()
		}
		return
	}
	changed := l.w.exeChanged(a)
	if !changed {
		// The requests made during the attempt wanted the executable
		// that it started: it answers them too.
		a.covers = a.ended
	}
	l.successor, l.last = a.pid, a
	l.setState(handedOver)
	l.w.handOver(a)
	answer(a.waiters, nil)
	switch {
	case followUp && changed:
		l.log.Info("daemonize: the executable changed during the restart; the new process restarts again once this one has exited", "pid", a.pid)
		answer(followers, fmt.Errorf("daemonize: restart: the executable changed during the restart; pid %d, which took over, runs the restart asked for: %w", a.pid, ErrHandedOver))
		l.w.signal(a.pid, sigRestart)
	case followUp:
		answer(followers, nil)
	}
	if l.stopAfter {
		// The new process won the race with the stop: it is the service
		// now, so the stop is for it too.
		l.log.Info("daemonize: the new process became ready before the stop could end the restart; passing the stop on", "new_pid", a.pid)
		l.w.signal(a.pid, syscall.SIGTERM)
	}
	if l.exitAfter != "" {
		// Handed over first: the service's files are the new process's.
		l.w.exit(1, l.exitAfter)
		return
	}
	l.drainEpoch++
	l.w.drain(false, l.drainEpoch)
}

func answer(waiters []chan<- error, err error) {
	for _, w := range waiters {
		w <- err
	}
}

// onPredecessorGone: the previous generation has exited.
func (l *lifecycle) onPredecessorGone() {
	l.predecessor = false
	l.w.predecessorGone(l.st != starting)
	l.startIfAsked()
}

// onDeadline: a restarted process was not ready in time.
func (l *lifecycle) onDeadline() {
	if l.st == starting {
		l.w.exit(1, "not ready within Options.UpgradeTimeout of the restart that started it")
	}
}

// onSuccessorEnded: the process this one handed over to died, or began a
// clean stop.
func (l *lifecycle) onSuccessorEnded(stopping bool) {
	if l.st != handedOver {
		return
	}
	if stopping {
		l.w.hurry()
		return
	}
	if l.w.takeBack(l.last) {
		l.successor = 0
		l.setState(tookBack)
	}
}

// onDrained: the drain of epoch ended.
func (l *lifecycle) onDrained(epoch int, err error) {
	if epoch != l.drainEpoch || l.st != handedOver && l.st != stopping {
		return
	}
	select {
	case <-l.done:
	default:
		l.drainErr = err
		close(l.done)
	}
}
