//go:build linux

// The tests build the example, run it as a daemon on a loopback port, load
// it with grpc-go clients and restart it with SIGUSR1, as a deploy does.
package main_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/internal/proc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// exampleBin is the example, built once by TestMain.
var exampleBin string

func TestMain(m *testing.M) {
	// Each generation of the daemon is orphaned when its parent (the
	// launcher, or the generation before) exits, and becomes a child of
	// the test process: the test reaps it and reads its exit status.
	if err := proc.BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// A data race in the server kills it, so a test fails.
	os.Setenv("GORACE", "halt_on_error=1 atexit_sleep_ms=0")
	dir, err := os.MkdirTemp("", "grpcserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	exampleBin = filepath.Join(dir, "grpcserver")
	code := 2
	if err := build(exampleBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the example to out, with the race detector when the tests
// run with it.
func build(out string) error {
	var flags []string
	if raceEnabled() {
		flags = append(flags, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return proc.Build(ctx, "", out, ".", flags...)
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(bi.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
}

// Limits of the waits. The drain gets 10 s: a restart whose old process
// takes that long has a stream that did not end when the drain began.
const (
	startLimit   = time.Minute // the launcher, until the daemon is ready
	readyLimit   = 20 * time.Second
	exitLimit    = 30 * time.Second
	drainTimeout = 10 * time.Second
)

// freeAddr returns a loopback address with a port nobody listens on, below
// the kernel's ephemeral range (see [proc.FreeAddr]).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// service is one daemon under test: a link to the example in a temporary
// directory, so that a test can install another binary by rename.
type service struct {
	t       *testing.T
	bin     string
	addr    string
	pidFile string
	stderr  string
	drain   time.Duration
	sid     int // the session of every generation: the first's pid
}

func newService(t *testing.T) *service {
	t.Helper()
	dir := t.TempDir()
	s := &service{
		t:       t,
		bin:     filepath.Join(dir, "grpcserver"),
		addr:    freeAddr(t),
		pidFile: filepath.Join(dir, "grpcserver.pid"),
		stderr:  filepath.Join(dir, "stderr.log"),
		drain:   drainTimeout,
	}
	s.install(exampleBin)
	t.Cleanup(s.cleanup)
	return s
}

// install puts bin at the service's path by rename, as a deploy does (see
// [proc.Install]).
func (s *service) install(bin string) {
	s.t.Helper()
	if err := proc.Install(bin, s.bin); err != nil {
		s.t.Fatal(err)
	}
}

// installScript puts a shell script at the service's path by rename (see
// [proc.InstallScript]).
func (s *service) installScript(script string) {
	s.t.Helper()
	if err := proc.InstallScript(script, s.bin); err != nil {
		s.t.Fatal(err)
	}
}

// start runs the example with -detach and returns the daemon's pid once the
// launcher has said it is ready.
func (s *service) start() int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "-detach", "-addr", s.addr, "-pidfile", s.pidFile,
		"-stdout", s.stderr, "-stderr", s.stderr,
		"-drain", s.drain.String(), "-upgrade-timeout", readyLimit.String())
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("launcher: %v: %s\nstderr file:\n%s", err, out, s.read(s.stderr))
	}
	pid := s.mustPID()
	s.sid = pid // the daemon leads a new session; restarts stay in it
	return pid
}

func (s *service) mustPID() int {
	s.t.Helper()
	pid, err := daemonize.ReadPIDFile(s.pidFile)
	if err != nil {
		s.t.Fatal(err)
	}
	return pid
}

func (s *service) signal(pid int, sig syscall.Signal) {
	s.t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		s.t.Fatalf("kill -%d %d: %v", sig, pid, err)
	}
}

// restart sends SIGUSR1 to pid, waits until the pid file names a new
// process and pid has exited with status 0, and returns the new pid and the
// times from the signal to each.
func (s *service) restart(pid int) (newPID int, ready, gone time.Duration) {
	s.t.Helper()
	t0 := time.Now()
	s.signal(pid, syscall.SIGUSR1)
	if !proc.Poll(readyLimit, func() bool {
		p, err := daemonize.ReadPIDFile(s.pidFile)
		newPID = p
		return err == nil && p != pid
	}) {
		s.t.Fatalf("restart of %d: the pid file names no new process after %s", pid, readyLimit)
	}
	ready = time.Since(t0)
	if code := s.mustExit(pid); code != 0 {
		s.t.Errorf("old process %d exited %d after the hand-over, want 0", pid, code)
	}
	return newPID, ready, time.Since(t0)
}

// mustExit waits until pid, a child of the test process by then, has
// exited, reaps it and returns its exit code.
func (s *service) mustExit(pid int) int {
	s.t.Helper()
	var e proc.Exit
	if !proc.Poll(exitLimit, func() bool {
		var exited bool
		exited, e = proc.Reap(pid)
		return exited
	}) {
		s.t.Fatalf("process %d still running after %s", pid, exitLimit)
	}
	switch {
	case !e.Known:
		s.t.Fatalf("process %d exited, but not as a child of the test process", pid)
	case e.Status.Signaled():
		s.t.Fatalf("process %d was %s", pid, e)
	}
	return e.Status.ExitStatus()
}

// stop sends SIGTERM to pid and checks that it exits 0 and removes the pid
// file.
func (s *service) stop(pid int) {
	s.t.Helper()
	s.signal(pid, syscall.SIGTERM)
	if code := s.mustExit(pid); code != 0 {
		s.t.Errorf("process %d exited %d after SIGTERM, want 0", pid, code)
	}
	if _, err := os.Stat(s.pidFile); !errors.Is(err, os.ErrNotExist) {
		s.t.Errorf("pid file after the stop: %v, want it removed", err)
	}
}

func (s *service) read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// cleanup kills every process left in the daemon's session, by pid (a
// session's id is not reused while a process is in it), and reaps them: once
// their parent generation is gone they are children of the test process.
func (s *service) cleanup() {
	if s.sid == 0 {
		return
	}
	if !proc.Poll(10*time.Second, func() bool {
		pids, _ := proc.PIDs()
		left := false
		for _, pid := range pids {
			if st, err := proc.ReadStat(pid); err == nil && st.SID == s.sid {
				left = true
				if !st.Zombie() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				proc.Reap(pid) // a child of the test process once its parent generation is gone
			}
		}
		return !left
	}) {
		s.t.Errorf("cleanup: processes of session %d still there", s.sid)
	}
	if s.t.Failed() {
		s.t.Logf("stderr file:\n%s", s.read(s.stderr))
	}
}

// dial returns a health client on a new connection, closed at the end of
// the test.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// check calls Check once, with a deadline.
func check(c healthpb.HealthClient) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	return resp.GetStatus(), err
}

// TestServingRightAfterStart checks that the health service says SERVING as
// soon as the launcher has returned, and that SIGTERM stops the daemon with
// status 0.
func TestServingRightAfterStart(t *testing.T) {
	s := newService(t)
	pid := s.start()
	c := dial(t, s.addr)
	if st, err := check(c); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check right after the start: %v, %v; want SERVING", st, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch's first message: %v, %v; want SERVING", m, err)
	}
	s.stop(pid)
	// The stop drained the stream: a last NOT_SERVING, then a clean end.
	if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch after SIGTERM: %v, %v; want NOT_SERVING", m, err)
	}
	if _, err := w.Recv(); err != io.EOF {
		t.Errorf("Watch after SIGTERM ended with %v, want a clean end", err)
	}
}

// healthChecked has a client check the health of its connection itself with
// Watch streams (client-side health checking, which the blank import of
// google.golang.org/grpc/health enables), and send RPCs only over a
// connection that says SERVING. With one server address, a NOT_SERVING or an
// ended Watch stream on a connection that has not been told to go away
// leaves it no connection to send RPCs over: they fail.
var healthChecked = grpc.WithDefaultServiceConfig(`{
	"loadBalancingConfig": [{"round_robin": {}}],
	"healthCheckConfig": {"serviceName": ""}
}`)

// load is a set of clients that call Check in loops and hold Watch streams,
// and counts what they saw.
type load struct {
	checks     atomic.Int64 // Check calls that returned
	notServing atomic.Int64 // of them, answered NOT_SERVING (by a draining process)
	watches    atomic.Int64 // Watch streams opened
	ended      atomic.Int64 // Watch streams the server ended cleanly
	failed     atomic.Int64

	mu   sync.Mutex
	errs []string // the first failures

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLoad opens a client connection to addr for each entry of conns, with
// those dial options, and runs checkers goroutines calling Check and
// watchers goroutines holding a Watch stream on each. It returns once every
// watcher holds a stream.
func startLoad(t *testing.T, addr string, conns [][]grpc.DialOption, checkers, watchers int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for _, opts := range conns {
		c := dial(t, addr, opts...)
		for range checkers {
			l.wg.Go(func() { l.checkLoop(ctx, c) })
		}
		for range watchers {
			l.wg.Go(func() { l.watchLoop(ctx, c) })
		}
	}
	t.Cleanup(func() { l.stop(t) }) // before the connections close
	want := int64(len(conns) * watchers)
	if !proc.Poll(readyLimit, func() bool { return l.watches.Load() >= want }) {
		t.Fatalf("%d of %d Watch streams open after %s", l.watches.Load(), want, readyLimit)
	}
	return l
}

// stop ends the load and waits for its goroutines.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(exitLimit):
		t.Fatalf("load clients still running %s after the end of the load", exitLimit)
	}
}

func (l *load) String() string {
	return fmt.Sprintf("%d Check calls (%d answered NOT_SERVING by a draining process), %d Watch streams opened, %d ended cleanly by a drain; %d failed RPCs",
		l.checks.Load(), l.notServing.Load(), l.watches.Load(), l.ended.Load(), l.failed.Load())
}

// checkFailures fails the test if any RPC failed.
func (l *load) checkFailures(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d failed RPCs; first: %q", n, l.errs)
	}
}

func (l *load) fail(format string, args ...any) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

// checkLoop calls Check until ctx ends. Any error is a failed RPC.
func (l *load) checkLoop(ctx context.Context, c healthpb.HealthClient) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := c.Check(rctx, &healthpb.HealthCheckRequest{})
		cancel()
		switch {
		case ctx.Err() != nil:
			return // the load is over; the call may have been cut short
		case err != nil:
			l.fail("Check: %v", err)
		default:
			l.checks.Add(1)
			if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
				l.notServing.Add(1)
			}
		}
	}
}

// watchLoop holds a Watch stream until ctx ends, opening it again when the
// server ends it cleanly. An error is a failed RPC, and so is a stream that
// ends on SERVING: the drain says NOT_SERVING last.
func (l *load) watchLoop(ctx context.Context, c healthpb.HealthClient) {
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			if ctx.Err() == nil {
				l.fail("Watch: %v", err)
			}
			continue
		}
		l.watches.Add(1)
		last := healthpb.HealthCheckResponse_UNKNOWN
		for {
			m, err := w.Recv()
			if err == nil {
				last = m.GetStatus()
				continue
			}
			switch {
			case ctx.Err() != nil:
			case err != io.EOF:
				l.fail("Watch stream: %v (last status %v)", err, last)
			case last != healthpb.HealthCheckResponse_NOT_SERVING:
				l.fail("Watch stream ended cleanly on %v, want NOT_SERVING last", last)
			default:
				l.ended.Add(1)
			}
			break
		}
	}
}

// TestRestartUnderLoad restarts the daemon again and again while grpc-go
// clients call Check in loops and hold Watch streams, and requires every RPC
// to succeed. One client connection is plain; the other checks its health
// itself. gRPC's transparent retry of an RPC that a GOAWAY refused
// unprocessed is part of the client, and allowed.
func TestRestartUnderLoad(t *testing.T) {
	const (
		restarts = 10
		checkers = 2 // goroutines calling Check in a loop, per connection
		watchers = 2 // goroutines holding a Watch stream, per connection
	)
	conns := [][]grpc.DialOption{nil, {healthChecked}}
	s := newService(t)
	pid := s.start()
	l := startLoad(t, s.addr, conns, checkers, watchers)

	var ready, gone []time.Duration
	for i := range restarts {
		before := l.checks.Load()
		newPID, r, g := s.restart(pid)
		t.Logf("restart %2d: pid %d -> %d: signal -> new pid in pid file %6.1f ms, -> old process gone %6.1f ms; %d Check calls meanwhile",
			i+1, pid, newPID, ms(r), ms(g), l.checks.Load()-before)
		ready, gone = append(ready, r), append(gone, g)
		pid = newPID
	}
	l.stop(t)

	t.Logf("%d restarts: %v", restarts, l)
	t.Logf("signal -> new pid in pid file: p50 %.1f ms, max %.1f ms; signal -> old process gone: p50 %.1f ms, max %.1f ms",
		ms(median(ready)), ms(slices.Max(ready)), ms(median(gone)), ms(slices.Max(gone)))
	l.checkFailures(t)
	if want := int64(restarts * len(conns) * watchers); l.checks.Load() == 0 || l.ended.Load() < want {
		t.Errorf("%d Check calls and %d Watch streams ended by a drain; want some, and at least %d", l.checks.Load(), l.ended.Load(), want)
	}
	if st, err := check(dial(t, s.addr)); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check after %d restarts: %v, %v; want SERVING", restarts, st, err)
	}
	s.stop(pid)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestRestartOntoBrokenBinary installs a binary that exits 1 and restarts
// onto it: the restart fails, and the old process serves on, its Watch
// streams untouched. A good binary installed again then takes over.
func TestRestartOntoBrokenBinary(t *testing.T) {
	s := newService(t)
	pid := s.start()
	c := dial(t, s.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch's first message: %v, %v; want SERVING", m, err)
	}
	type recv struct {
		m   *healthpb.HealthCheckResponse
		err error
	}
	next := make(chan recv, 1)
	go func() {
		m, err := w.Recv()
		next <- recv{m, err}
	}()

	s.installScript("#!/bin/sh\nexit 1\n")
	s.signal(pid, syscall.SIGUSR1)
	var st *daemonize.Status
	if !proc.Poll(readyLimit, func() bool {
		st, _ = daemonize.ReadStatus(s.pidFile)
		return st != nil && st.LastRestart != nil
	}) {
		t.Fatalf("no restart outcome in the status file after %s", readyLimit)
	}
	if st.LastRestart.OK || st.PID != pid || st.State != daemonize.StateReady {
		t.Fatalf("status after the restart onto a broken binary: %+v, last restart %+v; want pid %d ready, restart failed", st, st.LastRestart, pid)
	}
	t.Logf("restart onto the broken binary: %s", st.LastRestart.Error)
	if got := s.mustPID(); got != pid {
		t.Errorf("pid file names %d after the failed restart, want %d", got, pid)
	}
	if st, err := check(c); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check after the failed restart: %v, %v; want SERVING", st, err)
	}
	if st, err := check(dial(t, s.addr)); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check on a new connection after the failed restart: %v, %v; want SERVING", st, err)
	}
	select {
	case r := <-next:
		t.Fatalf("the Watch stream got %v, %v after the failed restart; want it open and quiet", r.m, r.err)
	default:
	}

	s.install(exampleBin)
	newPID, _, _ := s.restart(pid)
	select {
	case r := <-next:
		if r.err != nil || r.m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Watch at the drain: %v, %v; want NOT_SERVING", r.m, r.err)
		}
	case <-time.After(exitLimit):
		t.Fatal("the Watch stream got nothing from the drain")
	}
	if _, err := w.Recv(); err != io.EOF {
		t.Errorf("Watch at the drain ended with %v, want a clean end", err)
	}
	s.stop(newPID)
}

// TestDrainWithSilentConnection restarts the daemon while a client that
// connected to it has sent nothing. grpc-go's GracefulStop, and Stop too,
// wait until every connection still in its HTTP/2 handshake has finished it
// or timed out; the example bounds the handshake by half the drain, so the
// old process still drains in time and exits 0.
func TestDrainWithSilentConnection(t *testing.T) {
	s := newService(t)
	s.drain = 2 * time.Second
	pid := s.start()
	raw, err := net.DialTimeout("tcp", s.addr, readyLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// The server writes its SETTINGS frame first: once its header is read,
	// the process holds the connection in its handshake.
	raw.SetReadDeadline(time.Now().Add(readyLimit))
	if _, err := io.ReadFull(raw, make([]byte, 9)); err != nil {
		t.Fatalf("reading the server's first frame: %v", err)
	}
	l := startLoad(t, s.addr, [][]grpc.DialOption{nil}, 1, 1)
	newPID, ready, gone := s.restart(pid)
	l.stop(t)
	t.Logf("restart with a silent connection: signal -> new pid in pid file %.1f ms, -> old process gone %.1f ms; %v", ms(ready), ms(gone), l)
	// The old process drains from the moment the new one is ready; its exit
	// status, checked by restart, says whether the drain met its deadline.
	if gone-ready > s.drain {
		t.Errorf("old process gone %s after the new one was ready, want within the drain, %s", gone-ready, s.drain)
	}
	l.checkFailures(t)
	s.stop(newPID)
}
