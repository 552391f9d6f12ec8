package daemonize

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeWorld records what the lifecycle asks of the world, and lets a test
// decide the answers. Events go straight to the lifecycle's handlers, in
// the test's goroutine: each case is a sequence, without timing.
type fakeWorld struct {
	t        *testing.T
	clock    time.Time
	calls    []string
	attempts []*attempt
	changed  bool  // exeChanged's answer
	canTake  bool  // takeBack's answer
	readyErr error // becomeReady's answer
	exited   int   // the code of exit, -1 if not called
	drained  []bool
}

func newFake(t *testing.T) *fakeWorld {
	return &fakeWorld{t: t, clock: time.Unix(1_000_000, 0), exited: -1}
}

func (f *fakeWorld) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeWorld) now() time.Time     { f.clock = f.clock.Add(time.Millisecond); return f.clock }
func (f *fakeWorld) becomeReady() error { f.call("becomeReady"); return f.readyErr }
func (f *fakeWorld) startAttempt(a *attempt) {
	f.call("startAttempt %d", a.n)
	f.attempts = append(f.attempts, a)
}
func (f *fakeWorld) abortAttempt(a *attempt)             { f.call("abortAttempt %d", a.n) }
func (f *fakeWorld) exeChanged(*attempt) bool            { return f.changed }
func (f *fakeWorld) handOver(a *attempt)                 { f.call("handOver %d to %d", a.n, a.pid) }
func (f *fakeWorld) restartFailed(a *attempt, err error) { f.call("restartFailed %d", a.n) }
func (f *fakeWorld) restartRefused(err error)            { f.call("restartRefused") }
func (f *fakeWorld) drain(final bool, epoch int) {
	f.call("drain final=%v", final)
	f.drained = append(f.drained, final)
}
func (f *fakeWorld) hurry()                 { f.call("hurry") }
func (f *fakeWorld) takeBack(*attempt) bool { f.call("takeBack"); return f.canTake }
func (f *fakeWorld) hurryPredecessor()      { f.call("hurryPredecessor") }
func (f *fakeWorld) predecessorGone(ready bool) {
	f.call("predecessorGone ready=%v", ready)
}
func (f *fakeWorld) reopenOutput()                      { f.call("reopenOutput") }
func (f *fakeWorld) signal(pid int, sig syscall.Signal) { f.call("signal %d %v", pid, sig) }
func (f *fakeWorld) exit(code int, why string)          { f.call("exit %d", code); f.exited = code }

// count returns how many calls start with prefix.
func (f *fakeWorld) count(prefix string) int {
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeWorld) has(call string) bool { return slices.Contains(f.calls, call) }

// life makes a lifecycle on a fake world; parent says whether it was
// started by a restart whose old process still drains.
func life(t *testing.T, parent bool) (*lifecycle, *fakeWorld) {
	f := newFake(t)
	var gone chan struct{}
	if parent {
		gone = make(chan struct{})
	}
	return newLifecycle(f, slog.New(slog.DiscardHandler), 0, gone), f
}

// ready runs Ready through the lifecycle.
func ready(t *testing.T, l *lifecycle) {
	t.Helper()
	if err := l.onReady(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// restart asks for a restart from code and returns its reply channel.
func restart(l *lifecycle) chan error {
	reply := make(chan error, 1)
	l.handle(evRestart{reply})
	return reply
}

// finish ends the running attempt, with err, the new process being pid.
func finish(l *lifecycle, pid int, err error) {
	a := l.running
	a.pid = pid
	l.handle(evAttemptDone{a, err})
}

func reply(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	default:
		t.Fatal("no reply")
		return nil
	}
}

func noReply(t *testing.T, c chan error) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("replied %v too soon", err)
	default:
	}
}

func TestLifecycleSignalStorm(t *testing.T) {
	l, f := life(t, false)
	ready(t, l)
	for range 20 {
		l.onSignal(sigRestart)
	}
	if f.count("startAttempt") != 1 || l.st != restarting || !l.followUp {
		t.Fatalf("after 20 signals: %v, state %s, follow-up %v", f.calls, l.st, l.followUp)
	}
	finish(l, 0, errors.New("new binary broken"))
	if f.count("startAttempt") != 2 || l.st != restarting {
		t.Fatalf("after a failed attempt with requests waiting: %v, state %s", f.calls, l.st)
	}
	f.changed = false
	finish(l, 42, nil)
	if f.count("startAttempt") != 2 || l.st != handedOver || l.successor != 42 {
		t.Errorf("a storm made %d attempts; state %s, successor %d; want 2, handed over to 42", f.count("startAttempt"), l.st, l.successor)
	}
}

func TestLifecycleRequestsAnsweredByTheirAttempt(t *testing.T) {
	t.Run("failure runs the follow-up", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		first := restart(l)
		second := restart(l) // during the first attempt
		finish(l, 7, errors.New("broken"))
		if err := reply(t, first); err == nil {
			t.Errorf("first request: nil, want the failure")
		}
		noReply(t, second)
		if f.count("startAttempt") != 2 {
			t.Fatalf("calls %v, want a follow-up attempt", f.calls)
		}
		finish(l, 8, nil)
		if err := reply(t, second); err != nil {
			t.Errorf("second request: %v, want the follow-up's success", err)
		}
	})
	t.Run("success onto the same executable answers both", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		first, second := restart(l), restart(l)
		f.changed = false
		finish(l, 9, nil)
		if err := reply(t, first); err != nil {
			t.Errorf("first: %v", err)
		}
		if err := reply(t, second); err != nil {
			t.Errorf("second: %v", err)
		}
		if a := f.attempts[0]; !a.covers.Equal(a.ended) {
			t.Errorf("the attempt covers requests until %v, want its end %v", a.covers, a.ended)
		}
		if f.count("signal") != 0 {
			t.Errorf("calls %v: no follow-up wanted", f.calls)
		}
	})
	t.Run("success onto a replaced executable passes the follow-up on", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		first := restart(l)
		l.onSignal(sigRestart) // a deploy's signal during the attempt
		second := restart(l)
		f.changed = true
		finish(l, 10, nil)
		if err := reply(t, first); err != nil {
			t.Errorf("first: %v", err)
		}
		if err := reply(t, second); !errors.Is(err, ErrHandedOver) {
			t.Errorf("second: %v, want ErrHandedOver: the new process runs it", err)
		}
		if !f.has(fmt.Sprintf("signal 10 %v", sigRestart)) {
			t.Errorf("calls %v: want SIGUSR1 passed to the new process", f.calls)
		}
		if a := f.attempts[0]; !a.covers.Equal(a.began) {
			t.Errorf("the attempt covers requests until %v, want its start %v", a.covers, a.began)
		}
	})
}

func TestLifecycleBeforeReady(t *testing.T) {
	l, f := life(t, false)
	if err := reply(t, restart(l)); !errors.Is(err, ErrNotReady) {
		t.Errorf("Restart before Ready: %v", err)
	}
	l.onSignal(sigRestart) // kept until ready
	if f.count("startAttempt") != 0 {
		t.Fatalf("calls %v before ready", f.calls)
	}
	ready(t, l)
	if f.count("startAttempt") != 1 {
		t.Errorf("calls %v: the signal before Ready starts its restart once ready", f.calls)
	}
	if err := l.onReady(); !errors.Is(err, ErrAlreadyReady) {
		t.Errorf("Ready twice: %v", err)
	}

	l, f = life(t, false)
	l.onSignal(syscall.SIGTERM)
	if f.exited != 1 {
		t.Errorf("SIGTERM before ready: calls %v, want exit 1", f.calls)
	}

	l, f = life(t, false)
	l.handle(evStop{})
	if l.st != stopping || !f.has("drain final=true") {
		t.Errorf("Stop before ready: state %s, calls %v", l.st, f.calls)
	}
	if err := l.onReady(); !errors.Is(err, ErrStopping) {
		t.Errorf("Ready after Stop: %v", err)
	}
}

func TestLifecycleStopDuringRestart(t *testing.T) {
	t.Run("the new process is stopped", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		req := restart(l)
		l.onSignal(syscall.SIGTERM)
		if !f.has("abortAttempt 1") || l.st != restarting {
			t.Fatalf("calls %v, state %s", f.calls, l.st)
		}
		l.onSignal(sigRestart) // refused by the stop that waits
		finish(l, 5, fmt.Errorf("stopped: %w", ErrStopping))
		if err := reply(t, req); !errors.Is(err, ErrStopping) {
			t.Errorf("the restart's caller: %v", err)
		}
		if l.st != stopping || !f.has("drain final=true") || f.count("startAttempt") != 1 {
			t.Errorf("state %s, calls %v", l.st, f.calls)
		}
	})
	for _, won := range []bool{false, true} {
		t.Run(fmt.Sprintf("a second stop, the new process won %t", won), func(t *testing.T) {
			l, f := life(t, false)
			ready(t, l)
			l.onSignal(sigRestart)
			l.onSignal(syscall.SIGTERM)
			l.onSignal(syscall.SIGTERM)
			if f.exited != -1 || !f.has("abortAttempt 1") {
				t.Fatalf("calls %v: want the attempt aborted, and no exit before it ends", f.calls)
			}
			if won {
				finish(l, 7, nil)
				if !f.has("handOver 1 to 7") || !f.has("signal 7 terminated") {
					t.Errorf("calls %v: the new process is the service, and the stop is for it", f.calls)
				}
			} else {
				finish(l, 7, fmt.Errorf("stopped: %w", ErrStopping))
			}
			if f.exited != 1 || f.count("drain") != 0 {
				t.Errorf("calls %v: want exit 1 without a drain", f.calls)
			}
		})
	}
	t.Run("a third stop exits at once", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		l.onSignal(sigRestart)
		for range 3 {
			l.onSignal(syscall.SIGTERM)
		}
		if f.exited != 1 {
			t.Errorf("calls %v: want exit 1", f.calls)
		}
	})
	t.Run("the new process won the race", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		l.onSignal(sigRestart)
		l.onSignal(syscall.SIGTERM)
		finish(l, 6, nil)
		if l.st != handedOver || !f.has("signal 6 terminated") || !f.has("drain final=false") {
			t.Errorf("state %s, calls %v: the stop is for the new process, which serves", l.st, f.calls)
		}
		l.onSignal(syscall.SIGTERM)
		if f.exited != 1 {
			t.Errorf("second SIGTERM: calls %v, want exit at once", f.calls)
		}
	})
}

func TestLifecycleHandedOver(t *testing.T) {
	l, f := life(t, false)
	ready(t, l)
	l.onSignal(sigRestart)
	finish(l, 11, nil)
	if err := reply(t, restart(l)); !errors.Is(err, ErrHandedOver) {
		t.Errorf("Restart after handing over: %v", err)
	}
	l.onSignal(sigRestart)
	if !f.has(fmt.Sprintf("signal 11 %v", sigRestart)) {
		t.Errorf("calls %v: SIGUSR1 passes on to the new process", f.calls)
	}
	l.onSignal(syscall.SIGTERM)
	if !f.has("hurry") || f.exited != -1 {
		t.Errorf("calls %v: a stop signal to a draining process hurries it", f.calls)
	}
	l.handle(evDrained{epoch: l.drainEpoch - 1})
	select {
	case <-l.done:
		t.Fatal("a stale drain ended the process")
	default:
	}
	l.handle(evDrained{epoch: l.drainEpoch})
	select {
	case <-l.done:
	default:
		t.Fatal("the drain's end did not end the process")
	}
}

func TestLifecycleSuccessorDies(t *testing.T) {
	t.Run("take back", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		l.onSignal(sigRestart)
		finish(l, 12, nil)
		f.canTake = true
		l.handle(evSuccessorEnded{stopping: false})
		if l.st != tookBack || l.successor != 0 {
			t.Fatalf("state %s, successor %d", l.st, l.successor)
		}
		if err := reply(t, restart(l)); !errors.Is(err, ErrHandedOver) {
			t.Errorf("Restart after a take-back: %v", err)
		}
		l.onSignal(sigRestart)
		if f.count("restartRefused") != 1 || f.count("startAttempt") != 1 {
			t.Errorf("calls %v: SIGUSR1 after a take-back is refused where a deploy tool sees it", f.calls)
		}
		l.handle(evStop{})
		if l.st != stopping {
			t.Errorf("Stop after a take-back: state %s", l.st)
		}
	})
	t.Run("clean stop hurries", func(t *testing.T) {
		l, f := life(t, false)
		ready(t, l)
		l.onSignal(sigRestart)
		finish(l, 13, nil)
		l.handle(evSuccessorEnded{stopping: true})
		if l.st != handedOver || !f.has("hurry") || f.has("takeBack") {
			t.Errorf("state %s, calls %v", l.st, f.calls)
		}
	})
}

func TestLifecyclePredecessor(t *testing.T) {
	t.Run("restart waits for it, and hurries it", func(t *testing.T) {
		l, f := life(t, true)
		ready(t, l)
		req := restart(l)
		if !f.has("hurryPredecessor") || f.count("startAttempt") != 0 {
			t.Fatalf("calls %v", f.calls)
		}
		noReply(t, req)
		l.onPredecessorGone()
		if f.count("startAttempt") != 1 || !f.has("predecessorGone ready=true") {
			t.Errorf("calls %v: the restart starts once the old process is gone", f.calls)
		}
	})
	t.Run("parent dies first", func(t *testing.T) {
		l, f := life(t, true)
		l.onPredecessorGone()
		if !f.has("predecessorGone ready=false") || f.exited != -1 {
			t.Fatalf("calls %v", f.calls)
		}
		l.onDeadline()
		if f.exited != 1 {
			t.Errorf("calls %v: not ready by the deadline, want exit 1", f.calls)
		}
	})
	t.Run("deadline after ready does nothing", func(t *testing.T) {
		l, f := life(t, true)
		ready(t, l)
		l.onDeadline()
		if f.exited != -1 {
			t.Errorf("calls %v", f.calls)
		}
	})
}

func TestLifecyclePID1(t *testing.T) {
	l, f := life(t, false)
	l.pid1 = true
	ready(t, l)
	if err := reply(t, restart(l)); !errors.Is(err, ErrNeedSupervise) {
		t.Errorf("Restart as PID 1: %v", err)
	}
	l.onSignal(sigRestart)
	if f.count("startAttempt") != 0 || l.st != serving || f.count("restartRefused") != 1 {
		t.Errorf("calls %v, state %s: PID 1 refuses where a deploy tool sees it, and keeps serving", f.calls, l.st)
	}
}

func TestLifecycleTransitions(t *testing.T) {
	l, _ := life(t, false)
	defer func() {
		if recover() == nil {
			t.Errorf("starting -> handed over did not panic")
		}
	}()
	l.setState(handedOver)
}

func TestLifecycleSupervisedStopTwice(t *testing.T) {
	l, f := life(t, false)
	l.supervised = true
	ready(t, l)
	l.onSignal(syscall.SIGTERM)
	l.onSignal(syscall.SIGTERM) // the same stop, passed on by the supervisor
	if f.exited != -1 || l.st != stopping {
		t.Fatalf("calls %v: two signals of one stop", f.calls)
	}
	f.clock = f.clock.Add(time.Second)
	l.onSignal(syscall.SIGTERM)
	if f.exited != 1 {
		t.Errorf("calls %v: a second stop later exits at once", f.calls)
	}
}
