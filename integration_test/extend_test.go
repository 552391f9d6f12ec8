//go:build linux

package integration_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopExtendsSystemdTimeout stops the example under a fake systemd
// with a slow request in flight. While the stop drains, the process asks
// for more time with EXTEND_TIMEOUT_USEC, more than once, so that a
// TimeoutStopSec shorter than the drain does not kill it; but never past
// the drain deadline plus the second it keeps to exit, so that a process
// stuck past its drain is still killed on time. Each message sets the
// deadline at its arrival plus its value.
func TestStopExtendsSystemdTimeout(t *testing.T) {
	t.Parallel()
	const drain = 6 * time.Second
	const exitGrace = time.Second // extendStop's allowance to exit after the drain
	n := listenNotify(t, false)
	s := newServer(t, exampleBin)
	s.env = []string{"NOTIFY_SOCKET=" + n.name}
	cmd := s.foreground("-drain", drain.String())
	pid := cmd.Process.Pid
	n.expect("READY", "1")
	req := inFlight(t, s, pid, "/sleep?d=5s")
	s.signal(pid, syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var exitErr error
	var exitAt time.Time
	for done := false; !done; {
		select {
		case exitErr = <-exited:
			exitAt, done = time.Now(), true
		default:
		}
		if _, err := n.read(time.Now().Add(100 * time.Millisecond)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
		if !done && time.Since(n.seen[0].at) > scale(drain+30*time.Second) {
			t.Fatalf("process %d still running %s after the stop", pid, drain+30*time.Second)
		}
	}
	if exitErr != nil {
		t.Errorf("process after SIGTERM: %v", exitErr)
	}
	if err := <-req; err != nil {
		t.Errorf("the request in flight: %v", err)
	}
	var stopping time.Time
	type extension struct {
		at    time.Time
		value time.Duration
	}
	var ext []extension
	for _, m := range n.seen {
		if m.fields["STOPPING"] == "1" && stopping.IsZero() {
			stopping = m.at
		}
		if v, ok := m.fields["EXTEND_TIMEOUT_USEC"]; ok {
			usec, err := strconv.ParseInt(v, 10, 64)
			if err != nil || usec <= 0 || m.pid != pid {
				t.Errorf("message %q from %d, want a positive EXTEND_TIMEOUT_USEC from %d", m.raw, m.pid, pid)
				continue
			}
			if stopping.IsZero() {
				t.Errorf("EXTEND_TIMEOUT_USEC before STOPPING=1: %q", m.raw)
			}
			ext = append(ext, extension{m.at, time.Duration(usec) * time.Microsecond})
		}
	}
	if len(ext) < 2 {
		t.Fatalf("%d EXTEND_TIMEOUT_USEC messages during a %s drain that lasted %s, want them periodic", len(ext), drain, exitAt.Sub(stopping))
	}
	// The process's drain began before its first message was read: past
	// that plus the drain and the exit grace, nothing may reach (50 ms for
	// delivery).
	limit := ext[0].at.Add(drain + exitGrace + 50*time.Millisecond)
	var parts []string
	reach := ext[0].at
	for _, e := range ext {
		end := e.at.Add(e.value)
		parts = append(parts, fmt.Sprintf("+%s: %s", e.at.Sub(ext[0].at).Round(time.Millisecond), e.value))
		if end.After(limit) {
			t.Errorf("EXTEND_TIMEOUT_USEC=%d at +%s reaches %s past the drain deadline plus %s", e.value.Microseconds(), e.at.Sub(ext[0].at).Round(time.Millisecond), end.Sub(limit.Add(-50*time.Millisecond)).Round(time.Millisecond), exitGrace)
		}
		if end.After(reach) {
			reach = end
		}
	}
	t.Logf("-drain %s, a 5 s request in flight: EXTEND_TIMEOUT_USEC %s; the process exited %s after the first", drain, strings.Join(parts, ", "), exitAt.Sub(ext[0].at).Round(time.Millisecond))
	if reach.Before(exitAt) {
		t.Errorf("the extensions reach %s after the first, the process exited %s after: systemd would have killed it", reach.Sub(ext[0].at), exitAt.Sub(ext[0].at))
	}
}
