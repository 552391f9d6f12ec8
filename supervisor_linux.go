package daemonize

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

// This file is the supervisor of Options.Supervise. The process that was
// started stays for the life of the service: it keeps the pid file and its
// lock, starts generation 1, and then only reaps processes, passes signals
// on, and relays the generations' systemd messages; the generations restart
// among themselves as ever (tableflip, the hand-off), and tell it over a
// socket which of them serves. It is a subreaper, so every generation whose
// parent exits becomes its child; as PID 1 of a PID namespace it reaps
// every orphan of the namespace.

// canSupervise says why Options.Supervise cannot work here, if it cannot.
func canSupervise() error { return nil }

// supervisor is the state of the supervisor process.
type supervisor struct {
	o       Options
	log     *slog.Logger
	exe     string
	report  *os.File // pipe to the launching process until ready; generation 1 has a copy, for its errors
	systemd notifier
	pid     *pidFile
	conn    *os.File          // the supervisor's end of the socket the generations write to
	gens    map[int]proc.Stat // live generations, with their /proc stat to tell a reused pid
	serving int               // the generation that serves
	ready   bool              // a generation was ready once
	code    int               // the exit status of the serving generation, once it exited
}

// supervise runs the supervisor of a service and returns its exit status.
func supervise(o Options, exe string, report *os.File) int {
	s := &supervisor{o: o, log: o.Logger, exe: exe, report: report, gens: make(map[int]proc.Stat)}
	if err := s.start(); err != nil {
		if report != nil {
			fmt.Fprintf(report, "error %s\n", oneLine(err.Error()))
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		s.finish()
		return 1
	}
	return s.run()
}

// start sets the process up as a supervisor and starts generation 1.
func (s *supervisor) start() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("daemonize: supervisor: become the reaper of the generations: %w", err)
	}
	if s.o.Umask != 0 {
		setUmask(s.o.Umask)
	}
	if s.o.Dir != "" {
		if err := os.Chdir(s.o.Dir); err != nil {
			return fmt.Errorf("daemonize: working directory: %w", err)
		}
	}
	s.systemd = systemdEnv()
	// Sockets systemd passed: they go on to generation 1 at the same
	// descriptors, without LISTEN_PID, which the supervisor cannot know.
	names, err := parseListenEnv(os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"), os.Getpid(), false)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	if err != nil {
		return err
	}
	if s.report == nil && (s.o.Stdout != "" || s.o.Stderr != "") {
		if err := redirect(s.o.Stdout, s.o.Stderr); err != nil {
			return err
		}
	}
	if s.o.PIDFile != "" {
		if s.pid, err = lockPIDFile(s.o.PIDFile); err != nil {
			return err
		}
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("daemonize: supervisor: socket: %w", err)
	}
	s.conn = os.NewFile(uintptr(pair[0]), "daemonize-supervisor")
	theirs := os.NewFile(uintptr(pair[1]), "daemonize-supervisor")
	defer theirs.Close()

	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, envDetached+"=") || strings.HasPrefix(kv, envSupervisor+"=")
	})
	for i, name := range names {
		files = append(files, os.NewFile(uintptr(3+i), name))
	}
	if len(names) > 0 {
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(names)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	if s.report != nil {
		env = append(env, envDetached+"="+strconv.Itoa(len(files)))
		files = append(files, s.report)
	}
	env = append(env, envSupervisor+"="+strconv.Itoa(len(files)))
	files = append(files, theirs)
	if s.systemd.watchdog > 0 {
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(s.systemd.watchdog.Microseconds(), 10))
	}
	p, err := os.StartProcess(s.exe, append([]string{s.exe}, os.Args[1:]...), &os.ProcAttr{Files: files, Env: env})
	for _, f := range files[3 : 3+len(names)] {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("daemonize: supervisor: start generation 1: %w", err)
	}
	s.add(p.Pid)
	s.serving = p.Pid
	s.log.Info("daemonize: supervisor: started generation 1", "supervisor", os.Getpid(), "pid", p.Pid)
	p.Release() // reaped by pid, with every other child
	return nil
}

// run supervises until no generation is left, and returns the exit status.
func (s *supervisor) run() int {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGWINCH)
	msgs := make(chan string, 64)
	go s.read(msgs)
	// A generation that its parent reaped (a new process that failed)
	// never shows up here: look for the gone ones now and then.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for len(s.gens) > 0 {
		select {
		case sig := <-sigs:
			s.onSignal(sig.(syscall.Signal))
		case m := <-msgs:
			s.onMessage(m)
		case <-tick.C:
		}
		s.reap()
		s.prune()
	}
	return s.finish()
}

// read passes the generations' messages on to msgs.
func (s *supervisor) read(msgs chan<- string) {
	buf := make([]byte, 4096)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		msgs <- string(buf[:n])
	}
}

// onSignal passes a signal on: SIGHUP to every generation (each reopens its
// output files) after reopening the supervisor's own, the others to the
// generation that serves.
func (s *supervisor) onSignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGCHLD:
	case sigReopen:
		if s.o.Stdout != "" || s.o.Stderr != "" {
			if err := redirect(s.o.Stdout, s.o.Stderr); err != nil {
				s.log.Error(err.Error())
			}
		}
		for pid := range s.gens {
			signalProcess(pid, sig)
		}
	default:
		signalProcess(s.serving, sig)
	}
}

// relayed are the keys of the notify protocol the supervisor passes on to
// systemd; MAINPID stays the supervisor.
var relayed = []string{"READY", "RELOADING", "MONOTONIC_USEC", "STOPPING", "STATUS", "WATCHDOG", "EXTEND_TIMEOUT_USEC", "ERRNO"}

// onMessage handles a generation's message: what systemd would get, and
// DAEMONIZE_PID, the sender.
func (s *supervisor) onMessage(m string) {
	var out []string
	fields := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(m), "\n") {
		k, v, _ := strings.Cut(line, "=")
		fields[k] = v
		if slices.Contains(relayed, k) {
			out = append(out, line)
		}
	}
	pid, _ := strconv.Atoi(fields["DAEMONIZE_PID"])
	if _, ok := fields["DAEMONIZE_GENERATION"]; ok && pid > 0 {
		s.add(pid)
	}
	if fields["READY"] == "1" {
		if main, err := strconv.Atoi(fields["MAINPID"]); err == nil && main > 0 {
			pid = main
		}
		if pid > 0 && pid != s.serving {
			s.log.Info("daemonize: supervisor: generation serves", "pid", pid)
			s.serving = pid
			s.add(pid)
		}
		if !s.ready {
			s.ready = true
			s.firstReady()
		}
	}
	if len(out) > 0 {
		if err := s.systemd.send(out...); err != nil {
			s.log.Error(err.Error())
		}
	}
}

// firstReady writes the pid file when a generation is first ready, and then
// tells the launcher of a detached service: generation 1 tells it only of
// its errors, so that the pid file names the supervisor when it returns.
func (s *supervisor) firstReady() {
	if s.pid != nil {
		if err := s.pid.write(os.Getpid()); err != nil {
			s.log.Error(err.Error())
		}
	}
	if s.report != nil {
		fmt.Fprintf(s.report, "ready %d\n", os.Getpid())
		s.report.Close()
		s.report = nil
	}
}

// add counts pid as a live generation.
func (s *supervisor) add(pid int) {
	if st, err := proc.ReadStat(pid); err == nil && !st.Zombie() {
		s.gens[pid] = st
	}
}

// reap reaps every child that has exited: generations, whose status is
// kept when they served, and any process the supervisor inherited.
func (s *supervisor) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if _, ok := s.gens[pid]; !ok {
			continue // an orphan of the service
		}
		delete(s.gens, pid)
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if pid == s.serving {
			s.code = code
			if len(s.gens) > 0 && code != 0 {
				s.log.Warn("daemonize: supervisor: the serving generation exited; waiting for the others", "pid", pid, "status", code)
			}
		}
		s.log.Info("daemonize: supervisor: generation exited", "pid", pid, "status", code)
	}
}

// prune forgets the generations that are gone without the supervisor
// reaping them: their parent, another generation, did.
func (s *supervisor) prune() {
	for pid, was := range s.gens {
		if st, err := proc.ReadStat(pid); err != nil || st.StartTime != was.StartTime {
			delete(s.gens, pid)
		}
	}
}

// finish ends the service: the processes the generations left behind are
// stopped (SIGTERM, then SIGKILL after killGrace) and reaped, and the pid
// file, its lock and the status file are removed. It returns the serving
// generation's exit status.
func (s *supervisor) finish() int {
	left := proc.Children(os.Getpid())
	for _, pid := range left {
		signalProcess(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(killGrace)
	for len(left) > 0 {
		s.reap()
		left = proc.Children(os.Getpid())
		if time.Now().After(deadline) {
			for _, pid := range left {
				signalProcess(pid, syscall.SIGKILL)
			}
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(time.Millisecond)
	}
	if s.pid != nil {
		os.Remove(StatusPath(s.pid.path))
		s.pid.remove(os.Getpid(), true)
	}
	s.log.Info("daemonize: supervisor: the service has stopped", "status", s.code)
	return s.code
}
