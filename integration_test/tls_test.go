//go:build linux

package integration_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// useTLS makes s serve HTTPS (h2 and http/1.1 by ALPN) with a throw-away
// certificate, and returns a client that trusts it and opens a connection
// per request.
func useTLS(t *testing.T, s *server) *http.Client {
	t.Helper()
	cert, key, err := realclient.SelfSignedCert(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.args = append(s.args, "-tls-cert", cert, "-tls-key", key)
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, DisableKeepAlives: true},
		Timeout:   60 * time.Second,
	}
}

// getTLS fetches path over HTTPS with c, and returns the body and the
// protocol spoken.
func (s *server) getTLS(c *http.Client, path string) (body, proto string) {
	s.t.Helper()
	resp, err := c.Get("https://" + s.addr + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s %q %v", path, resp.Status, b, err)
	}
	return string(b), resp.Proto
}

// startTLS launches the server detached, as start does, and checks that it
// serves HTTPS.
func (s *server) startTLS(c *http.Client) int {
	s.t.Helper()
	if code, out := s.launch(); code != 0 {
		s.t.Fatalf("launcher exited %d: %s\nstderr file:\n%s", code, out, s.read(s.stderr))
	}
	pid := s.mustPID()
	if body, _ := s.getTLS(c, "/"); !strings.Contains(body, fmt.Sprintf("pid=%d ", pid)) {
		s.t.Fatalf("GET / right after the launcher returned: %q, want pid=%d", body, pid)
	}
	return pid
}

// TestTLSListenerAcrossRestartsAndTakeBack serves HTTPS through
// tls.NewListener around Listen's listener, across three restarts, then
// restarts onto a binary that crashes once it took over: the old process,
// which still drains a request, takes the service back and serves HTTPS
// again on the socket it kept, through the same TLS listener.
func TestTLSListenerAcrossRestartsAndTakeBack(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	gate := s.crashAfterGate()
	c := useTLS(t, s)
	pid := s.startTLS(c)
	for gen := 1; gen <= 4; gen++ {
		body, proto := s.getTLS(c, "/")
		if !strings.Contains(body, fmt.Sprintf("pid=%d generation=%d ", pid, gen)) || proto != "HTTP/2.0" {
			t.Errorf("generation %d: GET / over %s = %q, want pid %d over HTTP/2.0", gen, proto, body, pid)
		}
		if gen < 4 {
			pid, _, _ = s.restart(pid)
		}
	}
	slow := inFlightWith(t, c, pid, "https://"+s.addr+"/sleep?d=2s")
	child, crash := s.handOverToCrasher(pid, gate) // the helper speaks TLS with the same flags
	if body, _ := s.getTLS(c, "/"); !strings.Contains(body, fmt.Sprintf("pid=%d ", child)) {
		t.Errorf("GET / after the hand-over = %q, want the new process %d", body, child)
	}
	crash()
	for range 3 {
		body, proto := s.getTLS(c, "/")
		if !strings.Contains(body, fmt.Sprintf("pid=%d generation=4 ", pid)) || proto != "HTTP/2.0" {
			t.Errorf("after the take-back: GET / over %s = %q, want pid %d over HTTP/2.0", proto, body, pid)
		}
	}
	if err := <-slow; err != nil {
		t.Errorf("the request in flight on the old process: %v", err)
	}
	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	s.checkPIDFileGone()
}

// sseEvent is one event of GET /stream.
var sseEvent = regexp.MustCompile(`^data: pid=(\d+) n=(\d+)$`)

// checkStream checks that body is whole events from pid, numbered from 1
// on, and returns how many.
func checkStream(t *testing.T, body string, pid int) int {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Errorf("the stream does not end after a whole event: %q", tailOf(body, 80))
	}
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	for i, e := range events {
		m := sseEvent.FindStringSubmatch(e)
		if m == nil || m[1] != strconv.Itoa(pid) || m[2] != strconv.Itoa(i+1) {
			t.Errorf("event %d of the stream: %q, want data: pid=%d n=%d", i+1, e, pid, i+1)
			break
		}
	}
	return len(events)
}

func tailOf(s string, n int) string { return s[max(0, len(s)-n):] }

// TestStreamAcrossRestart follows GET /stream (server-sent events) with
// curl -N across a restart, over HTTP/1.1 and over HTTP/2 with TLS: the
// stream ends cleanly after a whole event (curl exits 0), and a reconnect
// gets the new process's events.
func TestStreamAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, scheme string
		curlArgs     []string
	}{
		{"HTTP/1.1", "http", []string{"-N"}},
		{"HTTP/2 over TLS", "https", []string{"-N", "--http2", "-k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			var pid int
			if tc.scheme == "https" {
				pid = s.startTLS(useTLS(t, s))
			} else {
				pid = s.start()
			}
			url := tc.scheme + "://" + s.addr + "/stream"
			type outcome struct {
				r   realclient.CurlResult
				err error
			}
			done := make(chan outcome, 1)
			before := sockets(pid)
			go func() {
				r, err := realclient.Curl(context.Background(), url, tc.curlArgs...)
				done <- outcome{r, err}
			}()
			waitFor(t, 10*time.Second, "the server to accept the stream", func() bool {
				for sock := range sockets(pid) {
					if !before[sock] {
						return true
					}
				}
				return false
			})
			time.Sleep(500 * time.Millisecond)
			next, _, gone := s.restart(pid)
			o := <-done
			if o.err != nil || o.r.Exit != 0 || o.r.Status != http.StatusOK {
				t.Fatalf("curl %v across the restart: %v, %v; want exit 0 and 200", tc.curlArgs, o.r, o.err)
			}
			n := checkStream(t, o.r.Body, pid)
			t.Logf("%d events from the old process, then the stream ended; signal -> old process gone %s", n, gone.Round(time.Millisecond))
			again, err := realclient.Curl(context.Background(), url, append(tc.curlArgs, "--max-time", "1")...)
			if err != nil || !strings.HasPrefix(again.Body, fmt.Sprintf("data: pid=%d n=1\n\n", next)) {
				t.Errorf("reconnected stream: %v, %v; want the events of the new process %d", again, err, next)
			}
		})
	}
}
