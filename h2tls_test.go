package daemonize

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// trackingListener tracks what it accepts, as Listen's listeners do under
// Serve.
type trackingListener struct {
	net.Listener
	t        *connTracker
	accepted *atomic.Int32
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	return l.t.track(c), nil
}

// TestH2OverTLSFollowed serves HTTP/2 over TLS through tls.NewListener, as
// Serve does: the drain sees the connection's frames, requests still get
// their TLS state, the user's ConnState hook still gets the *tls.Conn, and
// after the drain's PING and GOAWAY Go's client opens a new connection.
func TestH2OverTLSFollowed(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	cfg := &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	client := ts.Client()
	ts.Close()
	defer client.CloseIdleConnections()

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hooked []string
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || r.TLS.NegotiatedProtocol != "h2" {
				http.Error(w, fmt.Sprintf("TLS state %+v", r.TLS), http.StatusInternalServerError)
				return
			}
			io.WriteString(w, "ok")
		}),
		ConnState: func(c net.Conn, _ http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			hooked = append(hooked, fmt.Sprintf("%T", c))
		},
	}
	conns := newConnTracker()
	var accepted atomic.Int32
	s := &httpDrain{srv: srv, conns: conns}
	s.wrap()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tls.NewListener(trackingListener{raw, conns, &accepted}, cfg)) }()
	defer func() {
		srv.Close()
		<-served
	}()

	get := func() {
		t.Helper()
		resp, err := client.Get("https://" + raw.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "ok" {
			t.Fatalf("GET / over %s: %s %q", resp.Proto, resp.Status, body)
		}
	}
	get()
	var frames *h2Frames
	conns.mu.Lock()
	for tc := range conns.conns {
		frames = tc.frames.Load()
	}
	conns.mu.Unlock()
	if frames == nil {
		t.Fatal("the frames of HTTP/2 over TLS are not followed")
	}
	s.goAway()
	deadline := time.Now().Add(10 * time.Second)
	for !frames.sentGoAway() {
		if time.Now().After(deadline) {
			t.Fatal("the GOAWAY was not sent")
		}
		time.Sleep(time.Millisecond)
	}
	// The client reads the GOAWAY on its own time: a request sent before
	// that still goes on the first connection, and is served there.
	for accepted.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no second connection after the GOAWAY")
		}
		get()
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("%d connections after the GOAWAY, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, typ := range hooked {
		if typ != "*tls.Conn" {
			t.Errorf("ConnState got a %s, want a *tls.Conn", typ)
		}
	}
}
