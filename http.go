package daemonize

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Serve serves HTTP/1.x requests from ln with srv until the process must stop
// serving, then drains without losing a request, and returns nil. It returns
// early with the error of [http.Server.Serve] if serving fails. Call it in
// its own goroutine before [Daemon.Ready]; [Daemon.Wait] waits for its drain.
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
	s := &httpDrain{ln: ln, srv: srv, conns: make(map[net.Conn]http.ConnState), served: make(chan struct{})}
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	hook := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.track(c, st)
		if hook != nil {
			hook(c, st)
		}
	}
	d.onStop(s.drain)
	select {
	case <-d.stopC:
		// Stopping began before the drain was registered.
		go s.drain(context.Background())
	default:
	}
	err := srv.Serve(ln)
	close(s.served)
	if s.draining.Load() {
		return nil
	}
	return err
}

// httpDrain tracks one server's connections so that it can drain them.
type httpDrain struct {
	ln       net.Listener
	srv      *http.Server
	draining atomic.Bool
	served   chan struct{} // closed when srv.Serve has returned

	mu      sync.Mutex
	conns   map[net.Conn]http.ConnState
	changed chan struct{} // closed when a connection closes while draining
	once    sync.Once
}

func (s *httpDrain) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
		if s.changed != nil {
			close(s.changed)
			s.changed = nil
		}
	default:
		s.conns[c] = st
	}
}

// drain stops accepting and waits until every connection has closed, or the
// context ends: then it closes the idle ones and reports the busy ones.
func (s *httpDrain) drain(ctx context.Context) error {
	var err error
	s.once.Do(func() { err = s.drainOnce(ctx) })
	return err
}

func (s *httpDrain) drainOnce(ctx context.Context) error {
	s.draining.Store(true)
	s.ln.Close()
	// Serve returns once its accept loop has ended; every connection it
	// accepted before is tracked by then.
	select {
	case <-s.served:
	case <-ctx.Done():
	}
	for {
		s.mu.Lock()
		n := len(s.conns)
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		busy := 0
		for _, st := range s.conns {
			if st == http.StateActive {
				busy++
			}
		}
		s.mu.Unlock()
		if n == 0 {
			s.srv.Close()
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.srv.Close()
			if busy == 0 {
				return nil
			}
			return fmt.Errorf("http server on %s: %d requests still running", s.ln.Addr(), busy)
		}
	}
}
