package daemonize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// This file is the take-back (Options.TakeBack): a process that handed over
// keeps its listening sockets while it drains, and serves again if the new
// process dies without a clean stop.

// errTakeBack ends a hand-over drain when this process takes the service
// back.
var errTakeBack = errors.New("daemonize: taking the service back")

// canTakeBack reports whether this process could serve again after handing
// over: the option is set, the library runs all of its servers (every
// listener under Serve, no OnDrain function), since a drain the program
// carried out itself cannot be undone, and none of them was shut down.
func (d *Daemon) canTakeBack() bool {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	return d.canTakeBackLocked()
}

func (d *Daemon) canTakeBackLocked() bool {
	return d.opts.TakeBack && len(d.onDrain) == 0 && !d.hurried.Load() && !d.shutDown && d.fds.allServed()
}

// giveUpTakeBack is called by a server's drain before it calls
// http.Server.Shutdown, after which it cannot serve again. It reports false
// if a take-back has begun instead.
func (d *Daemon) giveUpTakeBack(ctx context.Context) bool {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	d.shutDown = true
	return true
}

// watchSuccessor waits until the process of generation gen, which took
// over, dies or begins a clean stop, and tells the lifecycle which. It
// waits on the lock that process holds while it serves: the kernel
// releases it the moment the process dies.
func (d *Daemon) watchSuccessor(gen int) {
	stopping, err := d.handoff.watchSuccessor(gen)
	if err != nil {
		d.log.Warn("daemonize: cannot watch the new process; no take-back", "err", err)
		return
	}
	d.life.send(evSuccessorEnded{stopping})
}

// takeBack makes this process serve the service again after its successor,
// of attempt a, died: its servers accept on the kept sockets, and the pid
// file, the status file and systemd name it again.
func (d *Daemon) takeBack(a *attempt) bool {
	d.drainMu.Lock()
	if !d.canTakeBackLocked() {
		d.drainMu.Unlock()
		return false
	}
	d.cancelDrain(errTakeBack)
	done := d.drainsDone
	d.drainMu.Unlock()
	<-done
	d.drainMu.Lock()
	servers := slices.Clone(d.servers)
	d.drainingC = make(chan struct{})
	d.drainMu.Unlock()
	for _, s := range servers {
		d.logError(s.resume(d))
	}
	d.successor.Store(0)
	why := fmt.Sprintf("new process %d exited after it took over; pid %d took the service back, and serves the old binary until it is stopped and started again", a.pid, os.Getpid())
	if d.pid != nil {
		d.logError(d.pid.write(os.Getpid()))
	}
	d.status.set(func(st *Status) {
		st.PID, st.Generation, st.State, st.Previous, st.Restarts = os.Getpid(), d.gen, StateReady, nil, a.n
		st.LastRestart = &RestartStatus{Attempt: a.n, Started: a.began, Ended: time.Now(), Covers: a.covers, OldPID: os.Getpid(), NewPID: a.pid, Error: why}
	})
	d.logError(d.notify.send(fmt.Sprintf("MAINPID=%d", os.Getpid()), "READY=1", "STATUS="+why))
	d.notify.startWatchdog(0, d.logError)
	d.log.Error("daemonize: " + why)
	return true
}
