//go:build linux

package integration_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// connProbes is what became of connections opened to a stopping server.
type connProbes struct {
	refused  int      // refused at once: ECONNREFUSED
	accepted int      // accepted by the kernel: nobody will answer them
	fates    []string // what became of the accepted ones, and of other errors
}

func (p connProbes) String() string {
	return fmt.Sprintf("%d refused, %d accepted %q", p.refused, p.accepted, p.fates)
}

// probeConnections dials addr n times, every interval, and counts the
// dials refused at once and those the kernel accepted. An accepted
// connection is sent a request and given a moment to be answered, to say
// what became of it (a connection in the queue of a socket that nobody
// accepts from any more is reset when the socket's last copy closes).
func probeConnections(addr string, n int, every time.Duration) connProbes {
	var p connProbes
	for i := range n {
		if i > 0 {
			time.Sleep(every)
		}
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			p.refused++
			continue
		case err != nil:
			p.fates = append(p.fates, fmt.Sprintf("dial after %s: %v", time.Since(t0).Round(time.Millisecond), err))
			continue
		}
		p.accepted++
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b := make([]byte, 512)
		k, err := c.Read(b)
		p.fates = append(p.fates, fmt.Sprintf("accepted; read %q, %v", b[:k], err))
		c.Close()
	}
	return p
}

// TestStopRefusesNewConnections stops a server with a request in flight:
// from the moment the stop begins, every copy of the listening socket is
// closed, so that new connections are refused at once (a client tries
// another address or retries later) rather than accepted by the kernel and
// reset when the drain ends; the request in flight finishes. The same
// holds during a restart (the new process holds copies), after a take-back
// (the kept socket), and while the previous generation drains (it keeps a
// copy for a take-back).
func TestStopRefusesNewConnections(t *testing.T) {
	t.Parallel()
	const drain = 5 * time.Second
	const slow = "/sleep?d=3s"
	for _, tc := range []struct {
		name string
		// setup starts the service and brings it to the moment of the
		// stop; it returns the process to stop, the requests in flight
		// and the other processes that must be gone after the stop.
		setup func(t *testing.T, s *server) (pid int, inflight []<-chan error, others []int)
	}{
		{"serving", func(t *testing.T, s *server) (int, []<-chan error, []int) {
			pid := s.start("-drain", drain.String())
			return pid, []<-chan error{inFlight(t, s, pid, slow)}, nil
		}},
		{"during a restart", func(t *testing.T, s *server) (int, []<-chan error, []int) {
			s.gateRestarts() // never opened: the new process holds copies of the socket, not ready
			pid := s.start("-drain", drain.String())
			child := s.childAtGate(pid)
			return pid, []<-chan error{inFlight(t, s, pid, slow)}, []int{child}
		}},
		{"after a take-back", func(t *testing.T, s *server) (int, []<-chan error, []int) {
			gate := s.crashAfterGate()
			pid := s.start("-drain", drain.String())
			// Keeps the old process draining until its successor crashes.
			first := inFlight(t, s, pid, "/sleep?d=4s")
			child, crash := s.handOverToCrasher(pid, gate)
			crash()
			s.get("/")
			return pid, []<-chan error{first, inFlight(t, s, pid, slow)}, []int{child}
		}},
		{"while the previous generation drains", func(t *testing.T, s *server) (int, []<-chan error, []int) {
			gen1 := s.start("-drain", drain.String())
			first := inFlight(t, s, gen1, slow)
			s.signal(gen1, syscall.SIGUSR1)
			gen2 := s.waitPIDChange(gen1)
			waitFor(t, 20*time.Second, "the hand-over", func() bool {
				st, err := daemonize.ReadStatus(s.pidFile)
				return err == nil && st.PID == gen2 && st.Previous != nil && st.Previous.PID == gen1
			})
			if !alive(gen1) {
				t.Fatalf("generation 1 (%d) exited with a request in flight", gen1)
			}
			return gen2, []<-chan error{first, inFlight(t, s, gen2, slow)}, []int{gen1}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			pid, inflight, others := tc.setup(t, s)
			t0 := time.Now()
			s.signal(pid, syscall.SIGTERM)
			time.Sleep(500 * time.Millisecond)
			probes := probeConnections(s.addr, 10, 100*time.Millisecond)
			probed := time.Since(t0)
			t.Logf("new connections %s to %s after SIGTERM: %v", 500*time.Millisecond, probed.Round(time.Millisecond), probes)
			if probes.refused != 10 {
				t.Errorf("new connections during the stop's drain: %v; want all 10 refused at once", probes)
			}
			for i, req := range inflight {
				if err := <-req; err != nil {
					t.Errorf("request %d in flight at the stop: %v", i, err)
				}
			}
			if code := mustExit(t, pid, 20*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0", code)
			}
			for _, p := range others {
				if err := waitExit(p, scale(10*time.Second)); err != nil {
					t.Error(err)
				}
			}
			t.Logf("SIGTERM -> exit %s", time.Since(t0).Round(time.Millisecond))
			if probed > drain {
				t.Errorf("probing took %s, past the drain: it proves nothing", probed)
			}
			s.checkPIDFileGone()
			if strings.Contains(s.read(s.stderr), "drain deadline") {
				t.Errorf("a drain ran to its deadline:\n%s", s.read(s.stderr))
			}
		})
	}
}
