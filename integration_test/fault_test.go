//go:build linux

package integration_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// checkStillServing checks what every failed restart must leave: the old
// process serving, named by the pid file and the status file with the
// failure, and no child of it left.
func (s *server) checkStillServing(pid int, why string) {
	t := s.t
	t.Helper()
	if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d ", pid)) {
		t.Errorf("GET / = %q, want the old process %d", body, pid)
	}
	if got := s.mustPID(); got != pid {
		t.Errorf("pid file names %d, want %d", got, pid)
	}
	st, err := daemonize.ReadStatus(s.pidFile)
	if err != nil || st.PID != pid || st.State != daemonize.StateReady || st.LastRestart == nil || st.LastRestart.OK || !strings.Contains(st.LastRestart.Error, why) {
		t.Errorf("status after the failed restart: %+v %+v, %v; want pid %d ready and the error %q", st, st.LastRestart, err, pid, why)
	}
	if kids := childrenOf(pid); len(kids) != 0 {
		t.Errorf("children left: %v", kids)
	}
}

// gateRestarts makes the next generation a helper that waits before Ready
// until the test opens its gate.
func (s *server) gateRestarts() (gate string) {
	gate = filepath.Join(s.dir, "gate")
	s.env = []string{"DAEMONIZE_TEST_HELPER=server", "DAEMONIZE_TEST_FAULT=" + faultGate, "DAEMONIZE_TEST_GATE=" + gate}
	return gate
}

// crashAfterGate makes the next generation a helper that crashes once it
// is ready and the test opens its gate: the old process takes the service
// back. It returns the gate.
func (s *server) crashAfterGate() (gate string) {
	gate = s.gateRestarts()
	s.env[1] = "DAEMONIZE_TEST_FAULT=" + faultCrashAtGate
	return gate
}

// handOverToCrasher installs the helper set up by crashAfterGate, asks pid
// to restart, and waits for the hand-over (the old process writes the new
// one's status then; a crash before it is a failed restart). It returns the
// new process, and crash, which opens the gate and waits until pid has taken
// the service back.
func (s *server) handOverToCrasher(pid int, gate string) (child int, crash func()) {
	t := s.t
	t.Helper()
	s.install(helperBin)
	s.signal(pid, syscall.SIGUSR1)
	child = s.waitPIDChange(pid)
	waitFor(t, 20*time.Second, "the hand-over", func() bool {
		st, err := daemonize.ReadStatus(s.pidFile)
		return err == nil && st.PID == child
	})
	return child, func() {
		t.Helper()
		os.WriteFile(gate, nil, 0o644)
		waitFor(t, 20*time.Second, "the old process to take the service back", func() bool {
			p, err := s.readPID()
			return err == nil && p == pid
		})
	}
}

// childAtGate installs the helper, asks pid to restart, and returns the new
// process once it waits at the gate.
func (s *server) childAtGate(pid int) int {
	t := s.t
	t.Helper()
	s.install(helperBin)
	s.signal(pid, syscall.SIGUSR1)
	waitFor(t, 20*time.Second, "the new process to wait at the gate", func() bool {
		_, err := os.Stat(filepath.Join(s.dir, "gate.waiting"))
		return err == nil
	})
	kids := childrenOf(pid)
	if len(kids) != 1 {
		t.Fatalf("children of %d: %v, want one", pid, kids)
	}
	s.track(kids[0])
	return kids[0]
}

// TestNewAddressTaken installs a binary that also listens on an address the
// old one did not have, and that address is taken.
func TestNewAddressTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := newServer(t, exampleBin)
	s.env = []string{"DAEMONIZE_TEST_HELPER=server", "DAEMONIZE_TEST_FAULT=" + faultExtraListen, "DAEMONIZE_TEST_EXTRA_ADDR=" + taken.Addr().String()}
	pid := s.start()
	s.install(helperBin)
	s.expectFailedRestart(pid, "address already in use")
	s.checkStillServing(pid, "address already in use")
}

// TestChildKilledDuringRestart SIGKILLs the new process before it is ready.
func TestChildKilledDuringRestart(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	s.gateRestarts()
	pid := s.start()
	s.signal(s.childAtGate(pid), syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the restart to fail", func() bool {
		return strings.Contains(s.read(s.stderr), "restart failed")
	})
	s.checkStillServing(pid, "signal: killed")
}

// TestBinaryDeleted removes the executable (a botched deploy) and asks for
// a restart: it fails at once saying so, and works again once the binary is
// back.
func TestBinaryDeleted(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start()
	if err := os.Remove(s.bin); err != nil {
		t.Fatal(err)
	}
	s.expectFailedRestart(pid, "no longer exists")
	s.checkStillServing(pid, "no longer exists: install the binary there again")
	s.install(exampleV2)
	s.restart(pid)
}

// TestSIGHUPStorm renames the log again and again and sends a storm of
// SIGHUPs while the server logs every request: no line is lost or split, and
// the server keeps serving.
func TestSIGHUPStorm(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start("-access-log")
	done := make(chan struct{})
	const total = 2000
	go func() {
		defer close(done)
		for i := range total {
			if _, err := s.tryGet(fmt.Sprintf("/?n=%d", i)); err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
		}
	}()
	var rotated []string
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			if i%10 == 0 {
				name := fmt.Sprintf("%s.%d", s.stdout, i)
				if os.Rename(s.stdout, name) == nil {
					rotated = append(rotated, name)
				}
			}
			syscall.Kill(pid, syscall.SIGHUP)
			time.Sleep(time.Millisecond) // a storm, not a flood: HUPs to one pid coalesce
			continue
		}
		break
	}
	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after the storm", code)
	}
	seen := make(map[string]int)
	for _, f := range append(rotated, s.stdout) {
		for _, line := range strings.Split(strings.TrimSuffix(s.read(f), "\n"), "\n") {
			if line == "" {
				continue
			}
			f := strings.Fields(line)
			if len(f) != 4 || f[2] != "GET" {
				t.Errorf("broken line %q", line)
				continue
			}
			seen[f[3]]++
		}
	}
	for i := range total {
		if n := seen[fmt.Sprintf("/?n=%d", i)]; n != 1 {
			t.Errorf("request %d logged %d times", i, n)
		}
	}
	t.Logf("%d requests over %d log files", total, len(rotated)+1)
}

// TestCrashAfterHandOver installs a binary that crashes right after it is
// ready, while the old process still drains a long request: the old process
// takes the service back. (Requests in flight on the crashing process die
// with it; none is sent to it here.)
func TestCrashAfterHandOver(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	gate := s.crashAfterGate()
	pid := s.start()
	slow := inFlight(t, s, pid, "/sleep?d=2s")
	child, crash := s.handOverToCrasher(pid, gate)
	crash()
	if err := <-slow; err != nil {
		t.Errorf("the request in flight on the old process: %v", err)
	}
	why := fmt.Sprintf("new process %d exited after it took over; pid %d took the service back", child, pid)
	s.checkStillServing(pid, why)
	// It cannot hand over again, and says so, in the log and to a deploy
	// tool, which gets the refusal as its answer; a stop works as ever.
	s.signal(pid, syscall.SIGUSR1)
	waitFor(t, 10*time.Second, "the refusal", func() bool {
		return strings.Contains(s.read(s.stderr), "took the service back after its successor died")
	})
	code, out := tool(t, "restart", "-pidfile", s.pidFile, "-timeout", "20s")
	if code != 1 || !strings.Contains(out, "took the service back after its successor died") {
		t.Errorf("daemonize restart after the take-back: exit %d, %q; want 1 and the refusal", code, out)
	}
	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	s.checkPIDFileGone()
}
