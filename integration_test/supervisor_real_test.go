//go:build linux

package integration_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// TestSupervisordRunsTheExample runs the example in the foreground under
// supervisord, which watches the pid it started: it serves, supervisorctl
// reports that pid, and supervisorctl stop drains and stops it cleanly.
func TestSupervisordRunsTheExample(t *testing.T) {
	s := newServer(t, exampleBin)
	sv := realclient.StartSupervisord(t, realclient.Program{
		Name:    "httpserver",
		Command: s.bin + " " + strings.Join(s.flags("-drain", "5s"), " "),
	})
	waitFor(t, 20*time.Second, "supervisord to report the program RUNNING", func() bool {
		st, _ := sv.Status("httpserver")
		return st == "RUNNING"
	})
	pid := sv.PID("httpserver")
	if got := s.mustPID(); got != pid {
		t.Fatalf("supervisorctl pid says %d, the pid file %d", pid, got)
	}
	if r, err := realclient.Curl(context.Background(), "http://"+s.addr+"/"); err != nil || !r.OK() || !strings.Contains(r.Body, fmt.Sprintf("pid=%d generation=1 ", pid)) {
		t.Fatalf("GET /: %v, %v", r, err)
	}
	if out, err := sv.Ctl("stop", "httpserver"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	st, detail := sv.Status("httpserver")
	t.Logf("after supervisorctl stop: %s %s", st, detail)
	if st != "STOPPED" || realclient.Alive(pid) {
		t.Errorf("after supervisorctl stop: %s %s; pid %d alive: %v\n%s", st, detail, pid, realclient.Alive(pid), sv.Log())
	}
	s.checkPIDFileGone()
	if strings.Contains(sv.Log(), "SIGKILL") {
		t.Errorf("supervisord killed the program:\n%s", sv.Log())
	}
}

// TestPID1OfPIDNamespace runs the example as PID 1 of a new PID namespace,
// as a container runtime without an init does: it serves, says pid=1, and a
// SIGTERM drains and stops it with status 0.
func TestPID1OfPIDNamespace(t *testing.T) {
	u := newUnitServer(t)
	argv := append([]string{u.bin}, strings.Fields(u.execStart(u.addr))[1:]...)
	ns := realclient.StartInPIDNamespace(t, u.stderr, nil, argv...)
	var r realclient.CurlResult
	waitFor(t, 20*time.Second, "the server to answer", func() bool {
		r, _ = realclient.Curl(context.Background(), "http://"+u.addr+"/")
		return r.OK()
	})
	if !strings.HasPrefix(r.Body, "pid=1 generation=1 ") || u.nsPID() != 1 {
		t.Errorf("GET / = %q, pid file %d; want pid 1", r.Body, u.nsPID())
	}
	if got, err := realclient.NSPID(ns.PID()); err != nil || got != 1 {
		t.Errorf("pid %d outside is %d inside (%v), want 1", ns.PID(), got, err)
	}
	if err := syscall.Kill(ns.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, ok := ns.Wait(scale(20 * time.Second))
	if !ok || code != 0 {
		t.Errorf("after SIGTERM: exited %v, code %d", ok, code)
	}
	if _, err := os.Stat(u.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file still there after the stop: %v", err)
	}
}
