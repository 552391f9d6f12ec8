package daemonize

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestIdleFor checks when the drain may close an HTTP/1 connection as
// idle: never once bytes of a request have been read since it became idle
// (net/http holds them, not yet parsed), and for a new TLS connection, only
// from the end of its handshake.
func TestIdleFor(t *testing.T) {
	now := time.Now()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	newConn := func(tlsTop bool, idleAt, readAt int64) *trackedConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		tc := &trackedConn{Conn: a, t: newConnTracker()}
		var top net.Conn = tc
		if tlsTop {
			top = tls.Server(tc, &tls.Config{})
		}
		tc.top.Store(&top)
		tc.idleAt.Store(idleAt)
		tc.readAt.Store(readAt)
		return tc
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := newConnTracker().track(a).(*trackedConn).idleFor(http.StateNew, false, now.UnixNano()); got > int64(time.Second) {
		t.Errorf("a connection just accepted, before net/http's ConnContext: idle for %v", time.Duration(got))
	}
	for _, tc := range []struct {
		name    string
		tls     bool
		st      http.ConnState
		h2      bool
		idleAt  int64
		readAt  int64
		wantMin time.Duration // -1: not idle
	}{
		{"idle keep-alive", false, http.StateIdle, false, ago(time.Second), ago(2 * time.Second), time.Second},
		{"request read, not parsed", false, http.StateIdle, false, ago(time.Second), ago(time.Millisecond), -1},
		{"new, silent", false, http.StateNew, false, ago(time.Second), 0, time.Second},
		{"new, request read, not parsed", false, http.StateNew, false, ago(time.Second), ago(500 * time.Millisecond), -1},
		{"new TLS, handshake done", true, http.StateNew, false, ago(time.Second), ago(300 * time.Millisecond), 300 * time.Millisecond},
		{"TLS keep-alive, request read", true, http.StateIdle, false, ago(time.Second), ago(time.Millisecond), -1},
		{"active", false, http.StateActive, false, ago(time.Second), 0, -1},
		{"HTTP/2, no stream open, frames read", false, http.StateIdle, true, ago(time.Second), ago(time.Millisecond), time.Second},
		{"HTTP/2, new", false, http.StateNew, true, ago(time.Second), 0, -1},
	} {
		c := newConn(tc.tls, tc.idleAt, tc.readAt)
		got := time.Duration(c.idleFor(tc.st, tc.h2, now.UnixNano()))
		if tc.wantMin < 0 && got >= 0 || tc.wantMin >= 0 && (got < tc.wantMin || got > tc.wantMin+100*time.Millisecond) {
			t.Errorf("%s: idle for %v, want %v", tc.name, got, tc.wantMin)
		}
	}
}
