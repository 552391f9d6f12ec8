//go:build linux

package integration_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// hijacked is a client of the helper's GET /hijack: a WebSocket-like
// connection that net/http no longer manages.
type hijacked struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialHijack opens GET /hijack?mode=mode and reads the greeting, which
// names the process that serves it.
func (s *server) dialHijack(mode string) *hijacked {
	s.t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	h := &hijacked{conn: conn, br: bufio.NewReader(conn)}
	fmt.Fprintf(conn, "GET /hijack?mode=%s HTTP/1.1\r\nHost: %s\r\n\r\n", mode, s.addr)
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /hijack: %v, %v", resp, err)
	}
	if line := h.line(10 * time.Second); !strings.HasPrefix(line, "hello pid=") {
		s.t.Fatalf("GET /hijack greeting %q", line)
	}
	return h
}

// line reads a line within limit; it returns "" and the error's text
// after "error: " when there is none.
func (h *hijacked) line(limit time.Duration) string {
	h.conn.SetReadDeadline(time.Now().Add(scale(limit)))
	line, err := h.br.ReadString('\n')
	if err != nil {
		return "error: " + err.Error()
	}
	return line
}

// TestHijackedConnectionDrain: a hijacked connection (a WebSocket, say) is
// counted until it closes. The drain waits for one that runs a close
// handshake when the process drains (the server says "draining", the client
// answers, the server says "bye" and closes), however long the client
// takes within the drain, on a restart and on a stop; and it closes one
// that ignores the drain at the drain deadline.
func TestHijackedConnectionDrain(t *testing.T) {
	t.Parallel()
	for _, stop := range []bool{false, true} {
		t.Run(fmt.Sprintf("close handshake, stop=%v", stop), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, helperBin)
			s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
			pid := s.start()
			h := s.dialHijack("polite")
			if stop {
				s.signal(pid, syscall.SIGTERM)
			} else {
				s.signal(pid, syscall.SIGUSR1)
				next := s.waitPIDChange(pid)
				// The old process accepts until it has handed over; it
				// writes the new one's status then.
				waitFor(t, 20*time.Second, "the hand-over", func() bool {
					st, err := daemonize.ReadStatus(s.pidFile)
					return err == nil && st.PID == next
				})
				if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d ", next)) {
					t.Errorf("GET / during the old process's drain = %q, want the new process %d", body, next)
				}
			}
			if line := h.line(10 * time.Second); line != "draining\n" {
				t.Fatalf("the hijacked connection got %q when the drain began, want draining", line)
			}
			// The client takes its time to answer: the drain waits.
			time.Sleep(time.Second)
			if !alive(pid) {
				t.Fatalf("process %d exited while a hijacked connection was open", pid)
			}
			fmt.Fprintf(h.conn, "ok\n")
			answered := time.Now()
			if line := h.line(10 * time.Second); line != "bye\n" {
				t.Errorf("close handshake: got %q, want bye", line)
			}
			if line := h.line(10 * time.Second); line != "error: EOF" {
				t.Errorf("after bye: %q, want the connection closed", line)
			}
			if code := mustExit(t, pid, 20*time.Second); code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			took := time.Since(answered)
			t.Logf("the client's answer to the close handshake -> process %d gone: %s", pid, took.Round(time.Millisecond))
			if took > scale(3*time.Second) {
				t.Errorf("process %d exited %s after its last hijacked connection closed, want about at once", pid, took)
			}
		})
	}
	t.Run("ignores the drain", func(t *testing.T) {
		t.Parallel()
		const drain = time.Second
		s := newServer(t, helperBin)
		s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
		pid := s.start("-drain", drain.String())
		h := s.dialHijack("deaf")
		t0 := time.Now()
		s.signal(pid, syscall.SIGUSR1)
		s.waitPIDChange(pid)
		line := h.line(20 * time.Second)
		closed := time.Since(t0)
		if line != "error: EOF" && !strings.Contains(line, "reset") {
			t.Errorf("the hijacked connection got %q, want it closed at the drain deadline", line)
		}
		code := mustExit(t, pid, 20*time.Second)
		t.Logf("-drain %s: signal -> hijacked connection closed %s, process %d exited %d", drain, closed.Round(time.Millisecond), pid, code)
		if closed < drain || closed > drain+scale(2*time.Second) {
			t.Errorf("hijacked connection closed %s after the signal, want at the drain deadline (%s)", closed, drain)
		}
		if want := "1 hijacked connections open"; !strings.Contains(s.read(s.stderr), want) {
			t.Errorf("the drain's report lacks %q:\n%s", want, s.read(s.stderr))
		}
	})
}

// TestShutdownHookClosesHijacked: a WebSocket library that knows only
// net/http learns of the drain from a hook registered with
// RegisterOnShutdown, which http.Server.Shutdown runs; Serve's drain calls
// Shutdown once no HTTP/1 connection is left. The helper's GET
// /hijack?mode=hook closes its connection when the hook runs: after a
// restart, the hook must run, the connection close, and the old process
// exit, all long before the drain deadline, with TakeBack on (the helper's
// and the example's default) and off (the helper with -udp).
func TestShutdownHookClosesHijacked(t *testing.T) {
	t.Parallel()
	for _, takeBack := range []bool{false, true} {
		t.Run(fmt.Sprintf("TakeBack=%v", takeBack), func(t *testing.T) {
			t.Parallel()
			const drain = 5 * time.Second
			s := newServer(t, helperBin)
			s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
			if !takeBack {
				udp, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				s.args = []string{"-udp", udp.LocalAddr().String()}
				udp.Close()
			}
			pid := s.start("-drain", drain.String())
			h := s.dialHijack("hook")
			t0 := time.Now()
			s.signal(pid, syscall.SIGUSR1)
			s.waitPIDChange(pid)
			line := h.line(3 * time.Second)
			code := mustExit(t, pid, 20*time.Second)
			gone := time.Since(t0)
			t.Logf("signal -> hijacked connection told %q, old process gone %s, exit %d", line, gone.Round(time.Millisecond), code)
			if line != "bye\n" || code != 0 {
				t.Errorf("the hijacked connection got %q within 3s, the old process exited %d after %s; want bye, and exit 0 long before the drain deadline (%s)", line, code, gone.Round(time.Millisecond), drain)
			}
			if n := strings.Count(s.read(s.stderr), fmt.Sprintf("helper: shutdown hook ran pid=%d\n", pid)); n != 1 {
				t.Errorf("the shutdown hook of process %d ran %d times, want once", pid, n)
			}
		})
	}
}
