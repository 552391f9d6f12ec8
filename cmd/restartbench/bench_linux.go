//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/daemonize-dev/daemonize/internal/load"
	"github.com/daemonize-dev/daemonize/internal/proc"
)

// The servers' own timeouts, and how long the tool waits for them.
const (
	drainTimeout   = 30 * time.Second
	upgradeTimeout = 30 * time.Second
	startLimit     = time.Minute
	readyLimit     = upgradeTimeout + 10*time.Second
	goneLimit      = drainTimeout + 10*time.Second
	buildLimit     = 5 * time.Minute
)

// bench is one run of the tool: its configuration, its scratch directory
// with the binaries, pid files and logs, and the processes it started.
type bench struct {
	cfg     config
	dir     string
	example string // examples/httpserver
	server  string // cmd/restartbench/benchserver
	procs   *procs
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "restartbench: "+format+"\n", args...)
}

// build builds the binaries the chosen parts need.
func (b *bench) build(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, buildLimit)
	defer cancel()
	const mod = "github.com/daemonize-dev/daemonize"
	var needExample, needServer bool
	for _, p := range b.cfg.Parts {
		switch p {
		case partRestart:
			for _, s := range b.cfg.Servers {
				needExample = needExample || s == serverLibrary
				needServer = needServer || s != serverLibrary
			}
		case partLower, partSupervise:
			needExample = true
		case partGap, partIdle:
			for _, srv := range b.cfg.Servers {
				needExample = needExample || srv == serverLibrary
				needServer = needServer || srv != serverLibrary
			}
		case partH2:
			needExample, needServer = true, true
		case partOverhead, partScale:
			needServer = true
		}
	}
	for _, t := range []struct {
		need bool
		out  *string
		pkg  string
	}{
		{needExample, &b.example, mod + "/examples/httpserver"},
		{needServer, &b.server, mod + "/cmd/restartbench/benchserver"},
	} {
		if !t.need {
			continue
		}
		*t.out = filepath.Join(b.dir, filepath.Base(t.pkg))
		b.logf("building %s", t.pkg)
		if err := proc.Build(ctx, b.cfg.Src, *t.out, t.pkg); err != nil {
			return fmt.Errorf("in %s: %w(run from the daemonize repository, or point -src at it)", b.cfg.Src, err)
		}
	}
	return nil
}

// loadConfig is the client mix for the restart part.
func (b *bench) loadConfig(addr string) load.Config {
	return load.Config{
		Addr:        addr,
		KeepAlive:   (b.cfg.Clients + 1) / 2,
		NewConn:     b.cfg.Clients / 2,
		Slow:        b.cfg.Slow,
		SlowPath:    "/sleep?d=" + b.cfg.Sleep.String(),
		MaxRequests: b.cfg.Requests,
		Timeout:     b.cfg.Timeout,
	}
}

// runLoad runs load.Run for d at most.
func runLoad(ctx context.Context, c load.Config, d time.Duration) *load.Result {
	c.MaxDuration = d
	return load.Run(ctx, c)
}

// stopAll kills and reaps every server, between parts, so that the next
// part has the machine to itself.
func (b *bench) stopAll(errp *string) {
	if err := b.procs.killAll(); err != nil && *errp == "" {
		*errp = err.Error()
	}
}

// server is one server under test and the generation that serves now.
type server struct {
	b       *bench
	name    string
	addr    string
	pidFile string // "" if the server writes none
	logPath string
	cmd     []string       // the binary and its arguments
	detach  bool           // cmd launches a daemon and exits once it is ready
	sig     syscall.Signal // restart signal; 0 restarts by stop and start
	tls     bool           // serves HTTPS: probe over TLS
	pid     int            // the generation that serves
	unclean []string       // old generations that did not exit with status 0
}

// newServer returns a server on a fresh loopback port, with its pid file and
// log in the scratch directory.
func (b *bench) newServer(name string) (*server, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	return &server{
		b:       b,
		name:    name,
		addr:    addr,
		pidFile: filepath.Join(b.dir, name+".pid"),
		logPath: filepath.Join(b.dir, name+".log"),
	}, nil
}

// benchServer returns a benchserver in the given mode.
func (b *bench) benchServer(name, mode string, extra ...string) (*server, error) {
	s, err := b.newServer(name)
	if err != nil {
		return nil, err
	}
	s.cmd = append([]string{b.server, "-mode", mode, "-addr", s.addr, "-pidfile", s.pidFile,
		"-drain", drainTimeout.String(), "-upgrade-timeout", upgradeTimeout.String()}, extra...)
	return s, nil
}

// fail adds the server's last log lines to err.
func (s *server) fail(err error) error {
	return fmt.Errorf("%s: %w; last lines of %s:\n%s", s.name, err, s.logPath, tail(s.logPath))
}

// start starts the server and waits until it serves.
func (s *server) start(ctx context.Context) error {
	pid, err := s.b.procs.start(s.logPath, s.cmd[0], s.cmd[1:]...)
	if err != nil {
		return fmt.Errorf("%s: start: %w", s.name, err)
	}
	if s.detach {
		st, err := waitGone(ctx, pid, startLimit)
		if err == nil && !clean(st) {
			err = fmt.Errorf("launcher: %v", st)
		}
		if err != nil {
			return s.fail(err)
		}
		if pid = readPID(s.pidFile); pid == 0 {
			return s.fail(errors.New("the launcher exited 0 but the pid file names no process"))
		}
		// The daemon made a session of its own; the generations it
		// restarts into stay in it.
		s.b.procs.addGroup(pid)
	}
	if err := s.waitServing(ctx, pid, startLimit); err != nil {
		return s.fail(err)
	}
	s.pid = pid
	return nil
}

// waitServing waits until the pid file names pid and GET / answers from it.
func (s *server) waitServing(ctx context.Context, pid int, limit time.Duration) error {
	return poll(ctx, limit, "process "+strconv.Itoa(pid)+" to serve", func() bool {
		if s.pidFile != "" && readPID(s.pidFile) != pid {
			return false
		}
		got, err := probe(s.addr, s.tls)
		return err == nil && got == pid
	})
}

// restart restarts the server once and returns the time from the signal
// until a new process serves, and until the old one has exited.
func (s *server) restart(ctx context.Context) (ready, exited time.Duration, err error) {
	old := s.pid
	t0 := time.Now()
	if s.sig == 0 {
		// The naive way: stop, wait, start again.
		if err := unix.Kill(old, unix.SIGTERM); err != nil {
			return 0, 0, s.fail(err)
		}
		if err := s.waitExit(ctx, old); err != nil {
			return 0, 0, err
		}
		exited = time.Since(t0)
		pid, err := s.b.procs.start(s.logPath, s.cmd[0], s.cmd[1:]...)
		if err != nil {
			return 0, 0, s.fail(err)
		}
		if err := s.waitServing(ctx, pid, readyLimit); err != nil {
			return 0, 0, s.fail(err)
		}
		s.pid = pid
		return time.Since(t0), exited, nil
	}

	if err := unix.Kill(old, s.sig); err != nil {
		return 0, 0, s.fail(err)
	}
	if err := s.waitNew(ctx, old); err != nil {
		return 0, 0, err
	}
	ready = time.Since(t0)
	if err := s.waitExit(ctx, old); err != nil {
		return 0, 0, err
	}
	return ready, time.Since(t0), nil
}

// waitNew waits until the pid file names a process other than old and
// that process answers GET /, and makes it the serving one.
func (s *server) waitNew(ctx context.Context, old int) error {
	err := poll(ctx, readyLimit, "a new process to serve", func() bool {
		pid := readPID(s.pidFile)
		if pid == 0 || pid == old {
			return false
		}
		got, err := probe(s.addr, s.tls)
		if err != nil || got != pid {
			return false
		}
		s.pid = pid
		return true
	})
	if err != nil {
		return s.fail(err)
	}
	return nil
}

// waitExit waits until the old generation pid has exited, and notes how.
func (s *server) waitExit(ctx context.Context, pid int) error {
	st, err := waitGone(ctx, pid, goneLimit)
	if err != nil {
		return s.fail(err)
	}
	if !clean(st) {
		s.unclean = append(s.unclean, fmt.Sprintf("pid %d: %v", pid, st))
	}
	return nil
}

// restartPart loads one server first without restarts, then while it
// restarts, spreading the restarts evenly over the load.
func (b *bench) restartPart(ctx context.Context, name string) *restartResult {
	r := &restartResult{Server: name, Asked: b.cfg.Restarts}
	defer b.stopAll(&r.Error)
	s, err := b.serverFor(name, "")
	if err == nil {
		b.logf("%s: starting", name)
		err = s.start(ctx)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}

	if b.cfg.Steady > 0 {
		b.logf("%s: load for %s without restarts", name, b.cfg.Steady)
		r.Steady = newPhase(runLoad(ctx, b.loadConfig(s.addr), b.cfg.Steady))
	}
	r.RSSFirst = rssKiB(s.pid)

	b.logf("%s: load for %s with %d restarts", name, b.cfg.Duration, b.cfg.Restarts)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res *load.Result
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		res = runLoad(lctx, b.loadConfig(s.addr), b.cfg.Duration)
	}()
	start := time.Now()
	every := b.cfg.Duration / time.Duration(b.cfg.Restarts+1)
	var ready, exited []time.Duration
	for i := 1; i <= b.cfg.Restarts; i++ {
		if !pace(ctx, loaded, start.Add(time.Duration(i)*every)) {
			break
		}
		rd, ex, err := s.restart(ctx)
		if err != nil {
			r.Error = err.Error()
			cancel()
			break
		}
		ready, exited = append(ready, rd), append(exited, ex)
	}
	<-loaded // runLoad ends after -duration at the latest
	r.Restart = newPhase(res)
	r.Done = len(ready)
	r.Ready, r.Gone = summarize(ready), summarize(exited)
	r.Unclean = s.unclean
	r.RSSLast = rssKiB(s.pid)
	return r
}

// libraryServer returns examples/httpserver, run as a daemon and restarted
// with SIGUSR1.
func (b *bench) libraryServer(name string) (*server, error) {
	s, err := b.newServer(name)
	if err != nil {
		return nil, err
	}
	s.cmd = []string{b.example, "-detach", "-addr", s.addr, "-pidfile", s.pidFile, "-stderr", s.logPath,
		"-drain", drainTimeout.String(), "-upgrade-timeout", upgradeTimeout.String()}
	s.detach, s.sig = true, syscall.SIGUSR1
	return s, nil
}

// pace waits until t, and reports false if ctx ends or stop is closed
// first. It spaces the restarts; it synchronises nothing.
func pace(ctx context.Context, stop <-chan struct{}, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-stop:
	case <-ctx.Done():
	}
	return false
}

// lowerPart measures how long the example takes from exec until it
// answers GET /: the least any restart that execs a new binary can take.
// In turns with each run it restarts the example as the library does,
// without load, so that both see the same machine.
func (b *bench) lowerPart(ctx context.Context) *lowerResult {
	r := &lowerResult{Runs: b.cfg.LowerRuns}
	defer b.stopAll(&r.Error)
	b.logf("exec lower bound: %d runs, in turns with as many restarts", b.cfg.LowerRuns)
	lib, err := b.libraryServer("lower-daemonize")
	if err == nil {
		err = lib.start(ctx)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var ds, handoffs []time.Duration
	for range b.cfg.LowerRuns {
		d, err := b.coldStart(ctx, "lower", b.example)
		if err != nil {
			r.Error = err.Error()
			break
		}
		ds = append(ds, d)
		ready, _, err := lib.restart(ctx)
		if err != nil {
			r.Error = err.Error()
			break
		}
		handoffs = append(handoffs, ready)
	}
	r.Start, r.Handoff = summarize(ds), summarize(handoffs)
	return r
}

// coldStart starts bin with args and a fresh -addr, without a pid file,
// and returns the time from exec until it answers GET /; then kills it.
func (b *bench) coldStart(ctx context.Context, name, bin string, args ...string) (time.Duration, error) {
	s, err := b.newServer(name)
	if err != nil {
		return 0, err
	}
	s.pidFile = ""
	s.cmd = append([]string{bin, "-addr", s.addr}, args...)
	t0 := time.Now()
	if err := s.start(ctx); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	unix.Kill(-s.pid, unix.SIGKILL)
	_, err = waitGone(ctx, s.pid, goneLimit)
	return d, err
}

// overheadPart compares the requests per second through the library's
// listener and Serve with a plain net.Listen and http.Server, same
// handler, in alternating rounds.
func (b *bench) overheadPart(ctx context.Context, newConn bool) *overheadResult {
	r := &overheadResult{NewConn: newConn, Rounds: b.cfg.Rounds, Round: b.cfg.Round, Clients: b.cfg.Clients}
	defer b.stopAll(&r.Error)
	lib, err := b.benchServer("overhead-daemonize", "daemonize")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	plain, err := b.benchServer("overhead-plain", "plain")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	for _, s := range []*server{lib, plain} {
		if err := s.start(ctx); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	b.logf("overhead: %d rounds of %s on each server, %s", b.cfg.Rounds, b.cfg.Round, r.clients())
	round := func(s *server, d time.Duration) *load.Result {
		c := load.Config{Addr: s.addr, MaxRequests: b.cfg.Requests, Timeout: b.cfg.Timeout}
		if newConn {
			c.NewConn = b.cfg.Clients
		} else {
			c.KeepAlive = b.cfg.Clients
		}
		return runLoad(ctx, c, d)
	}
	// A short warm-up, not counted.
	round(lib, b.cfg.Round/4)
	round(plain, b.cfg.Round/4)
	var libN, plainN int64
	var libT, plainT time.Duration
	for i := range b.cfg.Rounds {
		order := []*server{lib, plain}
		if i%2 == 1 {
			order = []*server{plain, lib}
		}
		for _, s := range order {
			res := round(s, b.cfg.Round)
			r.Failed += res.Failed
			if s == lib {
				r.LibraryRounds = append(r.LibraryRounds, rate(res.Requests, res.Elapsed))
				libN, libT = libN+res.Requests, libT+res.Elapsed
			} else {
				r.PlainRounds = append(r.PlainRounds, rate(res.Requests, res.Elapsed))
				plainN, plainT = plainN+res.Requests, plainT+res.Elapsed
			}
		}
		if ctx.Err() != nil {
			r.Error = ctx.Err().Error()
			return r
		}
	}
	r.Library, r.Plain = rate(libN, libT), rate(plainN, plainT)
	if r.Plain > 0 {
		r.Ratio = r.Library / r.Plain
	}
	return r
}

// scalePart measures the hand-off time of the library with more and more
// inherited listeners, each served by an http.Server of its own, then with
// the listeners alone; in turns with each restart, the cold start of the
// same program with as many listeners.
func (b *bench) scalePart(ctx context.Context) []*scaleResult {
	var results []*scaleResult
	for _, served := range []bool{true, false} {
		for _, n := range b.cfg.Listeners {
			r := &scaleResult{Listeners: n, Served: served}
			results = append(results, r)
			b.logf("scale: %d listeners, served %t, %d restarts", n, served, b.cfg.ScaleRestarts)
			b.scaleRun(ctx, r)
			if ctx.Err() != nil {
				return results
			}
		}
	}
	return results
}

// scaleRun fills r.
func (b *bench) scaleRun(ctx context.Context, r *scaleResult) {
	defer b.stopAll(&r.Error)
	args := []string{"-mode", "daemonize", "-extra-listeners", strconv.Itoa(r.Listeners - 1), "-serve-extra=" + strconv.FormatBool(r.Served)}
	s, err := b.benchServer(fmt.Sprintf("scale-%d-%t", r.Listeners, r.Served), "daemonize", args[2:]...)
	if err == nil {
		s.sig = syscall.SIGUSR1
		err = s.start(ctx)
	}
	var ready, exited, starts []time.Duration
	for i := 0; err == nil && i < b.cfg.ScaleRestarts; i++ {
		var d, rd, ex time.Duration
		if d, err = b.coldStart(ctx, "scale-cold", b.server, args...); err != nil {
			break
		}
		if rd, ex, err = s.restart(ctx); err == nil {
			ready, exited, starts = append(ready, rd), append(exited, ex), append(starts, d)
		}
	}
	if err != nil {
		r.Error = err.Error()
	}
	r.Ready, r.Gone, r.Start = summarize(ready), summarize(exited), summarize(starts)
}

// rate returns n per second of d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
