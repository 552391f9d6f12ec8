package daemonize

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Serve serves HTTP/1.x requests from ln with srv until the process must stop
// serving, and then drains without losing a request. It returns nil once it
// has stopped accepting, or the error of [http.Server.Serve] if serving
// fails. Call it in its own goroutine before [Daemon.Ready]; [Daemon.Wait]
// waits for its drain.
//
// The drain stops accepting (the socket stays open in the new process, where
// waiting connections are accepted), answers every further request with
// "Connection: close", and waits for each connection to close. Unlike
// [http.Server.Shutdown], it never closes an idle keep-alive connection
// while the drain runs, since a client may be sending its next request on it
// at that very moment and would see the connection closed without a
// response. Idle connections left at the drain deadline are closed then.
//
// Serve sets srv.Handler and srv.ConnState to wrappers around the ones
// already there.
func (d *Daemon) Serve(srv *http.Server, ln net.Listener) error {
	s := &httpDrain{ln: ln, srv: srv, served: make(chan struct{}), closed: make(chan struct{}, 1)}
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.busy.Add(1)
		defer s.busy.Add(-1)
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	hook := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.open.Add(-1)
			select {
			case s.closed <- struct{}{}:
			default:
			}
		}
		if hook != nil {
			hook(c, st)
		}
	}
	if g, ok := ln.(*gatedListener); ok {
		g.served.Store(true)
	}
	d.mu.Lock()
	d.servers = append(d.servers, s)
	d.mu.Unlock()
	d.onStop(s.drain)
	select {
	case <-d.stopC:
		// Stopping began before the drain was registered.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout)
			defer cancel()
			s.drain(ctx)
		}()
	default:
	}
	err := srv.Serve(ln)
	close(s.served)
	if s.draining.Load() || errors.Is(err, net.ErrClosed) && closedByLibrary(ln) {
		return nil // stopped accepting for a stop or a hand-over; the drain follows
	}
	return err
}

// httpDrain counts one server's connections and requests so that it can
// drain them. Counters keep the cost per request to a few atomic
// operations: the server itself knows the connections, to close them.
type httpDrain struct {
	ln       net.Listener
	srv      *http.Server
	draining atomic.Bool
	open     atomic.Int64  // connections not closed yet
	busy     atomic.Int64  // requests in the handler
	closed   chan struct{} // a connection closed
	served   chan struct{} // closed when srv.Serve has returned
	once     sync.Once
	err      error // of the drain
}

// drain stops accepting and waits until every connection has closed, or the
// context ends: then it closes the idle ones and reports the busy ones.
func (s *httpDrain) drain(ctx context.Context) error {
	s.once.Do(func() { s.err = s.drainOnce(ctx) })
	return s.err
}

func (s *httpDrain) drainOnce(ctx context.Context) error {
	s.draining.Store(true)
	s.ln.Close()
	// Serve returns once its accept loop has ended; every connection it
	// accepted before is counted by then.
	select {
	case <-s.served:
	case <-ctx.Done():
	}
	for s.open.Load() > 0 {
		select {
		case <-s.closed:
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errTakeBack) {
				return errTakeBack // the server serves on
			}
			busy := s.busy.Load()
			s.srv.Close()
			if busy == 0 {
				return nil
			}
			return fmt.Errorf("http server on %s: %d requests still running", s.ln.Addr(), busy)
		}
	}
	s.srv.Close()
	return nil
}

// resume makes a server that drained for a hand-over serve again, on the
// socket kept for its listener, after the new process died.
func (s *httpDrain) resume(d *Daemon) error {
	g, ok := s.ln.(*gatedListener)
	if !ok {
		return errors.New("not a listener from Listen")
	}
	ng, err := d.fds.reopen(g)
	if err != nil {
		return fmt.Errorf("http server on %s: %w", g.Addr(), err)
	}
	s.ln, s.served, s.once, s.err = ng, make(chan struct{}), sync.Once{}, nil
	s.draining.Store(false)
	go func() {
		err := s.srv.Serve(ng)
		close(s.served)
		if !s.draining.Load() && !closedByLibrary(ng) {
			d.log.Error("daemonize: serve after taking the service back", "err", err)
		}
	}()
	return nil
}
