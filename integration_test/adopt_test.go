//go:build linux

package integration_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSystemdAdoptsEachGeneration restarts the example ten times under the
// fake systemd. Once a generation's predecessor has exited, it has systemd
// adopt it as its own child: it names a helper MAINPID, and the helper
// names it back. As root (CAP_SYS_ADMIN) the process sends the second
// message itself in the helper's name, microseconds later, without
// systemd-notify (whose BARRIER=1 says it ran). Every generation must
// finish that within 3 s, leave no helper behind, and stop at once.
func TestSystemdAdoptsEachGeneration(t *testing.T) {
	t.Parallel()
	var caps unix.CapUserData
	privileged := unix.Capget(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &caps) == nil && caps.Effective&(1<<unix.CAP_SYS_ADMIN) != 0
	n := listenNotify(t, false)
	s := newServer(t, exampleBin)
	s.env = []string{"NOTIFY_SOCKET=" + n.name}
	cur := s.foreground().Process.Pid
	n.expect("READY", "1")
	var gaps []string
	for gen := 2; gen <= 11; gen++ {
		s.signal(cur, syscall.SIGUSR1)
		next := s.waitPIDChange(cur)
		if code := mustExit(t, cur, 20*time.Second); code != 0 {
			t.Fatalf("generation %d exited %d", gen-1, code)
		}
		// next names a helper, then the helper names next.
		deadline := time.Now().Add(scale(3 * time.Second))
		helper := 0
		var named, back time.Time
		for back.IsZero() {
			m, err := n.read(deadline)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("generation %d (pid %d): no adoption within 3s (helper %d); its children: %v\nmessages: %v", gen, next, helper, childrenOf(next), n.seen)
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case m.pid == next && m.fields["MAINPID"] != "" && m.fields["MAINPID"] != strconv.Itoa(next):
				helper, _ = strconv.Atoi(m.fields["MAINPID"])
				named = m.at
			case helper != 0 && m.pid == helper && m.fields["MAINPID"] == strconv.Itoa(next):
				back = m.at
			}
		}
		gaps = append(gaps, back.Sub(named).Round(10*time.Microsecond).String())
		cur = next
	}
	t.Logf("MAINPID=<helper> -> MAINPID=<process> from the helper, per generation: %s (privileged: %v)", strings.Join(gaps, " "), privileged)
	t0 := time.Now()
	s.signal(cur, syscall.SIGTERM)
	if code := mustExit(t, cur, 20*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if took := time.Since(t0); took > scale(2*time.Second) {
		t.Errorf("the stop took %s, want at once: it waited for a helper", took)
	}
	for {
		if _, err := n.read(time.Now().Add(200 * time.Millisecond)); err != nil {
			break
		}
	}
	// systemd-notify follows its message with BARRIER=1 (and waits until
	// systemd has read both).
	barriers := 0
	for _, m := range n.seen {
		if m.fields["BARRIER"] == "1" {
			barriers++
		}
	}
	if privileged && barriers > 0 {
		t.Errorf("as root, %d helpers ran systemd-notify (BARRIER=1) instead of the process sending MAINPID in the helper's name", barriers)
	}
	if logged := s.read(s.stderr); strings.Contains(logged, "MAINPID helper") {
		t.Errorf("the helper failed:\n%s", logged)
	}
}
