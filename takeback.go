package daemonize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// errTakeBack ends a hand-over drain when this process takes the service
// back.
var errTakeBack = errors.New("daemonize: taking the service back")

// canTakeBack reports whether this process could serve again after handing
// over: the library must run all of its servers (every listener under
// Serve, no Options.Stop, no Stopping), since a stop the program carried
// out itself cannot be undone.
func (d *Daemon) canTakeBack() bool {
	return d.opts.Stop == nil && !d.stoppingUsed.Load() && d.fds.allServed()
}

// drainForSuccessor drains the servers after a hand-over while watching the
// new process, pid. If it dies before the drain is over, without having
// begun a clean stop (it crashed, say, right after it was ready), this
// process takes the service back: its listening sockets were kept, and it
// serves again. Otherwise the process stops as after any hand-over.
func (d *Daemon) drainForSuccessor(pid int, began time.Time) {
	cause, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ctx, stop := context.WithTimeout(cause, d.opts.DrainTimeout)
	defer stop()
	d.mu.Lock()
	servers := slices.Clone(d.servers)
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Go(func() { s.drain(ctx) })
		}
		wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	stopC := d.stopC
	for {
		select {
		case <-done:
			d.fds.releaseKept()
			d.beginStop("handed over to the new process")
			return
		case <-stopC:
			stopC, tick.C = nil, nil // stopping on purpose: no take-back
		case <-tick.C:
			if processExists(pid) || d.handoff.stopping() {
				continue
			}
			cancel(errTakeBack)
			<-done
			d.takeBack(pid, began)
			return
		}
	}
}

// takeBack makes this process serve the service again after its successor
// died: its servers accept on the kept sockets, and the pid file, the status
// file and systemd name it again. tableflip hands a process's sockets over
// once, so this process cannot restart again.
func (d *Daemon) takeBack(pid int, began time.Time) {
	d.mu.Lock()
	d.successor, d.spent = 0, true
	servers := slices.Clone(d.servers)
	d.mu.Unlock()
	for _, s := range servers {
		d.logError(s.resume(d))
	}
	why := fmt.Sprintf("new process %d exited after it took over; pid %d took the service back, and serves the old binary until it is stopped and started again", pid, os.Getpid())
	if d.pid != nil {
		d.logError(d.pid.write(os.Getpid()))
	}
	d.setStatus(func(st *Status) {
		st.State, st.Previous, st.Restarts = StateReady, nil, d.restarts
		st.LastRestart = &RestartStatus{Attempt: d.restarts, Started: began, Ended: time.Now(), OldPID: os.Getpid(), NewPID: pid, Error: why}
	})
	d.logError(d.notify.send(fmt.Sprintf("MAINPID=%d", os.Getpid()), "READY=1", "STATUS="+why))
	d.notify.startWatchdog(0, d.logError)
	d.log.Error("daemonize: " + why)
}
