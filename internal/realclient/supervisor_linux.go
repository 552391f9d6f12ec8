//go:build linux

package realclient

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Program is a [program:NAME] section of supervisord's configuration.
type Program struct {
	Name         string
	Command      string // as supervisord reads it (shell-like words, no shell)
	Environment  string // KEY="value",KEY2="value2"
	AutoRestart  bool   // autorestart=true; false means autorestart=false
	StartSecs    int    // how long it must run to count as started; 0 means 1
	StopSignal   string // TERM unless set
	StopWaitSecs int    // before SIGKILL; 0 means 20
}

// Supervisord is a supervisord watching programs, with its own
// configuration, unix socket, pid file and logs in a directory of the test.
type Supervisord struct {
	t    testing.TB
	Dir  string // configuration, logs, the programs' output (NAME.out, NAME.err)
	Conf string
	sock string
	p    *process
}

// StartSupervisord starts supervisord in the foreground (nodaemon=true)
// with programs, waits until supervisorctl reaches it, and stops it in
// t.Cleanup.
func StartSupervisord(t testing.TB, programs ...Program) *Supervisord {
	t.Helper()
	path, err := lookPath("supervisord")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lookPath("supervisorctl"); err != nil {
		t.Fatal(err)
	}
	s := &Supervisord{t: t, Dir: t.TempDir()}
	s.Conf = filepath.Join(s.Dir, "supervisord.conf")
	// A unix socket's path has at most 107 bytes; a test's directory can be
	// longer than that.
	sockDir, err := os.MkdirTemp("", "sv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	s.sock = filepath.Join(sockDir, "s.sock")
	var conf strings.Builder
	fmt.Fprintf(&conf, `[supervisord]
nodaemon=true
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s
loglevel=info

[unix_http_server]
file=%[2]s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[2]s
`, s.Dir, s.sock)
	for _, p := range programs {
		startSecs, stopWait, stopSignal := p.StartSecs, p.StopWaitSecs, p.StopSignal
		if startSecs <= 0 {
			startSecs = 1
		}
		if stopWait <= 0 {
			stopWait = 20
		}
		if stopSignal == "" {
			stopSignal = "TERM"
		}
		fmt.Fprintf(&conf, "\n[program:%s]\ncommand=%s\nautostart=true\nautorestart=%v\nstartsecs=%d\nstopsignal=%s\nstopwaitsecs=%d\nstdout_logfile=%s\nstderr_logfile=%s\n",
			p.Name, p.Command, p.AutoRestart, startSecs, stopSignal, stopWait,
			filepath.Join(s.Dir, p.Name+".out"), filepath.Join(s.Dir, p.Name+".err"))
		if p.Environment != "" {
			fmt.Fprintf(&conf, "environment=%s\n", p.Environment)
		}
	}
	if err := os.WriteFile(s.Conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-c", s.Conf)
	out, err := os.Create(filepath.Join(s.Dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.p, err = start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if !poll(20*time.Second, func() bool {
		_, err := s.Ctl("pid")
		return err == nil || s.p.exited()
	}) || s.p.exited() {
		t.Fatalf("supervisord not answering within 20s: %s", s.Log())
	}
	return s
}

// Ctl runs supervisorctl -c CONF ARGS... and returns its output.
func (s *Supervisord) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "supervisorctl", append([]string{"-c", s.Conf}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("supervisorctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Status returns the state supervisorctl status gives program (RUNNING,
// STARTING, EXITED, BACKOFF, FATAL, STOPPED...) and the rest of its line.
func (s *Supervisord) Status(program string) (state, detail string) {
	out, _ := s.Ctl("status", program) // exits non-zero unless RUNNING
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != program {
		return "", strings.TrimSpace(out)
	}
	return f[1], strings.Join(f[2:], " ")
}

// PID returns the pid supervisord watches for program (0 when it runs
// none).
func (s *Supervisord) PID(program string) int {
	out, err := s.Ctl("pid", program)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

// Log returns supervisord's log, or what it printed if it has none (it
// failed before opening it).
func (s *Supervisord) Log() string {
	if b, _ := os.ReadFile(filepath.Join(s.Dir, "supervisord.log")); len(b) > 0 {
		return string(b)
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir, "stdout.log"))
	return string(b)
}

// Stop stops supervisord with SIGTERM (it stops its programs first, each
// within its stopwaitsecs) and waits up to a minute; then it kills
// supervisord and the processes it still had. Stop may be called more
// than once.
func (s *Supervisord) Stop() {
	if s.p.exited() {
		return
	}
	kids := ChildrenOf(s.p.pid())
	if clean, err := s.p.stop(syscall.SIGTERM, time.Minute); !clean {
		s.t.Errorf("supervisord (pid %d) still running a minute after SIGTERM; killed it (%v)", s.p.pid(), err)
		for _, k := range kids {
			syscall.Kill(k, syscall.SIGKILL)
			WaitGone(k, 10*time.Second)
		}
	}
}
