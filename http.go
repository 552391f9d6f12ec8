package daemonize

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the drain of an HTTP server: how Serve makes every client
// leave the old generation the way its protocol allows.
//
//   - HTTP/1.x: every response that begins during the drain says
//     "Connection: close", so a client sends nothing more on it. A
//     keep-alive connection that is idle (between requests) is closed once
//     it has been idle for idleGrace, or for hurryGrace when the drain must
//     hurry (a restart or a stop waits): closing an idle connection races
//     with a client that sends a request on it at that very moment, and a
//     client that has just used it is the likeliest to, so recently used
//     connections get a grace.
//   - HTTP/2: the first response on a connection during the drain sends
//     GOAWAY (net/http does, for "Connection: close"); once no HTTP/1
//     connection is left, http.Server.Shutdown sends GOAWAY on the rest and
//     runs the hooks of RegisterOnShutdown. Streams in flight finish.
//   - Long-lived requests (server-sent events, WebSockets, streams) end when
//     their handler sees Daemon.Draining closed; hijacked connections are
//     counted until they close, and closed at the drain deadline.

// How long an idle HTTP/1 connection is left open during a drain before it
// is closed, and when the drain hurries: a client that keeps a connection
// busy sends its next request well within hurryGrace.
const (
	idleGrace  = 250 * time.Millisecond
	hurryGrace = 100 * time.Millisecond
)

// goAwayDelay is how long HTTP/2 clients get, after the first GOAWAY, to
// stop opening streams before net/http's GOAWAY names the last one: a round
// trip, with room (the first went out once the client answered the PING
// that preceded it).
const goAwayDelay = 200 * time.Millisecond

// connKey finds a request's connection in its context.
type connKey struct{}

// Serve serves HTTP requests (HTTP/1.x, and HTTP/2 where srv speaks it)
// from ln with srv until the process must stop serving, and then drains
// without losing a request. ln is a listener from [Daemon.Listen], or one
// that wraps it, such as [crypto/tls.NewListener] for HTTPS. Serve returns
// nil once the drain has stopped it accepting, or the error of
// [http.Server.Serve] if serving fails. Call it in its own goroutine before
// [Daemon.Ready]; [Daemon.Wait] waits for its drain.
//
// The drain stops accepting (the socket stays open in the new process,
// where waiting connections are accepted), answers every further HTTP/1
// request with "Connection: close", closes the idle keep-alive connections
// once they have been idle for a moment, sends HTTP/2 clients a PING and,
// once they have answered it, GOAWAY, runs the hooks of
// [http.Server.RegisterOnShutdown], and waits until every connection has
// closed or the drain deadline passes; then it closes what is left. A handler of a long-lived request ends it when
// [Daemon.Draining] is closed.
//
// Serve sets srv.Handler, srv.ConnState and srv.ConnContext to wrappers
// around the ones already there, and puts its own function around
// net/http's at srv.TLSNextProto["h2"], to see the frames of HTTP/2 over
// TLS. So each call needs an [http.Server] of its own, and a listener of its
// own: to serve one handler on two listeners, give it two servers. A second
// call with the same server or listener returns an error at once.
func (d *Daemon) Serve(srv *http.Server, ln net.Listener) error {
	g := d.fds.served(ln)
	if g == nil {
		return fmt.Errorf("daemonize: Serve: the listener on %s is not from Daemon.Listen, nor wraps one: a restart could not pass it on", ln.Addr())
	}
	s := &httpDrain{d: d, ln: ln, g: g, srv: srv, conns: newConnTracker(), served: make(chan struct{})}
	d.drainMu.Lock()
	if addr, ok := d.serving[srv]; ok {
		d.drainMu.Unlock()
		return fmt.Errorf("daemonize: Serve: this http.Server already serves %s; give each Serve call an http.Server of its own (they may share a handler)", addr)
	}
	if !g.conns.CompareAndSwap(nil, s.conns) {
		d.drainMu.Unlock()
		return fmt.Errorf("daemonize: Serve: the listener on %s is already served; call Serve once per listener", ln.Addr())
	}
	if d.serving == nil {
		d.serving = make(map[*http.Server]net.Addr)
	}
	d.serving[srv] = ln.Addr()
	s.wrap()
	d.servers = append(d.servers, s)
	draining := d.drainingC
	d.drainMu.Unlock()
	select {
	case <-draining:
		// The drain began before this server was registered.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout)
			defer cancel()
			s.drain(ctx)
		}()
	default:
	}
	err := srv.Serve(ln)
	// Judged before served is closed: a take-back, which waits for it,
	// then clears both marks and serves on in a goroutine of its own.
	stopped := s.draining.Load() || g.byLibrary.Load() && errors.Is(err, net.ErrClosed)
	close(s.served)
	if stopped {
		return nil // stopped accepting for a stop or a hand-over; the drain follows
	}
	return err
}

// httpDrain is one server under Serve.
type httpDrain struct {
	d        *Daemon
	ln       net.Listener // as given to Serve
	g        *gatedListener
	srv      *http.Server
	conns    *connTracker
	draining atomic.Bool
	served   chan struct{} // closed when srv.Serve has returned
	once     sync.Once
	err      error // of the drain
}

// wrap installs the server's hooks: its handler marks responses during the
// drain and counts requests; ConnState and ConnContext follow each
// connection's state.
func (s *httpDrain) wrap() {
	next := s.srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	s.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, _ := r.Context().Value(connKey{}).(*trackedConn)
		if tc != nil {
			if r.ProtoMajor == 2 && !tc.h2.Load() {
				tc.h2.Store(true)
			}
			tc.busy.Add(1)
			defer tc.busy.Add(-1)
		}
		// HTTP/1: the client reconnects after this response. HTTP/2:
		// net/http sends GOAWAY for it, unless the drain's two-step
		// GOAWAY (h2goaway.go) is under way.
		if s.draining.Load() && (tc == nil || tc.frames.Load() == nil) {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	connContext := s.srv.ConnContext
	s.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		takeH2(s.srv)
		if tc := trackedOf(c); tc != nil {
			tc.top.Store(&c)
			tc.idleAt.Store(time.Now().UnixNano())
			ctx = context.WithValue(ctx, connKey{}, tc)
		}
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		return ctx
	}
	hook := s.srv.ConnState
	s.srv.ConnState = func(c net.Conn, st http.ConnState) {
		if tc := trackedOf(c); tc != nil {
			if st == http.StateIdle {
				tc.idleAt.Store(time.Now().UnixNano())
			}
			tc.state.Store(int32(st))
		}
		if hc, ok := c.(*h2Conn); ok {
			c = hc.Conn // the user's hook sees the *tls.Conn, as ever
		}
		if hook != nil {
			hook(c, st)
		}
	}
}

// trackedOf finds the tracked connection under c: c itself, or the one a
// TLS (or other) connection wraps.
func trackedOf(c net.Conn) *trackedConn {
	for range 4 {
		if tc, ok := c.(*trackedConn); ok {
			return tc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// drain stops accepting and waits until every connection has closed, or the
// context ends: then it closes what is left and reports the requests that
// were still running.
func (s *httpDrain) drain(ctx context.Context) error {
	s.once.Do(func() { s.err = s.drainOnce(ctx) })
	return s.err
}

func (s *httpDrain) drainOnce(ctx context.Context) error {
	s.draining.Store(true)
	s.ln.Close()
	// Serve returns once its accept loop has ended; every connection it
	// accepted is counted by then.
	select {
	case <-s.served:
	case <-ctx.Done():
	}
	tick := time.NewTicker(hurryGrace / 2)
	defer tick.Stop()
	shutdown := false
	for s.conns.open.Load() > 0 {
		s.goAway()
		// While a take-back can come, the server must stay able to serve
		// again: it ends its HTTP/2 connections itself, and calls
		// Shutdown only for hijacked ones, which may wait for its
		// RegisterOnShutdown hooks.
		keep := s.d.canTakeBack()
		h1Left, hijacked := s.closeIdle(s.d.hurrying(), keep)
		if !h1Left && !shutdown && (!keep || hijacked) && s.goneAway() && s.d.giveUpTakeBack(ctx) {
			// Only HTTP/2 and hijacked connections are left, and the
			// HTTP/2 clients the library could tell have stopped opening
			// streams: net/http's GOAWAY, and the hooks of
			// RegisterOnShutdown, which tell the hijacked ones.
			shutdown = true
			go s.srv.Shutdown(ctx)
		}
		select {
		case <-s.conns.closed:
		case <-tick.C:
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errTakeBack) {
				return errTakeBack // the server serves on
			}
			return s.closeAll()
		}
	}
	if !shutdown {
		// For the hooks of RegisterOnShutdown; nothing is left to close.
		if !s.d.giveUpTakeBack(ctx) {
			return errTakeBack
		}
		s.srv.Shutdown(ctx)
	}
	return nil
}

// goAway asks for the PING and first GOAWAY on the HTTP/2 connections
// whose frames the library sees.
func (s *httpDrain) goAway() {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	for tc := range s.conns.conns {
		tc.goAway()
	}
}

// goneAway reports whether the clients of those connections have had
// goAwayDelay, since their first GOAWAY, to stop opening streams.
func (s *httpDrain) goneAway() bool {
	now := time.Now()
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	for tc := range s.conns.conns {
		if f := tc.frames.Load(); f != nil && !f.settled(now) {
			return false
		}
	}
	return true
}

// closeIdle closes the connections that are idle, and have been for
// idleGrace, or hurryGrace with hurry: the HTTP/1 ones, and with h2 the
// HTTP/2 ones once net/http says so (StateIdle: no stream open; a handler
// that has returned does not make its stream done, the response may still
// wait in the write queue), and not before goAwayDelay after the GOAWAY
// where the library sends one. Without h2, net/http's Shutdown ends those.
// It reports whether HTTP/1 connections (or ones whose protocol is not
// known yet) are left, and hijacked ones.
func (s *httpDrain) closeIdle(hurry, h2 bool) (h1Left, hijacked bool) {
	now, grace := time.Now().UnixNano(), int64(idleGrace)
	if hurry {
		grace = int64(hurryGrace)
	}
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	for tc := range s.conns.conns {
		st := http.ConnState(tc.state.Load())
		isH2 := tc.h2.Load() || tc.frames.Load() != nil
		if st == http.StateHijacked {
			hijacked = true
			continue
		}
		if isH2 && !h2 {
			continue
		}
		h1Left = h1Left || !isH2
		if f := tc.frames.Load(); f != nil && !f.settled(time.Unix(0, now)) {
			continue // its client is told first, with the PING and GOAWAY
		}
		// A request that has arrived, unread, keeps it open, and so do
		// responses kept until the client acknowledges the drain's PING.
		if tc.idleFor(st, isH2, now) >= grace && unread(tc.Conn) == 0 && !tc.holding() {
			if top := tc.top.Load(); top != nil {
				go (*top).Close()
			} else {
				go tc.Close()
			}
		}
	}
	return h1Left, hijacked
}

// idleFor returns how long, at now (Unix nanoseconds), the connection tc
// in state st has been idle, or -1 if it is not. An HTTP/2 connection is
// idle in net/http's StateIdle (no stream open), whatever its frames.
//
// On HTTP/1, bytes read since the connection became idle are the start of
// a request: net/http has them in its buffer, and the connection keeps its
// state until it has parsed the request's header, which a goroutine starved
// of CPU may take a while to do. Only a TLS handshake reads before a new
// connection's first request: such a connection is idle from its last read.
func (tc *trackedConn) idleFor(st http.ConnState, isH2 bool, now int64) int64 {
	switch {
	case st == http.StateIdle && isH2:
		return now - tc.idleAt.Load()
	case isH2 || st != http.StateIdle && st != http.StateNew:
		return -1
	}
	since := tc.idleAt.Load()
	if read := tc.readAt.Load(); read > since {
		if top := tc.top.Load(); st == http.StateIdle || top == nil || *top == net.Conn(tc) {
			return -1
		}
		since = read
	}
	return now - since
}

// closeAll closes every connection left at the drain deadline, and says
// what was still running.
func (s *httpDrain) closeAll() error {
	busy, hijacked := 0, 0
	s.conns.mu.Lock()
	for tc := range s.conns.conns {
		busy += int(tc.busy.Load())
		if http.ConnState(tc.state.Load()) == http.StateHijacked {
			hijacked++
		}
	}
	s.conns.mu.Unlock()
	s.srv.Close()
	s.conns.closeAll()
	if busy == 0 && hijacked == 0 {
		return nil
	}
	return fmt.Errorf("http server on %s: %d requests still running, %d hijacked connections open", s.g.Addr(), busy, hijacked)
}

// resume makes a server that drained for a hand-over serve again, on the
// socket kept for its listener, after the new process died.
func (s *httpDrain) resume(d *Daemon) error {
	// The drain may have ended before the first srv.Serve returned (its
	// listener is closed, so it does at once): Serve judges why it
	// returned by the marks cleared below.
	<-s.served
	if err := s.g.reopen(); err != nil {
		return fmt.Errorf("http server on %s: %w", s.g.Addr(), err)
	}
	s.served, s.once, s.err = make(chan struct{}), sync.Once{}, nil
	s.draining.Store(false)
	go func() {
		err := s.srv.Serve(s.ln)
		close(s.served)
		if !s.draining.Load() && !s.g.byLibrary.Load() {
			d.log.Error("daemonize: serve after taking the service back", "err", err)
		}
	}()
	return nil
}
