//go:build linux

package integration_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The restart requests' rules: a request is answered only by an attempt
// that starts the executable after the request arrived; the requests made
// during an attempt share one follow-up, which runs when the attempt fails,
// or when it succeeds but the executable was replaced meanwhile.

// attempts counts the restart attempts the service's processes logged.
func (s *server) attempts() int {
	return strings.Count(s.read(s.stderr), `msg="daemonize: restarting"`)
}

// toolResult is a run of cmd/daemonize in the background.
type toolResult struct {
	code int
	out  string
	err  error
}

// toolInBackground runs cmd/daemonize in the background, bounded by a
// deadline; the test waits for the result (a command left running is
// killed when the test's deadline passes).
func toolInBackground(t *testing.T, args ...string) <-chan toolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scale(60*time.Second))
	cmd := exec.CommandContext(ctx, toolBin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
	done := make(chan toolResult, 1)
	go func() {
		defer cancel()
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); ok {
			err = nil
		}
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		done <- toolResult{code, string(out), err}
	}()
	return done
}

// TestRestartRequestDuringFailingAttempt starts a restart onto a binary
// that hangs (it is stopped after -upgrade-timeout 2s); 1 s later, with the
// good binary put back, a second request arrives, by SIGUSR1, by
// `daemonize restart` or from code (the helper's GET /restart). The
// follow-up attempt must run the good binary, and the two requests that
// wait for an outcome must get the follow-up's success, not the hung
// attempt's failure.
func TestRestartRequestDuringFailingAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		bin     string // the service's good binary
		want    string // what GET / says after the follow-up
		request func(t *testing.T, s *server, pid int) (check func())
	}{
		{"SIGUSR1", exampleV2, "version=v2", func(t *testing.T, s *server, pid int) func() {
			s.signal(pid, syscall.SIGUSR1)
			return func() {}
		}},
		{"daemonize restart", exampleV2, "version=v2", func(t *testing.T, s *server, pid int) func() {
			res := toolInBackground(t, "restart", "-pidfile", s.pidFile)
			return func() {
				r := <-res
				next := s.mustPID()
				if r.err != nil || r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("restarted: pid %d -> %d (generation 2)", pid, next)) {
					t.Errorf("daemonize restart during the hung attempt: exit %d, %v, output %q; want 0 and the follow-up's success", r.code, r.err, r.out)
				}
			}
		}},
		{"Restart from code", helperBin, "version=helper", func(t *testing.T, s *server, pid int) func() {
			res := make(chan error, 1)
			go func() {
				body, err := s.tryGet("/restart")
				if err == nil && !strings.Contains(body, "restarted") {
					err = fmt.Errorf("GET /restart = %q", body)
				}
				res <- err
			}()
			return func() {
				if err := <-res; err != nil {
					t.Errorf("Restart from code during the hung attempt: %v; want the follow-up's success", err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first := exampleBin // the good binary's first version
			if tc.bin == helperBin {
				first = helperBin
			}
			s := newServer(t, first)
			s.env = []string{"DAEMONIZE_TEST_HELPER=server"} // the example ignores it
			pid := s.start("-upgrade-timeout", "2s")
			s.installScript("#!/bin/sh\nexec sleep 600\n")
			t0 := time.Now()
			s.signal(pid, syscall.SIGUSR1)
			waitFor(t, 10*time.Second, "the first attempt", func() bool { return s.attempts() == 1 })
			time.Sleep(time.Second)
			if strings.Contains(s.read(s.stderr), "restart failed") {
				t.Fatalf("the hung attempt failed within 1s, before the second request; the test proves nothing:\n%s", s.read(s.stderr))
			}
			s.install(tc.bin)
			check := tc.request(t, s, pid)
			next := s.waitPIDChange(pid)
			ready := time.Since(t0)
			check()
			if code := mustExit(t, pid, 20*time.Second); code != 0 {
				t.Errorf("old process exited %d", code)
			}
			if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d generation=2 %s", next, tc.want)) {
				t.Errorf("after the follow-up GET / = %q, want generation 2 %s", body, tc.want)
			}
			logged := s.read(s.stderr)
			if n := s.attempts(); n != 2 || strings.Count(logged, "restart failed") != 1 || !strings.Contains(logged, "not ready within Options.UpgradeTimeout (2s)") {
				t.Errorf("%d attempts logged, want 2: the hung one, which fails on its timeout, and the follow-up:\n%s", n, logged)
			}
			t.Logf("first SIGUSR1 -> the follow-up's process ready: %s", ready.Round(time.Millisecond))
		})
	}
}

// processWatch samples the service's processes every millisecond, and
// records the most seen alive at once, and the children of one process.
type processWatch struct {
	stop chan struct{}
	done chan string // what went wrong, "" if nothing
}

// watchProcesses watches that at most two processes of s are alive at once
// and that none has two children.
func (s *server) watchProcesses() *processWatch {
	w := &processWatch{stop: make(chan struct{}), done: make(chan string, 1)}
	go func() {
		// A process counts once seen in three samples in a row: Go's
		// syscall package forks a short-lived probe child (CLONE_PIDFD)
		// that carries its parent's command line until it exits.
		streak := make(map[int]int)
		seen := ""
		for {
			select {
			case <-w.stop:
				w.done <- seen
				return
			default:
			}
			var procs []int
			for _, p := range s.processes() {
				// cmd/daemonize names the pid file too.
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); exe != toolBin {
					procs = append(procs, p)
				}
			}
			next := make(map[int]int, len(procs))
			var stable []int
			for _, p := range procs {
				if next[p] = streak[p] + 1; next[p] >= 3 {
					stable = append(stable, p)
				}
			}
			streak = next
			if seen == "" && len(stable) > 2 {
				seen = "more than 2 processes alive at once:\n" + describeProcs(stable)
			}
			for _, p := range stable {
				var kids []int
				for _, k := range childrenOf(p) {
					if next[k] >= 3 {
						kids = append(kids, k)
					}
				}
				if seen == "" && len(kids) > 1 {
					seen = fmt.Sprintf("process %d has %d children at once:\n%s", p, len(kids), describeProcs(kids))
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	s.t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
	})
	return w
}

func (w *processWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	if seen := <-w.done; seen != "" {
		t.Error(seen)
	}
}

// TestRestartRequestDuringSucceedingAttempt holds a restart's new process
// before Ready while 50 SIGUSR1 (10 ms apart) and a `daemonize restart`
// arrive, then lets it be ready. If the executable stayed the same, the
// attempt answers them all: one attempt in all. If it was replaced
// meanwhile, the requests wanted the new executable: the new generation
// runs one follow-up once the old one has exited, and `daemonize restart`
// reports that one. Never more than two processes, nor two children of
// one, at once.
func TestRestartRequestDuringSucceedingAttempt(t *testing.T) {
	t.Parallel()
	for _, replaced := range []bool{false, true} {
		t.Run(fmt.Sprintf("executable replaced=%v", replaced), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			gate := s.gateRestarts()
			pid := s.start()
			watch := s.watchProcesses()
			child := s.childAtGate(pid)
			res := toolInBackground(t, "restart", "-pidfile", s.pidFile)
			for i := range 50 {
				if replaced && i == 25 {
					s.install(exampleV2)
				}
				s.signal(pid, syscall.SIGUSR1)
				time.Sleep(10 * time.Millisecond)
			}
			if n := s.attempts(); n != 1 {
				t.Errorf("%d attempts during the first one, want 1", n)
			}
			os.WriteFile(gate, nil, 0o644)
			if got := s.waitPIDChange(pid); got != child {
				t.Fatalf("pid file names %d, want the new process %d", got, child)
			}
			if code := mustExit(t, pid, 20*time.Second); code != 0 {
				t.Errorf("generation 1 exited %d", code)
			}
			want, gen, attempts := child, 2, 1
			if replaced {
				want, gen, attempts = s.waitPIDChange(child), 3, 2
				if code := mustExit(t, child, 20*time.Second); code != 0 {
					t.Errorf("generation 2 exited %d", code)
				}
			}
			r := <-res
			if r.err != nil || r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("-> %d (generation %d)", want, gen)) {
				t.Errorf("daemonize restart: exit %d, %v, output %q; want 0 and pid %d, generation %d", r.code, r.err, r.out, want, gen)
			}
			// Nothing more is coming: a request left over would run now.
			time.Sleep(500 * time.Millisecond)
			if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d generation=%d ", want, gen)) {
				t.Errorf("GET / = %q, want pid %d generation %d", body, want, gen)
			}
			if n := s.attempts(); n != attempts {
				t.Errorf("%d attempts for a storm of 50 SIGUSR1 and a daemonize restart, want %d:\n%s", n, attempts, s.read(s.stderr))
			}
			t.Logf("50 SIGUSR1 and a daemonize restart during an attempt: %d attempts in all; daemonize restart said %q", s.attempts(), strings.TrimSpace(r.out))
			watch.check(t)
		})
	}
}
