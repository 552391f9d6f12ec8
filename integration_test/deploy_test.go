//go:build linux

package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// tool runs cmd/daemonize and returns its exit code and output.
func tool(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scale(60*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, toolBin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("daemonize %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestDeployRestart(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start()
	load := s.loadInBackground()

	code, out := tool(t, "restart", "-pidfile", s.pidFile)
	next := s.mustPID()
	if code != 0 || !strings.Contains(out, fmt.Sprintf("restarted: pid %d -> %d (generation 2)", pid, next)) {
		t.Fatalf("restart: exit %d, output %q", code, out)
	}
	if alive(pid) {
		t.Errorf("restart returned 0 while the old process %d still runs", pid)
	}
	if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d ", next)) {
		t.Errorf("GET / = %q, want the new process %d", body, next)
	}

	code, out = tool(t, "status", "-pidfile", s.pidFile)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("ready: pid %d, generation 2", next)) || !strings.Contains(out, "last restart: ok") {
		t.Errorf("status: exit %d, output %q", code, out)
	}
	code, out = tool(t, "status", "-pidfile", s.pidFile, "-json")
	var st daemonize.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.PID != next || st.State != daemonize.StateReady || st.LastRestart == nil || !st.LastRestart.OK || st.LastRestart.OldPID != pid {
		t.Errorf("status -json: exit %d, %v, %+v", code, err, st)
	}
	load.check(t)

	code, out = tool(t, "stop", "-pidfile", s.pidFile)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("stopped: pid %d", next)) || alive(next) {
		t.Errorf("stop: exit %d, output %q", code, out)
	}
	for _, f := range []string{s.pidFile, daemonize.StatusPath(s.pidFile)} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s after stop: %v", f, err)
		}
	}
	code, out = tool(t, "status", "-pidfile", s.pidFile)
	if code != 3 || !strings.Contains(out, "not running") {
		t.Errorf("status after stop: exit %d, output %q; want 3", code, out)
	}
	code, out = tool(t, "stop", "-pidfile", s.pidFile)
	if code != 0 || !strings.Contains(out, "not running") {
		t.Errorf("stop when not running: exit %d, output %q; want 0", code, out)
	}
}

// TestDeployFailedRestart installs a broken binary: the command exits 1
// with the reason within a second of the daemon knowing it; then a hung
// one: exit 1 after the upgrade timeout, or 2 on the command's own timeout.
func TestDeployFailedRestart(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start("-upgrade-timeout", "1s")

	s.installScript("#!/bin/sh\necho cannot open config file >&2\nexit 1\n")
	code, out := tool(t, "restart", "-pidfile", s.pidFile)
	returned := time.Now()
	if code != 1 || !strings.Contains(out, "exit status 1") || !strings.Contains(out, "cannot open config file") {
		t.Errorf("broken binary: exit %d, output %q; want 1 with the exit status and the child's stderr", code, out)
	}
	st, err := daemonize.ReadStatus(s.pidFile)
	if err != nil || st.LastRestart == nil || st.LastRestart.OK {
		t.Fatalf("status after the failed restart: %+v, %v", st, err)
	}
	if late := returned.Sub(st.LastRestart.Ended); late > scale(time.Second) {
		t.Errorf("the command returned %s after the daemon knew the restart had failed, want within 1s", late)
	}

	s.installScript("#!/bin/sh\nexec sleep 600\n")
	code, out = tool(t, "restart", "-pidfile", s.pidFile, "-timeout", "200ms")
	if code != 2 || !strings.Contains(out, "timed out") {
		t.Errorf("hung binary, short -timeout: exit %d, output %q; want 2", code, out)
	}
	// That restart is still under way: the next request, made during it,
	// is answered by a follow-up attempt, which fails the same way once
	// tableflip has killed the script (which never told its pid).
	code, out = tool(t, "restart", "-pidfile", s.pidFile)
	if code != 1 || !strings.Contains(out, "not ready within Options.UpgradeTimeout (1s)") {
		t.Errorf("hung binary: exit %d, output %q; want 1 and the upgrade timeout", code, out)
	}
	if got := s.mustPID(); got != pid {
		t.Errorf("pid file names %d, want the old process %d", got, pid)
	}
	s.install(exampleV2)
	if code, out := tool(t, "restart", "-pidfile", s.pidFile); code != 0 {
		t.Errorf("restart with the good binary back: exit %d, output %q", code, out)
	}
}

func TestDeployBadPIDFiles(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	write := func(content string) {
		if err := os.WriteFile(s.pidFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content string
		status        int
		want          string
	}{
		{"missing", "", 3, "no pid file"},
		{"garbage", "garbage\n", 4, "not a process id"},
		{"dead pid", fmt.Sprintf("%d\n", dead.Process.Pid), 1, "has exited"},
		{"not ours", fmt.Sprintf("%d\n", os.Getpid()), 4, "not a daemonize program"},
	} {
		os.Remove(s.pidFile)
		if tc.content != "" {
			write(tc.content)
		}
		code, out := tool(t, "status", "-pidfile", s.pidFile)
		if code != tc.status || !strings.Contains(out, tc.want) {
			t.Errorf("%s: status exit %d, output %q; want %d and %q", tc.name, code, out, tc.status, tc.want)
		}
		code, out = tool(t, "restart", "-pidfile", s.pidFile)
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: restart exit %d, output %q; want 1 and %q", tc.name, code, out, tc.want)
		}
	}
	// A status file naming a live process that runs another program: the
	// pid was reused after a crash. The command must not signal it.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	write(strconv.Itoa(sleeper.Process.Pid) + "\n")
	b, _ := json.Marshal(daemonize.Status{PID: sleeper.Process.Pid, Generation: 1, State: daemonize.StateReady, Executable: s.bin})
	os.WriteFile(daemonize.StatusPath(s.pidFile), b, 0o644)
	code, out := tool(t, "stop", "-pidfile", s.pidFile)
	if code != 1 || !strings.Contains(out, "pid was reused") || !alive(sleeper.Process.Pid) {
		t.Errorf("stop of a reused pid: exit %d, output %q; want 1 and no signal", code, out)
	}
}
