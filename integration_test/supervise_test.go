//go:build linux

package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/internal/load"
	"github.com/daemonize-dev/daemonize/internal/proc"
	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// servingPID asks the server at addr which process answers, by the pid in
// GET /; 0 if none does.
func servingPID(addr string) int {
	r, err := realclient.Curl(context.Background(), "http://"+addr+"/")
	if err != nil || !r.OK() {
		return 0
	}
	f := strings.Fields(r.Body)
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimPrefix(f[0], "pid="))
	return pid
}

// nsArgv is the example's command line for a unitServer, with extra flags.
func (u *unitServer) argv(extra ...string) []string {
	return append(append([]string{u.bin}, strings.Fields(u.execStart(u.addr))[1:]...), extra...)
}

// checkNoZombies fails the test if a child of pid is a zombie.
func checkNoZombies(t *testing.T, pid int) {
	t.Helper()
	for _, c := range proc.Children(pid) {
		if proc.Zombie(c) {
			t.Errorf("process %d, a child of %d, is a zombie", c, pid)
		}
	}
}

// TestSupervisedPID1UnderLoad runs the example with -supervise as PID 1 of
// a PID namespace, as a container runtime does, and restarts it again and
// again under load: PID 1 and the pid file never change, no request
// fails, no zombie is left, and SIGTERM to PID 1 drains and exits 0.
func TestSupervisedPID1UnderLoad(t *testing.T) {
	restarts := 100
	if n, err := strconv.Atoi(os.Getenv("DAEMONIZE_TEST_PID1_RESTARTS")); err == nil && n > 0 {
		restarts = n
	}
	u := newUnitServer(t)
	ns := realclient.StartInPIDNamespace(t, u.stderr, nil, u.argv("-supervise")...)
	waitFor(t, 20*time.Second, "the server to answer", func() bool { return servingPID(u.addr) != 0 })
	if got, err := realclient.NSPID(ns.PID()); err != nil || got != 1 || u.nsPID() != 1 {
		t.Fatalf("the supervisor is pid %d inside (%v), the pid file says %d; want 1", got, err, u.nsPID())
	}

	bg := startLoad(t, load.Config{Addr: u.addr, KeepAlive: 2, NewConn: 2, Slow: 1,
		SlowPath: "/sleep?d=100ms", MaxDuration: scale(10 * time.Minute)})
	serving := servingPID(u.addr)
	t0 := time.Now()
	for i := range restarts {
		if err := syscall.Kill(ns.PID(), syscall.SIGUSR1); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		// The next SIGUSR1 goes to the generation that serves once the
		// supervisor knows it, after the hand-over: when the old one has
		// told it, as the status file then says.
		serving = newGeneration(t, u.addr, u.pidFile, serving)
		if got, _ := realclient.NSPID(ns.PID()); got != 1 || u.nsPID() != 1 {
			t.Fatalf("after restart %d: PID 1 is %d, the pid file names %d", i+1, got, u.nsPID())
		}
	}
	took := time.Since(t0)
	res := bg.stop()
	t.Logf("%d restarts as PID 1 in %s: %v", restarts, took, res)
	if res.Failed != 0 || res.Requests == 0 {
		t.Errorf("load across %d restarts: %v; first errors %q", restarts, res, res.FirstErrs)
	}
	waitFor(t, 20*time.Second, "one generation left", func() bool { return len(proc.Children(ns.PID())) == 1 })
	checkNoZombies(t, ns.PID())

	if err := syscall.Kill(ns.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, ok := ns.Wait(scale(20 * time.Second)); !ok || code != 0 {
		t.Errorf("after SIGTERM to PID 1: exited %v, code %d; want 0", ok, code)
	}
	if _, err := os.Stat(u.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file after the stop: %v", err)
	}
}

// TestSupervisedCrash crashes the serving generation outside a hand-over:
// the supervisor, PID 1 of its namespace, exits with that generation's
// status, so that the container's restart policy decides.
func TestSupervisedCrash(t *testing.T) {
	u := newUnitServer(t)
	os.Remove(u.bin)
	if err := os.Link(helperBin, u.bin); err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "gate")
	env := []string{"DAEMONIZE_TEST_HELPER=server", "DAEMONIZE_TEST_FAULT=" + faultCrashAtGate, "DAEMONIZE_TEST_GATE=" + gate}
	ns := realclient.StartInPIDNamespace(t, u.stderr, env, u.argv("-supervise")...)
	waitFor(t, 20*time.Second, "the server to answer", func() bool { return servingPID(u.addr) != 0 })
	os.WriteFile(gate, nil, 0o644)
	code, ok := ns.Wait(scale(20 * time.Second))
	if !ok || code != 3 {
		t.Errorf("after the serving generation exited 3: the supervisor exited %v with %d; want 3", ok, code)
	}
	if _, err := os.Stat(u.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file after the crash: %v", err)
	}
}

// TestPID1RefusesRestart runs the example as PID 1 without -supervise: a
// restart would end the namespace, so it is refused with an error that
// names the option, and the process keeps serving.
func TestPID1RefusesRestart(t *testing.T) {
	u := newUnitServer(t)
	ns := realclient.StartInPIDNamespace(t, u.stderr, nil, u.argv()...)
	waitFor(t, 20*time.Second, "the server to answer", func() bool { return servingPID(u.addr) == 1 })
	if err := syscall.Kill(ns.PID(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the refusal in the log", func() bool {
		b, _ := os.ReadFile(u.stderr)
		return strings.Contains(string(b), "restart refused: this process is PID 1") && strings.Contains(string(b), "Options.Supervise")
	})
	// A deploy tool that sent the signal finds the refusal as its answer.
	if st, err := daemonize.ReadStatus(u.pidFile); err != nil || st.LastRestart == nil || st.LastRestart.OK || !strings.Contains(st.LastRestart.Error, "Options.Supervise") {
		t.Errorf("status after the refusal: %+v, %v", st, err)
	}
	if got := servingPID(u.addr); got != 1 {
		t.Errorf("after the refused restart, pid %d serves; want 1", got)
	}
	if err := syscall.Kill(ns.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, ok := ns.Wait(scale(20 * time.Second)); !ok || code != 0 {
		t.Errorf("after SIGTERM: exited %v, code %d", ok, code)
	}
}

// TestSupervisorReapsAndForwards runs a supervised server in the
// foreground: a grandchild it abandons is reaped by the supervisor once it
// exits, SIGHUP reaches every process (the log file reopened after a
// rename gets their lines), SIGUSR1 restarts, and a stop ends what the
// server left running and passes its exit status on.
func TestSupervisorReapsAndForwards(t *testing.T) {
	s := newServer(t, helperBin)
	s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
	cmd := s.foreground("-supervise")
	sup := cmd.Process.Pid
	waitFor(t, 20*time.Second, "the supervisor's pid file", func() bool {
		p, err := s.readPID()
		return err == nil && p == sup
	})
	first := servingPID(s.addr)
	if first == 0 || first == sup {
		t.Fatalf("serving pid %d, supervisor %d", first, sup)
	}

	if body := s.get("/orphan?d=0.2"); !strings.Contains(body, "abandoned") {
		t.Fatalf("GET /orphan: %q", body)
	}
	waitFor(t, 20*time.Second, "the abandoned process to exit and be reaped", func() bool {
		kids := proc.Children(sup)
		return len(kids) == 1 && kids[0] == first
	})

	os.Rename(s.stderr, s.stderr+".1")
	s.signal(sup, syscall.SIGHUP)
	waitFor(t, 20*time.Second, "the reopened log file", func() bool {
		_, err := os.Stat(s.stderr)
		return err == nil
	})
	s.signal(sup, syscall.SIGUSR1)
	second := newGeneration(t, s.addr, "", first)
	waitFor(t, 20*time.Second, "the restart's lines in the new log file", func() bool {
		b := s.read(s.stderr)
		return strings.Contains(b, fmt.Sprintf("generation serves\" pid=%d", second)) && strings.Contains(b, fmt.Sprintf("ready\" pid=%d", second))
	})
	if p, _ := s.readPID(); p != sup {
		t.Errorf("pid file names %d after the restart, want the supervisor %d", p, sup)
	}

	s.get("/orphan?d=600")
	var sleeper int
	waitFor(t, 20*time.Second, "the abandoned sleep", func() bool {
		for _, c := range proc.Children(sup) {
			if c != second {
				sleeper = c
				return true
			}
		}
		return false
	})
	s.signal(sup, syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("supervisor after SIGTERM: %v", err)
	}
	if proc.Alive(sleeper) {
		t.Errorf("the process %d the server left is still running after the stop", sleeper)
	}
	s.checkPIDFileGone()
}

// TestSupervisordWithSupervise runs the example with -supervise under
// supervisord, which watches one pid: restarts by supervisorctl signal
// USR1 keep it RUNNING with the same pid while new generations serve, no
// request fails, and supervisorctl stop is clean.
func TestSupervisordWithSupervise(t *testing.T) {
	s := newServer(t, exampleBin)
	sv := realclient.StartSupervisord(t, realclient.Program{
		Name:    "httpserver",
		Command: s.bin + " " + strings.Join(s.flags("-drain", "5s", "-supervise"), " "),
	})
	waitFor(t, 20*time.Second, "supervisord to report the program RUNNING", func() bool {
		st, _ := sv.Status("httpserver")
		return st == "RUNNING" && servingPID(s.addr) != 0
	})
	pid := sv.PID("httpserver")
	if got := s.mustPID(); got != pid {
		t.Fatalf("supervisorctl pid says %d, the pid file %d", pid, got)
	}
	curls := curlInBackground(t, "http://"+s.addr+"/")
	serving := servingPID(s.addr)
	for i := range 5 {
		if out, err := sv.Ctl("signal", "USR1", "httpserver"); err != nil {
			t.Fatalf("restart %d: %v: %s", i+1, err, out)
		}
		serving = newGeneration(t, s.addr, "", serving)
		if st, _ := sv.Status("httpserver"); st != "RUNNING" || sv.PID("httpserver") != pid {
			t.Fatalf("after restart %d: %s, pid %d; want RUNNING, pid %d\n%s", i+1, st, sv.PID("httpserver"), pid, sv.Log())
		}
	}
	tally := curls()
	t.Logf("curl across 5 restarts under supervisord: %v", tally)
	if tally.Requests == 0 || tally.Failed != 0 {
		t.Errorf("curl: %v", tally)
	}
	if out, err := sv.Ctl("stop", "httpserver"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if st, detail := sv.Status("httpserver"); st != "STOPPED" || realclient.Alive(pid) || realclient.Alive(serving) {
		t.Errorf("after supervisorctl stop: %s %s", st, detail)
	}
	s.checkPIDFileGone()
	if strings.Contains(sv.Log(), "SIGKILL") || strings.Contains(sv.Log(), "BACKOFF") {
		t.Errorf("supervisord's log:\n%s", sv.Log())
	}
}

// TestSupervisedDetachAndDeployTool detaches a supervised server and drives
// it with the daemonize command as any other: status names the supervisor
// and the serving generation, restart and stop report as ever, and the
// supervisor's pid stays in the pid file throughout.
func TestSupervisedDetachAndDeployTool(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	if code, out := s.launch("-supervise"); code != 0 {
		t.Fatalf("launcher exited %d: %s", code, out)
	}
	sup := s.mustPID()
	if st := readStat(t, sup); st.sid != sup {
		t.Errorf("the supervisor %d is not in a session of its own: %+v", sup, st)
	}
	s.sessions[sup] = true // the generations are in its session: the cleanup finds them
	first := servingPID(s.addr)
	code, out := tool(t, "status", "-pidfile", s.pidFile)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("ready: pid %d, generation 1", first)) || !strings.Contains(out, fmt.Sprintf("supervisor: pid %d", sup)) {
		t.Errorf("status: exit %d, %q", code, out)
	}
	code, out = tool(t, "restart", "-pidfile", s.pidFile)
	second := servingPID(s.addr)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("restarted: pid %d -> %d (generation 2)", first, second)) {
		t.Errorf("restart: exit %d, %q", code, out)
	}
	if got := s.mustPID(); got != sup {
		t.Errorf("pid file names %d after the restart, want the supervisor %d", got, sup)
	}
	code, out = tool(t, "stop", "-pidfile", s.pidFile)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("stopped: pid %d", sup)) {
		t.Errorf("stop: exit %d, %q", code, out)
	}
	if alive(sup) || alive(second) {
		t.Errorf("after stop: supervisor alive %v, generation alive %v", alive(sup), alive(second))
	}
	s.checkPIDFileGone()
}

// newGeneration waits until a generation other than old answers on addr,
// and, with a pid file, until the hand-over to it has ended (the status
// file names it, and no previous generation); it returns the new one.
func newGeneration(t testing.TB, addr, pidFile string, old int) int {
	t.Helper()
	var serving int
	waitFor(t, 20*time.Second, "a new generation to serve", func() bool {
		serving = servingPID(addr)
		return serving != 0 && serving != old
	})
	if pidFile != "" {
		waitFor(t, 20*time.Second, "the hand-over to end", func() bool {
			st, err := daemonize.ReadStatus(pidFile)
			return err == nil && st.PID == serving && st.Previous == nil
		})
	}
	return serving
}
