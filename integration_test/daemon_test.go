//go:build linux

package integration_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestDetach(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start()

	st := readStat(t, pid)
	if st.sid != pid {
		t.Errorf("daemon %d is in session %d, want a session of its own", pid, st.sid)
	}
	if st.ppid != os.Getpid() {
		t.Errorf("daemon's parent is %d, want the launcher gone and the daemon reparented to the test (%d)", st.ppid, os.Getpid())
	}
	for fd, want := range []string{os.DevNull, s.stdout, s.stderr} {
		if got := fdTarget(t, pid, fd); got != want {
			t.Errorf("daemon fd %d -> %s, want %s", fd, got, want)
		}
	}
	wd, _ := os.Getwd()
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != wd {
		t.Errorf("daemon's working directory is %s, want the launcher's %s", cwd, wd)
	}
	if st, err := os.Stat(s.pidFile); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("pid file: %v, mode %v; want mode 0644", err, st.Mode())
	}

	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 10*time.Second); code != 0 {
		t.Errorf("daemon exited %d after SIGTERM, want 0", code)
	}
	for _, p := range []string{s.pidFile, s.pidFile + ".lock"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after a clean stop: %v", p, err)
		}
	}
}

func TestDaemonEnvironmentNotInherited(t *testing.T) {
	t.Parallel()
	s := newServer(t, helperBin)
	s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
	pid := s.start()
	for gen := 1; gen <= 2; gen++ {
		env := s.get("/env")
		for _, v := range []string{"DAEMONIZE_DETACHED", "TABLEFLIP_"} {
			if strings.Contains(env, v) {
				t.Errorf("generation %d: a process the daemon starts inherits %s:\n%s", gen, v, env)
			}
		}
		if gen == 1 {
			s.signal(pid, syscall.SIGUSR1)
			pid = s.waitPIDChange(pid)
		}
	}
}

func TestLaunchFailsWhenPortTaken(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, out := s.launch()
	if code != 1 || !strings.Contains(out, "address already in use") {
		t.Errorf("launch on a taken port: exit %d, output %q; want 1 and the daemon's bind error", code, out)
	}
	s.checkPIDFileGone()
}

func TestSecondInstanceRefused(t *testing.T) {
	t.Parallel()
	first := newServer(t, exampleBin)
	pid := first.start()
	before, err := os.Stat(first.pidFile)
	if err != nil {
		t.Fatal(err)
	}

	second := newServer(t, exampleBin)
	second.pidFile = first.pidFile
	code, out := second.launch()
	want := fmt.Sprintf("process %d is already running", pid)
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("second instance: exit %d, output %q; want 1 and %q", code, out, want)
	}
	if conn, err := net.Dial("tcp", second.addr); err == nil {
		conn.Close()
		t.Errorf("second instance bound %s before it was refused", second.addr)
	}
	after, err := os.Stat(first.pidFile)
	if err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the first instance's pid file was touched: %v", err)
	}
	if got := first.mustPID(); got != pid {
		t.Errorf("pid file names %d, want %d", got, pid)
	}
	first.get("/")
}

func TestStalePIDFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stale func(s *server)
	}{
		{"owner killed", func(s *server) {
			pid := s.start()
			s.signal(pid, syscall.SIGKILL)
			if err := waitExit(pid, scale(10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage", func(s *server) { os.WriteFile(s.pidFile, []byte("not a pid\x00\xff"), 0o644) }},
		{"names a live unrelated process", func(s *server) {
			os.WriteFile(s.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			tc.stale(s)
			pid := s.start()
			if got := s.mustPID(); got != pid {
				t.Errorf("pid file names %d, want the new daemon %d", got, pid)
			}
		})
	}
}

func TestBadPIDFilePath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(s *server)
		want  string
	}{
		{"symlink", func(s *server) {
			target := filepath.Join(s.dir, "target")
			os.WriteFile(target, []byte("keep me\n"), 0o644)
			os.Symlink(target, s.pidFile)
		}, "is a symbolic link"},
		{"missing directory", func(s *server) { s.pidFile = filepath.Join(s.dir, "nope", "x.pid") }, "does not exist"},
		{"directory", func(s *server) { os.Mkdir(s.pidFile, 0o755) }, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			tc.setup(s)
			code, out := s.launch()
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, output %q; want 1 and %q", code, out, tc.want)
			}
			if b, err := os.ReadFile(filepath.Join(s.dir, "target")); err == nil && string(b) != "keep me\n" {
				t.Errorf("symlink target overwritten: %q", b)
			}
		})
	}
}

func TestPanicLandsInStderrFile(t *testing.T) {
	t.Parallel()
	s := newServer(t, helperBin)
	s.env = []string{"DAEMONIZE_TEST_HELPER=server", "DAEMONIZE_TEST_FAULT=" + faultPanicAfterReady}
	if code, out := s.launch(); code != 0 {
		t.Fatalf("launch: exit %d: %s", code, out)
	}
	pid := s.mustPID()
	if code := mustExit(t, pid, 10*time.Second); code != 2 {
		t.Errorf("panicking daemon exited %d, want 2", code)
	}
	got := s.read(s.stderr)
	for _, want := range []string{"panic: helper: panic after ready on purpose", "goroutine ", "helper_test.go"} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr file lacks %q:\n%s", want, got)
		}
	}
}

// TestReopenLogs renames the log file under a server that logs every request,
// sends SIGHUP, and checks that every request's line landed whole in one of
// the two files.
func TestReopenLogs(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start("-access-log")

	const total = 3000
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 4 {
				s.get(fmt.Sprintf("/?n=%d", i))
				sent.Add(1)
			}
		}()
	}
	rotated := s.stdout + ".1"
	waitFor(t, 20*time.Second, "some requests", func() bool { return sent.Load() > total/4 })
	if err := os.Rename(s.stdout, rotated); err != nil {
		t.Fatal(err)
	}
	s.signal(pid, syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the log file to be reopened", func() bool {
		_, err := os.Stat(s.stdout)
		return err == nil
	})
	for range 5 {
		s.signal(pid, syscall.SIGHUP)
	}
	wg.Wait()
	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	line := regexp.MustCompile(`^\S+ pid=\d+ GET /(?:\?n=(\d+))?$`)
	seen := make(map[int]int)
	for _, f := range []string{rotated, s.stdout} {
		content := s.read(f)
		lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
		if len(lines) < 10 {
			t.Errorf("%s has %d lines; want lines on both sides of the reopen", f, len(lines))
		}
		for _, l := range lines {
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s: broken line %q", f, l)
				continue
			}
			if m[1] != "" {
				n, _ := strconv.Atoi(m[1])
				seen[n]++
			}
		}
	}
	for i := range total {
		if seen[i] != 1 {
			t.Errorf("request %d logged %d times, want once", i, seen[i])
		}
	}
}

// TestPIDFileAlwaysReadable reads the pid file every millisecond from the
// moment the launcher returns, through restarts, until the stop.
func TestPIDFileAlwaysReadable(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start()
	stop := make(chan struct{})
	var reads, bad atomic.Int64
	var lastErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			reads.Add(1)
			if p, err := s.readPID(); err != nil || p <= 0 {
				bad.Add(1)
				lastErr.Store(fmt.Sprintf("pid %d, err %v", p, err))
			}
		}
	}()
	for range 5 {
		s.signal(pid, syscall.SIGUSR1)
		old := pid
		pid = s.waitPIDChange(pid)
		if err := waitExit(old, scale(20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	if bad.Load() != 0 {
		t.Errorf("%d of %d reads of the pid file failed; last: %v", bad.Load(), reads.Load(), lastErr.Load())
	}
	t.Logf("%d reads, all good", reads.Load())
}

// inFlight starts GET path and returns once the server has accepted its
// connection: the server process then holds a socket it did not hold before.
func inFlight(t *testing.T, s *server, pid int, path string) <-chan error {
	t.Helper()
	return inFlightWith(t, probe, pid, "http://"+s.addr+path)
}

// inFlightWith starts GET url with c and returns once pid has accepted its
// connection.
func inFlightWith(t *testing.T, c *http.Client, pid int, url string) <-chan error {
	t.Helper()
	before := sockets(pid)
	wrote := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", url, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) },
		}))
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		result <- err
	}()
	select {
	case <-wrote:
	case err := <-result:
		t.Fatalf("GET %s: %v", url, err)
	}
	waitFor(t, 10*time.Second, "the server to accept the request", func() bool {
		for sock := range sockets(pid) {
			if !before[sock] {
				return true
			}
		}
		return false
	})
	return result
}

// sockets returns the sockets pid holds.
func sockets(pid int) map[string]bool {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	socks := make(map[string]bool)
	for _, e := range entries {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); strings.HasPrefix(target, "socket:") {
			socks[target] = true
		}
	}
	return socks
}

func TestStopDrainsInFlightRequest(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start()
	req := inFlight(t, s, pid, "/sleep?d=1s")
	s.signal(pid, syscall.SIGTERM)
	if err := <-req; err != nil {
		t.Errorf("in-flight request failed across SIGTERM: %v", err)
	}
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	s.checkPIDFileGone()
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			pid := s.start("-drain", "10m")
			req := inFlight(t, s, pid, "/sleep?d=10m")
			s.signal(pid, sig)
			waitFor(t, 10*time.Second, "the daemon to start stopping", func() bool {
				return strings.Contains(s.read(s.stderr), "daemonize: stopping")
			})
			s.signal(pid, sig)
			if code := mustExit(t, pid, 10*time.Second); code == 0 {
				t.Errorf("exit 0 after a second %v during the drain, want non-zero", sig)
			}
			if err := <-req; err == nil {
				t.Errorf("the 10-minute request succeeded, so the process did not exit at once")
			}
			s.checkPIDFileGone()
		})
	}
}

func TestForeground(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			cmd := s.foreground()
			waitFor(t, 20*time.Second, "the pid file", func() bool {
				p, err := s.readPID()
				return err == nil && p == cmd.Process.Pid
			})
			s.get("/")
			if st := readStat(t, cmd.Process.Pid); st.sid == cmd.Process.Pid {
				t.Errorf("foreground process started a session of its own")
			}
			s.signal(cmd.Process.Pid, sig)
			if err := cmd.Wait(); err != nil {
				t.Errorf("foreground process after %v: %v", sig, err)
			}
			s.checkPIDFileGone()
		})
	}
}

// TestLaunchTimesOut starts a daemon that never becomes ready: the launcher
// gives up after the start timeout, stops the daemon and exits 1.
func TestLaunchTimesOut(t *testing.T) {
	t.Parallel()
	s := newServer(t, helperBin)
	s.env = []string{"DAEMONIZE_TEST_HELPER=server", "DAEMONIZE_TEST_FAULT=" + faultHang}
	code, out := s.launch("-start-timeout", "500ms")
	if code != 1 || !strings.Contains(out, "not ready within 500ms") {
		t.Errorf("exit %d, output %q; want 1 and the timeout", code, out)
	}
	if left := s.processes(); len(left) != 0 {
		t.Errorf("daemon left running after the launcher gave up: %v", left)
	}
}

// TestDrainDeadline stops a server whose request outlasts the drain: it
// exits non-zero at the deadline and says what was still running.
func TestDrainDeadline(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start("-drain", "300ms")
	req := inFlight(t, s, pid, "/sleep?d=1m")
	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 20*time.Second); code == 0 {
		t.Errorf("exit 0 after the drain deadline passed, want non-zero")
	}
	if err := <-req; err == nil {
		t.Errorf("the request outlived its server")
	}
	if want := "1 requests still running"; !strings.Contains(s.read(s.stderr), want) {
		t.Errorf("stderr lacks %q:\n%s", want, s.read(s.stderr))
	}
	s.checkPIDFileGone()
}

func TestDirUmaskAndSharedOutput(t *testing.T) {
	t.Parallel()
	s := newServer(t, helperBin)
	s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
	s.stderr = s.stdout // one file for both
	pid := s.start("-dir", "/", "-umask", "027")
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
		t.Errorf("working directory %s, want /", cwd)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(status), "Umask:\t0027") {
		t.Errorf("umask not 0027:\n%s", status)
	}
	a, _ := os.Stat(fmt.Sprintf("/proc/%d/fd/1", pid))
	b, _ := os.Stat(fmt.Sprintf("/proc/%d/fd/2", pid))
	if fdTarget(t, pid, 1) != s.stdout || !os.SameFile(a, b) {
		t.Errorf("fds 1 and 2 are %s and %s, want both %s", fdTarget(t, pid, 1), fdTarget(t, pid, 2), s.stdout)
	}
	// A restart keeps the directory and the umask.
	s.signal(pid, syscall.SIGUSR1)
	next := s.waitPIDChange(pid)
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", next)); cwd != "/" {
		t.Errorf("generation 2 working directory %s, want /", cwd)
	}
}

// TestBadInput launches the example with bad flags: each fails with a
// message that names the cause, and leaves no file behind.
func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args func(s *server) []string
		want string
	}{
		{"stdout in a missing directory", func(s *server) []string { return []string{"-stdout", filepath.Join(s.dir, "nope", "out.log")} }, "no such file or directory"},
		{"stderr under a file", func(s *server) []string { return []string{"-stderr", filepath.Join(s.bin, "err.log")} }, "not a directory"},
		{"empty address", func(*server) []string { return []string{"-addr", ""} }, "want host:port"},
		{"malformed address", func(*server) []string { return []string{"-addr", "127.0.0.1"} }, "want host:port"},
		{"port out of range", func(*server) []string { return []string{"-addr", "127.0.0.1:99999"} }, "invalid port"},
		{"negative drain", func(*server) []string { return []string{"-drain", "-1s"} }, "DrainTimeout is -1s; want a positive duration"},
		{"negative upgrade timeout", func(*server) []string { return []string{"-upgrade-timeout", "-5s"} }, "UpgradeTimeout is -5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, exampleBin)
			code, out := s.launch(tc.args(s)...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, output %q; want 1 and %q", code, out, tc.want)
			}
			entries, _ := os.ReadDir(s.dir)
			for _, e := range entries {
				if e.Name() != "httpserver" && e.Name() != "stdout.log" && e.Name() != "stderr.log" {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}
