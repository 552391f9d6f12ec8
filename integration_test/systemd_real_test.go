//go:build linux

package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// unitServer is the example run by a supervisor in a PID namespace of its
// own: its pid file holds pids of that namespace, which mean other
// processes outside. So it is not a *server, whose cleanup kills the pid
// in the pid file; the namespace's teardown kills it instead.
type unitServer struct {
	bin, addr, pidFile, stderr string
}

func newUnitServer(t *testing.T) *unitServer {
	t.Helper()
	dir := t.TempDir()
	u := &unitServer{
		bin:     filepath.Join(dir, "httpserver"),
		addr:    freeAddr(t),
		pidFile: filepath.Join(dir, "httpserver.pid"),
		stderr:  filepath.Join(dir, "stderr.log"),
	}
	if err := os.Link(exampleBin, u.bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b, _ := os.ReadFile(u.stderr)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if !t.Failed() {
			lines = lines[max(0, len(lines)-4):]
		}
		t.Logf("the server's stderr (%s):\n%s", map[bool]string{true: "all", false: "the last lines"}[t.Failed()], strings.Join(lines, "\n"))
	})
	return u
}

// execStart is the unit's command line.
func (u *unitServer) execStart(addr string) string {
	return fmt.Sprintf("%s -addr %s -pidfile %s -stderr %s -drain 5s -upgrade-timeout 20s", u.bin, addr, u.pidFile, u.stderr)
}

// nsPID reads the pid file: a pid inside the namespace.
func (u *unitServer) nsPID() int {
	b, _ := os.ReadFile(u.pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// reload runs systemctl reload and waits until systemd follows a new main
// process that the pid file names too, and the old one has exited. It
// returns the new MainPID and the times from the reload to both.
func reload(t *testing.T, sd *realclient.Systemd, unit string, u *unitServer) (newMain int, moved, gone time.Duration) {
	t.Helper()
	// Right after the previous generation exits, MainPID names for a
	// moment a helper through which the new one becomes systemd's own
	// child again (see the library's systemd_unix.go): wait for the server.
	var old, oldHost int
	waitFor(t, 10*time.Second, "MainPID to name the server", func() bool {
		old = sd.MainPID(unit)
		oldHost = sd.HostPID(old)
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", oldHost))
		return oldHost != 0 && exe == u.bin
	})
	t0 := time.Now()
	if out, err := sd.Systemctl("reload", unit); err != nil {
		t.Fatalf("systemctl reload: %v: %s", err, out)
	}
	var st map[string]string
	waitFor(t, 30*time.Second, "systemd to follow a new main process", func() bool {
		st = sd.Show(unit, "MainPID", "ActiveState", "SubState")
		newMain, _ = strconv.Atoi(st["MainPID"])
		return newMain != old && newMain != 0 && st["ActiveState"] == "active" && u.nsPID() == newMain
	})
	moved = time.Since(t0)
	if !realclient.WaitGone(oldHost, scale(30*time.Second)) {
		t.Fatalf("old main process %d (%d outside) still running 30s after the reload", old, oldHost)
	}
	gone = time.Since(t0)
	if host := sd.HostPID(newMain); host == 0 {
		t.Errorf("new MainPID %d runs nowhere", newMain)
	} else if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", host)); exe != u.bin {
		t.Errorf("new MainPID %d runs %s, want %s", newMain, exe, u.bin)
	}
	return newMain, moved, gone
}

// logSystemd logs what systemd said about the test's units.
func logSystemd(t *testing.T, sd *realclient.Systemd) {
	t.Helper()
	t.Logf("systemd's log (dmesg) about %s-*:\n%s", sd.ID, strings.Join(sd.Log(), "\n"))
}

// TestSystemdNotifyReload runs the example under a real systemd as
// examples/systemd/httpserver-notify.service does (Type=notify,
// ExecReload=kill -USR1 $MAINPID), reloads it while curl requests run, and
// stops it: systemd must follow each new main process, and the stop must
// end in Result=success.
func TestSystemdNotifyReload(t *testing.T) {
	const reloads = 3
	u := newUnitServer(t)
	sd := realclient.BootSystemd(t)
	unit := sd.WriteUnit("notify.service", fmt.Sprintf(`[Unit]
Description=daemonize test: the example, Type=notify
DefaultDependencies=no

[Service]
Type=notify
ExecStart=%s
ExecReload=/bin/kill -USR1 $MAINPID
TimeoutStopSec=20s
`, u.execStart(u.addr)))
	defer logSystemd(t, sd)
	if out, err := sd.Systemctl("start", unit); err != nil {
		t.Fatalf("systemctl start: %v: %s", err, out)
	}
	if out, _ := sd.Systemctl("is-active", unit); strings.TrimSpace(out) != "active" {
		t.Fatalf("systemctl is-active after start: %q", out)
	}
	main := sd.MainPID(unit)
	if main == 0 || u.nsPID() != main {
		t.Fatalf("MainPID %d, pid file %d", main, u.nsPID())
	}

	curls := curlInBackground(t, "http://"+u.addr+"/")
	var moved, gone []time.Duration
	for i := range reloads {
		next := time.Now().Add(time.Second)
		newMain, m, g := reload(t, sd, unit, u)
		moved, gone = append(moved, m), append(gone, g)
		t.Logf("reload %d: MainPID %d -> %d", i+1, main, newMain)
		main = newMain
		time.Sleep(time.Until(next))
	}
	tally := curls()
	t.Logf("curl during %d reloads: %v; bodies: %v", reloads, tally, tally.Bodies)
	t.Logf("reload -> systemd follows the new main process: %s", durations(moved))
	t.Logf("reload -> old main process gone: %s", durations(gone))
	if tally.Requests == 0 || tally.Failed != 0 {
		t.Errorf("curl across the reloads: %v", tally)
	}
	if st := sd.Show(unit, "NRestarts"); st["NRestarts"] != "0" {
		t.Errorf("NRestarts=%s: systemd restarted the service", st["NRestarts"])
	}

	if out, err := sd.Systemctl("stop", unit); err != nil {
		t.Errorf("systemctl stop: %v: %s", err, out)
	}
	st := sd.Show(unit, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
	t.Logf("after systemctl stop: %v", st)
	if st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Errorf("after systemctl stop: ActiveState=%s Result=%s, want inactive and success", st["ActiveState"], st["Result"])
	}
	// Result=success is also what systemd says when it killed a main
	// process whose exit it could not see; a stop must let it drain.
	if killed := sd.Killed(unit); len(killed) > 0 {
		t.Errorf("systemctl stop sent SIGKILL:\n%s", strings.Join(killed, "\n"))
	}
}

// TestSystemdSocketActivation runs the pair examples/systemd/httpserver.socket
// and httpserver.service: systemd binds the socket, the first connection
// starts the service, which serves on the socket it was passed, and keeps
// serving across a reload.
func TestSystemdSocketActivation(t *testing.T) {
	u := newUnitServer(t)
	sd := realclient.BootSystemd(t)
	// The service a socket activates has the socket's name.
	service := sd.Unit("httpserver.service")
	socket := sd.WriteUnit("httpserver.socket", fmt.Sprintf(`[Unit]
Description=daemonize test: the example's socket
DefaultDependencies=no

[Socket]
ListenStream=%s
FileDescriptorName=web
`, u.addr))
	sd.WriteUnit("httpserver.service", fmt.Sprintf(`[Unit]
Description=daemonize test: the example, socket-activated
DefaultDependencies=no
Requires=%s

[Service]
Type=notify
ExecStart=%s
ExecReload=/bin/kill -USR1 $MAINPID
TimeoutStopSec=20s
`, socket, u.execStart(u.addr)))
	defer logSystemd(t, sd)
	if out, err := sd.Systemctl("start", socket); err != nil {
		t.Fatalf("systemctl start %s: %v: %s", socket, err, out)
	}
	if st := sd.Show(service, "ActiveState"); st["ActiveState"] != "inactive" {
		t.Fatalf("the service is %s before any connection", st["ActiveState"])
	}
	// The first connection starts the service.
	r, err := realclient.Curl(context.Background(), "http://"+u.addr+"/")
	if err != nil || !r.OK() || !strings.Contains(r.Body, "generation=1 ") {
		t.Fatalf("first request: %v, %v", r, err)
	}
	main := sd.MainPID(service)
	if !strings.Contains(r.Body, fmt.Sprintf("pid=%d ", main)) {
		t.Errorf("first request answered %q; MainPID is %d", r.Body, main)
	}

	curls := curlInBackground(t, "http://"+u.addr+"/")
	time.Sleep(300 * time.Millisecond)
	newMain, moved, gone := reload(t, sd, service, u)
	time.Sleep(300 * time.Millisecond)
	tally := curls()
	t.Logf("reload: MainPID %d -> %d; systemd followed after %s, old gone after %s", main, newMain, moved.Round(time.Millisecond), gone.Round(time.Millisecond))
	t.Logf("curl across the reload: %v; bodies: %v", tally, tally.Bodies)
	if tally.Requests == 0 || tally.Failed != 0 {
		t.Errorf("curl across the reload: %v", tally)
	}
	if r, err := realclient.Curl(context.Background(), "http://"+u.addr+"/"); err != nil || !r.OK() || !strings.Contains(r.Body, fmt.Sprintf("pid=%d generation=2 ", newMain)) {
		t.Errorf("after the reload: %v, %v; want pid %d generation 2", r, err, newMain)
	}
	for _, unit := range []string{service, socket} {
		if out, err := sd.Systemctl("stop", unit); err != nil {
			t.Errorf("systemctl stop %s: %v: %s", unit, err, out)
		}
	}
	st := sd.Show(service, "ActiveState", "Result")
	t.Logf("after systemctl stop: %v", st)
}

// curlInBackground runs curl against url every 10 ms until the returned
// function stops it and returns the tally, or the test ends.
func curlInBackground(t *testing.T, url string) (stop func() *realclient.CurlTally) {
	ctx, cancel := context.WithCancel(context.Background())
	tallied := make(chan *realclient.CurlTally, 1)
	go func() { tallied <- realclient.CurlLoop(ctx, url, 10*time.Millisecond) }()
	var tally *realclient.CurlTally
	stop = func() *realclient.CurlTally {
		if tally == nil {
			cancel()
			tally = <-tallied
		}
		return tally
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestSystemdSupervised runs the example with -supervise under a real
// systemd, Type=notify: the supervisor is the main process for the whole
// life of the service, so MainPID never changes while each reload makes a
// new generation serve; no request fails, and systemctl stop drains and
// ends cleanly.
func TestSystemdSupervised(t *testing.T) {
	u := newUnitServer(t)
	sd := realclient.BootSystemd(t)
	unit := sd.WriteUnit("supervised.service", fmt.Sprintf(`[Unit]
Description=daemonize test: the example, supervised, Type=notify
DefaultDependencies=no

[Service]
Type=notify
ExecStart=%s -supervise
ExecReload=/bin/kill -USR1 $MAINPID
TimeoutStopSec=20s
`, u.execStart(u.addr)))
	defer logSystemd(t, sd)
	if out, err := sd.Systemctl("start", unit); err != nil {
		t.Fatalf("systemctl start: %v: %s", err, out)
	}
	main := sd.MainPID(unit)
	if main == 0 || u.nsPID() != main {
		t.Fatalf("MainPID %d, pid file %d", main, u.nsPID())
	}
	curls := curlInBackground(t, "http://"+u.addr+"/")
	serving := servingPID(u.addr)
	for i := range 3 {
		if out, err := sd.Systemctl("reload", unit); err != nil {
			t.Fatalf("systemctl reload: %v: %s", err, out)
		}
		old := serving
		serving = newGeneration(t, u.addr, u.pidFile, old)
		if got := sd.MainPID(unit); got != main {
			t.Fatalf("reload %d: MainPID %d, want the supervisor %d throughout", i+1, got, main)
		}
		t.Logf("reload %d: generation pid %d -> %d, MainPID %d", i+1, old, serving, main)
	}
	tally := curls()
	t.Logf("curl during 3 reloads: %v", tally)
	if tally.Requests == 0 || tally.Failed != 0 {
		t.Errorf("curl across the reloads: %v", tally)
	}
	if out, err := sd.Systemctl("stop", unit); err != nil {
		t.Errorf("systemctl stop: %v: %s", err, out)
	}
	st := sd.Show(unit, "ActiveState", "Result", "ExecMainStatus")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" || st["ExecMainStatus"] != "0" {
		t.Errorf("after systemctl stop: %v, want inactive, success, status 0", st)
	}
	if killed := sd.Killed(unit); len(killed) > 0 {
		t.Errorf("systemctl stop sent SIGKILL:\n%s", strings.Join(killed, "\n"))
	}
}
