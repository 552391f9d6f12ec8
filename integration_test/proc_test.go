//go:build linux

// Package integration_test drives real daemonize programs: it builds
// examples/httpserver, runs it as a daemon, loads it, signals it and reads
// /proc. The test binary doubles as a helper server with faults to inject
// when DAEMONIZE_TEST_HELPER is set.
package integration_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

var (
	exampleBin string // examples/httpserver, version "dev"
	exampleV2  string // examples/httpserver, version "v2"
	helperBin  string // this test binary, run as a helper server
	toolBin    string // cmd/daemonize
)

func TestMain(m *testing.M) {
	if role := os.Getenv("DAEMONIZE_TEST_HELPER"); role != "" {
		runHelper(role)
		return
	}
	// Processes orphaned by their launcher or their parent generation are
	// reparented to the test process, so that tests can reap them, read
	// their exit status and prove that nothing is left behind.
	if err := proc.BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Servers built with -race: a race kills the server (so a test fails),
	// and exit does not wait a second for other reports.
	os.Setenv("GORACE", "halt_on_error=1 atexit_sleep_ms=0")
	dir, err := os.MkdirTemp("", "daemonize-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		exampleBin = filepath.Join(dir, "httpserver")
		exampleV2 = filepath.Join(dir, "httpserver-v2")
		if err := build(exampleBin, "dev"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := build(exampleV2, "v2"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		toolBin = filepath.Join(dir, "daemonize")
		ctx, cancel := context.WithTimeout(context.Background(), buildLimit)
		defer cancel()
		if err := proc.Build(ctx, "", toolBin, "../cmd/daemonize"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if helperBin, err = os.Executable(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		code := m.Run()
		if left := children(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: processes left behind: %v\n", left)
			for _, pid := range left {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				fmt.Fprintf(os.Stderr, "  %d: %s\n     %s\n", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), st)
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return 1
		}
		return code
	}()
	os.Exit(code)
}

// buildLimit bounds each go build of TestMain.
const buildLimit = 5 * time.Minute

// build compiles examples/httpserver to out, with the race detector when the
// tests run with it, so that the library is checked under real load too.
func build(out, version string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildLimit)
	defer cancel()
	flags := []string{"-ldflags=-X main.version=" + version}
	if raceEnabled {
		flags = append(flags, "-race")
	}
	return proc.Build(ctx, "", out, "../examples/httpserver", flags...)
}

// scale stretches every deadline for slow machines: DAEMONIZE_TEST_SCALE=3.
func scale(d time.Duration) time.Duration {
	if f, err := strconv.ParseFloat(os.Getenv("DAEMONIZE_TEST_SCALE"), 64); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(scale(limit), cond) {
		t.Fatalf("timed out after %s waiting for %s", scale(limit), what)
	}
}

// poll reports whether cond became true within limit.
func poll(limit time.Duration, cond func() bool) bool { return proc.Poll(limit, cond) }

// freeAddr returns a loopback address with a port nobody listens on, below
// the kernel's ephemeral range (see [proc.FreeAddr]).
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// server is one service under test: an executable copied into a temporary
// directory (so that a test can replace it by rename), its address, pid
// file and output files, and every pid seen serving it.
type server struct {
	t       testing.TB
	dir     string
	bin     string
	addr    string
	pidFile string
	stdout  string
	stderr  string
	env     []string
	args    []string

	mu       sync.Mutex
	pids     []int
	sessions map[int]bool // sessions of the detached daemons: every generation shares its first's
}

// newServer prepares a service running a copy of bin.
func newServer(t testing.TB, bin string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{
		t:       t,
		dir:     dir,
		bin:     filepath.Join(dir, "httpserver"),
		addr:    freeAddr(t),
		pidFile: filepath.Join(dir, "httpserver.pid"),
		stdout:  filepath.Join(dir, "stdout.log"),
		stderr:  filepath.Join(dir, "stderr.log"),
	}
	s.install(bin)
	t.Cleanup(s.cleanup)
	return s
}

// install puts bin at the server's path by rename, as a deploy does (see
// [proc.Install]).
func (s *server) install(bin string) {
	s.t.Helper()
	if err := proc.Install(bin, s.bin); err != nil {
		s.t.Fatal(err)
	}
}

// installScript puts a shell script at the server's path by rename (see
// [proc.InstallScript]).
func (s *server) installScript(script string) {
	s.t.Helper()
	if err := proc.InstallScript(script, s.bin); err != nil {
		s.t.Fatal(err)
	}
}

// flags returns the example's command line for this server.
func (s *server) flags(extra ...string) []string {
	args := []string{"-addr", s.addr, "-pidfile", s.pidFile, "-stdout", s.stdout, "-stderr", s.stderr, "-drain", scale(10 * time.Second).String(), "-upgrade-timeout", scale(10 * time.Second).String()}
	return append(append(args, s.args...), extra...)
}

// launch runs the server with -detach and returns the launcher's exit code
// and output.
func (s *server) launch(extra ...string) (int, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scale(30*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, s.flags(append([]string{"-detach"}, extra...)...)...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		s.t.Fatalf("launch %s: %v", s.bin, err)
	}
	if pid, err := s.readPID(); err == nil {
		s.track(pid)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// start launches the server detached and waits until it serves; it returns
// the daemon's pid.
func (s *server) start(extra ...string) int {
	s.t.Helper()
	code, out := s.launch(extra...)
	if code != 0 {
		s.t.Fatalf("launcher exited %d: %s\nstderr file:\n%s", code, out, s.read(s.stderr))
	}
	pid := s.mustPID()
	if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d ", pid)) {
		s.t.Fatalf("GET / right after the launcher returned: %q, want pid=%d", body, pid)
	}
	return pid
}

// foreground starts the server without -detach, as a child of the test.
func (s *server) foreground(extra ...string) *exec.Cmd {
	s.t.Helper()
	cmd := exec.Command(s.bin, s.flags(extra...)...)
	cmd.Env = append(os.Environ(), s.env...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.track(cmd.Process.Pid)
	return cmd
}

func (s *server) track(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, err := proc.ReadStat(pid); err == nil && st.SID == pid {
		if s.sessions == nil {
			s.sessions = make(map[int]bool)
		}
		s.sessions[st.SID] = true
	}
	for _, p := range s.pids {
		if p == pid {
			return
		}
	}
	s.pids = append(s.pids, pid)
}

// readPID returns the pid in the pid file.
func (s *server) readPID() (int, error) {
	b, err := os.ReadFile(s.pidFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (s *server) mustPID() int {
	s.t.Helper()
	pid, err := s.readPID()
	if err != nil {
		s.t.Fatalf("pid file: %v", err)
	}
	s.track(pid)
	return pid
}

// waitPIDChange waits until the pid file names a process other than old.
func (s *server) waitPIDChange(old int) int {
	s.t.Helper()
	var pid int
	waitFor(s.t, 20*time.Second, "the pid file to name a new process", func() bool {
		p, err := s.readPID()
		pid = p
		return err == nil && p != old
	})
	s.track(pid)
	return pid
}

// checkPIDFileGone checks that the pid file was removed.
func (s *server) checkPIDFileGone() {
	s.t.Helper()
	if _, err := os.Stat(s.pidFile); !os.IsNotExist(err) {
		s.t.Errorf("pid file %s still there after the stop: %v", s.pidFile, err)
	}
}

// signal sends sig to pid.
func (s *server) signal(pid int, sig syscall.Signal) {
	s.t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		s.t.Fatalf("kill -%d %d: %v", sig, pid, err)
	}
}

// get fetches path on a new connection and returns the body; it fails the
// test on any error.
func (s *server) get(path string) string {
	s.t.Helper()
	body, err := s.tryGet(path)
	if err != nil {
		s.t.Fatal(err)
	}
	return body
}

// probe is a client that opens a connection per request, so that a test's
// own requests never hold a keep-alive connection to an old process.
var probe = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}

func (s *server) tryGet(path string) (string, error) { return getFrom(s.addr, path) }

// getFrom fetches path from addr with probe and returns the body of a 200.
func getFrom(addr, path string) (string, error) {
	resp, err := probe.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

func (s *server) read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// cleanup kills every process the test saw and reaps it.
func (s *server) cleanup() {
	s.mu.Lock()
	pids := s.pids
	s.mu.Unlock()
	if p, err := s.readPID(); err == nil {
		pids = append(pids, p)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Every generation of a detached daemon is in its first one's process
	// group, including those the test never saw (a storm of restarts makes
	// some). Once their parent has exited they are children of the test
	// process: kill and reap them by session until none is left.
	s.mu.Lock()
	sessions := s.sessions
	s.mu.Unlock()
	for sid := range sessions {
		syscall.Kill(-sid, syscall.SIGKILL)
	}
	if !poll(scale(10*time.Second), func() bool {
		left := false
		for _, pid := range children() {
			if st, err := proc.ReadStat(pid); err == nil && sessions[st.SID] {
				left = true
				proc.Reap(pid)
			}
		}
		return !left
	}) {
		s.t.Errorf("cleanup: processes of sessions %v still there", sessions)
	}
	for _, pid := range pids {
		if err := waitExit(pid, scale(10*time.Second)); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	}
	if s.t.Failed() {
		s.t.Logf("stderr file:\n%s", s.read(s.stderr))
	}
}

// reap waits until pid has exited and reaps it if it is a child (the test
// process is the subreaper of every daemon). known says whether the status
// is known: it is only for children.
func reap(pid int, limit time.Duration) (ws unix.WaitStatus, known, exited bool) {
	var e proc.Exit
	exited = poll(limit, func() bool {
		var ok bool
		ok, e = proc.Reap(pid)
		return ok
	})
	return e.Status, e.Known, exited
}

// waitExit waits until pid has exited, and reaps it.
func waitExit(pid int, limit time.Duration) error {
	if _, _, exited := reap(pid, limit); !exited {
		return fmt.Errorf("process %d still running after %s", pid, limit)
	}
	return nil
}

// mustExit waits for pid to exit and returns its exit code, failing the
// test if it does not exit, was killed by a signal, or was not our child.
func mustExit(t testing.TB, pid int, limit time.Duration) int {
	t.Helper()
	ws, known, exited := reap(pid, scale(limit))
	switch {
	case !exited:
		t.Fatalf("process %d still running after %s", pid, scale(limit))
	case !known:
		t.Fatalf("process %d exited, but its status went to another parent", pid)
	case ws.Signaled():
		t.Fatalf("process %d was killed by %v", pid, ws.Signal())
	}
	return ws.ExitStatus()
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool { return proc.Alive(pid) }

// stat is what the tests read of /proc/<pid>/stat.
type stat struct {
	state           string
	ppid, pgid, sid int
}

func fromProc(st proc.Stat) stat {
	return stat{state: string(st.State), ppid: st.PPID, pgid: st.PGID, sid: st.SID}
}

// procStat parses /proc/<pid>/stat; it returns the zero stat if b is not one.
func procStat(b []byte) stat {
	st, _ := proc.ParseStat(b)
	return fromProc(st)
}

func readStat(t testing.TB, pid int) stat {
	t.Helper()
	st, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return fromProc(st)
}

// children lists the processes whose parent is the test process.
func children() []int { return childrenOf(os.Getpid()) }

// childrenOf lists the processes whose parent is ppid, zombies included.
func childrenOf(ppid int) []int { return proc.Children(ppid) }

// processesWhere lists the processes for which keep reports true.
func processesWhere(keep func(pid int) bool) []int {
	all, _ := proc.PIDs()
	var pids []int
	for _, pid := range all {
		if keep(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// openFDs counts the open descriptors of pid, leaving out the sockets of
// TCP connections (which come and go with clients) but not listening ones.
func openFDs(t testing.TB, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	listening := listeningSockets(pid)
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err != nil {
			continue // closed since ReadDir
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); !ok || listening[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n
}

// listeningSockets returns the inodes of the listening TCP sockets in pid's
// network namespace.
func listeningSockets(pid int) map[string]bool {
	inodes := make(map[string]bool)
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fields := strings.Fields(line); len(fields) > 9 && fields[3] == "0A" {
				inodes[fields[9]] = true
			}
		}
	}
	return inodes
}

// fdTarget returns what descriptor fd of pid points at.
func fdTarget(t testing.TB, pid, fd int) string {
	t.Helper()
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil {
		t.Fatal(err)
	}
	return target
}
