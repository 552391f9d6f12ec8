package daemonize

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Default values for the zero fields of [Options].
const (
	DefaultStartTimeout   = time.Minute
	DefaultUpgradeTimeout = time.Minute
	DefaultDrainTimeout   = 30 * time.Second
)

// killGrace is how long a process told to stop with SIGTERM gets before
// SIGKILL.
const killGrace = 5 * time.Second

// Options configure [New]. The zero value runs in the foreground with no pid
// file and the default timeouts.
type Options struct {
	// Detach runs the program as a daemon. New starts a copy of the
	// executable in a new session, with standard input on /dev/null and
	// standard output and error on Stdout and Stderr, and waits until that
	// copy calls [Daemon.Ready] or fails. The launching process then exits:
	// 0 once the daemon is ready, 1 with the daemon's error otherwise. In the
	// launching process New never returns.
	Detach bool

	// Stdout and Stderr name the files that standard output and standard
	// error are appended to (created with mode 0644 if missing); both may
	// name the same file. Empty means /dev/null when detached, and keep the
	// inherited ones in the foreground. SIGHUP reopens them.
	Stdout, Stderr string

	// PIDFile names the pid file: written when the process is ready,
	// replaced atomically, handed to the new process on restart, removed on
	// a clean stop. A lock in PIDFile+".lock" keeps a second instance out.
	PIDFile string

	// Dir is the working directory to change to. Empty keeps the current
	// one, so that relative paths in arguments keep their meaning; "/"
	// keeps the daemon from holding a mount point busy.
	Dir string

	// Umask, when not zero, is set as the process umask.
	Umask fs.FileMode

	// StartTimeout bounds how long the launching process waits for a
	// detached daemon to become ready. Zero means DefaultStartTimeout.
	StartTimeout time.Duration

	// UpgradeTimeout bounds how long a restart waits for the new process
	// to become ready before killing it. Zero means DefaultUpgradeTimeout.
	UpgradeTimeout time.Duration

	// DrainTimeout bounds the drain after a stop signal or a restart: the
	// deadline of the context passed to the functions of [Daemon.OnDrain]
	// and to the servers of [Daemon.Serve]. Zero means DefaultDrainTimeout.
	DrainTimeout time.Duration

	// TakeBack keeps the listening sockets of a process that handed over
	// until its drain ends: if the new process dies without a clean stop
	// meanwhile (it crashed, say, right after it was ready), the old one
	// serves again, and the pid file, the status file and systemd name it
	// again. It applies only when every listener runs under [Daemon.Serve]
	// and no [Daemon.OnDrain] function is registered, since a drain the
	// program carried out itself cannot be undone. While the chance lasts,
	// a server's drain ends its HTTP/2 connections itself, once idle; it
	// ends when only HTTP/2 and hijacked connections are left and one is
	// hijacked: the drain then calls http.Server.Shutdown, for the hooks
	// of RegisterOnShutdown, after which the server cannot serve again. A
	// process that took the service back cannot restart again (tableflip
	// passes sockets on once); stop it and start the service anew.
	TakeBack bool

	// Supervise keeps the process that was started, for the life of the
	// service, as a small supervisor with a stable pid, and runs the
	// generations under it: what a container's PID 1, systemd without
	// MAINPID tracking, and process supervisors (supervisord, runit, s6)
	// need. The supervisor reaps every process it inherits, passes signals
	// on to the generation that serves (SIGHUP to every generation), names
	// itself in the pid file, and exits with the serving generation's
	// status once no generation is left: when the service stops, or when
	// the serving generation dies outside a hand-over (it does not restart
	// it: the container runtime or the supervisor above decides that). The
	// supervisor's own code is the binary it was started from until the
	// service is stopped and started again. Linux only: elsewhere New
	// returns an error wrapping ErrNotSupported.
	Supervise bool

	// ListenConfig, if not nil, creates the sockets of [Daemon.Listen] and
	// [Daemon.ListenPacket] that were not inherited.
	ListenConfig *net.ListenConfig

	// Logger receives the library's log lines. Nil means no output.
	Logger *slog.Logger
}

// resolve checks o, fills in defaults and makes paths absolute against wd.
func (o Options) resolve(wd string) (Options, error) {
	for _, t := range []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"StartTimeout", &o.StartTimeout, DefaultStartTimeout},
		{"UpgradeTimeout", &o.UpgradeTimeout, DefaultUpgradeTimeout},
		{"DrainTimeout", &o.DrainTimeout, DefaultDrainTimeout},
	} {
		if *t.d < 0 {
			return o, fmt.Errorf("daemonize: %s is %s; want a positive duration, or 0 for the default %s", t.name, *t.d, t.def)
		}
		if *t.d == 0 {
			*t.d = t.def
		}
	}
	if o.Umask&^fs.ModePerm != 0 {
		return o, fmt.Errorf("daemonize: Umask %#o has bits beyond 0777", uint32(o.Umask))
	}
	if o.Detach {
		if o.Stdout == "" {
			o.Stdout = os.DevNull
		}
		if o.Stderr == "" {
			o.Stderr = os.DevNull
		}
	}
	for _, p := range []*string{&o.Stdout, &o.Stderr, &o.PIDFile, &o.Dir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(wd, *p)
		}
	}
	if o.ListenConfig == nil {
		o.ListenConfig = &net.ListenConfig{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// initialWD is the working directory the process started in, before any
// Chdir: relative paths in options and arguments are relative to it.
var initialWD, _ = os.Getwd()

// envDetached is set for the detached daemon: its report pipe's
// descriptor. It is removed as soon as it is read, so that no process the
// daemon starts inherits it.
const envDetached = "DAEMONIZE_DETACHED"

// Daemon is a running daemon: its pid file, its signals, and the sockets it
// hands to the next process on restart.
type Daemon struct {
	opts       Options
	log        *slog.Logger
	exe        string
	gen        int
	started    time.Time // when generation 1 started
	parent     int       // the previous generation's pid, 0 in generation 1
	supervisor int       // the supervisor's pid, 0 without Options.Supervise
	inherit    manifest  // what the previous generation passed
	flip       *flipper
	fds        fdSet
	handoff    *handoff
	pid        *pidFile
	out        output
	notify     notifier
	status     statusFile
	life       *lifecycle
	launcher   *os.File      // pipe to the launching process, until ready
	readyC     chan struct{} // closed at Ready: the listeners accept

	readyDone atomic.Bool

	drainMu      sync.Mutex
	drainingC    chan struct{} // closed when a drain begins; a new one after a take-back
	onDrain      []func(context.Context) error
	servers      []*httpDrain
	serving      map[*http.Server]net.Addr // the servers of servers, and what each serves
	cancelDrain  context.CancelCauseFunc   // of the drain under way
	drainsDone   chan struct{}             // closed when the drain functions of the drain under way have returned
	hurried      atomic.Bool
	shutDown     bool         // a server of the drain called http.Server.Shutdown: no take-back
	releaseServe func()       // releases the lock that says this generation serves
	successor    atomic.Int64 // the process this one handed over to, while it serves

	waitOnce sync.Once
}

// newOnce guards the one Daemon a process may have.
var newOnce sync.Mutex

// New makes the calling program a daemon as opts say: it detaches, redirects
// output, takes the pid file's lock, installs the signal handlers and
// receives the sockets of a previous generation. Call it once, early in main,
// before binding anything; then create listeners with [Daemon.Listen], call
// [Daemon.Ready] and block in [Daemon.Wait].
//
// New points os.Stderr at a duplicate of descriptor 2, so that a restart
// can tell the new process's standard error from this one's.
//
// With opts.Detach, the launching process never returns from New: it exits
// once the daemon is ready or failed.
func New(opts Options) (*Daemon, error) {
	if !supported {
		return nil, ErrNotSupported
	}
	if !newOnce.TryLock() {
		return nil, errors.New("daemonize: New called twice: a process can have one Daemon")
	}
	o, err := opts.resolve(initialWD)
	if err != nil {
		return nil, err
	}
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	report := reportPipe()
	sup := supervisorConn()
	generation := sup != nil || os.Getenv(tableflipMarker) != ""
	if o.Detach && report == nil && !generation {
		os.Exit(launch(o, exe))
	}
	if o.Supervise && !generation {
		if err := canSupervise(); err != nil {
			return nil, err
		}
		os.Exit(supervise(o, exe, report))
	}
	d, err := newDaemon(o, exe, report, sup)
	if err != nil {
		d.reportError(err)
		return nil, err
	}
	return d, nil
}

// reportPipe returns the pipe to the launching process, if this is a
// detached daemon, and removes the marker from the environment.
func reportPipe() *os.File {
	f := inheritedFile(envDetached, "daemonize-report")
	if f == nil {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		return nil
	}
	return f
}

// inheritedFile returns the descriptor the environment variable env names,
// close-on-exec, and removes the variable, which no process this one
// starts must see.
func inheritedFile(env, name string) *os.File {
	v, ok := os.LookupEnv(env)
	if !ok {
		return nil
	}
	os.Unsetenv(env)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(fd), name)
	setCloseOnExec(f)
	return f
}

// executable returns the absolute path the program was started by, without
// resolving symbolic links: a restart runs whatever is at that path then, so
// a deploy that renames a new binary over it, or flips a symlink, takes effect.
func executable() (string, error) {
	p := os.Args[0]
	if !strings.ContainsRune(p, filepath.Separator) {
		lp, err := exec.LookPath(p)
		if err != nil {
			if lp, err = os.Executable(); err != nil {
				return "", fmt.Errorf("daemonize: cannot find the executable %q: %w", p, err)
			}
		}
		p = lp
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(initialWD, p)
	}
	return p, nil
}

func newDaemon(o Options, exe string, report, sup *os.File) (*Daemon, error) {
	d := &Daemon{
		opts:      o,
		log:       o.Logger,
		exe:       exe,
		gen:       1,
		started:   time.Now(),
		launcher:  report,
		readyC:    make(chan struct{}),
		drainingC: make(chan struct{}),
		out:       output{stdout: o.Stdout, stderr: o.Stderr, errFd: -1},
	}
	if o.Umask != 0 {
		setUmask(o.Umask)
	}
	if o.Dir != "" {
		if err := os.Chdir(o.Dir); err != nil {
			return d, fmt.Errorf("daemonize: working directory: %w", err)
		}
	}
	d.notify = systemdEnv()
	flip, restarted, err := startFlipper(exe, o.UpgradeTimeout)
	if err != nil {
		return d, err
	}
	d.flip = flip
	if sup != nil {
		// Generation 1 of a supervised service: the supervisor did what a
		// first process does (detach, redirect, lock the pid file).
		d.supervisor = os.Getppid()
		if err := flip.AddFile(supervisorName, sup); err != nil {
			return d, fmt.Errorf("daemonize: %w", err)
		}
	}
	if report == nil && !restarted && sup == nil && (o.Stdout != "" || o.Stderr != "") {
		if err := redirect(o.Stdout, o.Stderr); err != nil {
			return d, err
		}
	}
	d.fds = fdSet{lc: o.ListenConfig, readyC: d.readyC}
	if restarted {
		if err := d.inheritFrom(); err != nil {
			return d, err
		}
	} else {
		if d.fds.inherited, err = activatedSockets(sup != nil); err != nil {
			return d, err
		}
		f, err := anonFile("daemonize-handoff")
		if err == nil {
			err = flip.AddFile(handoffName, f)
		}
		if err != nil {
			return d, fmt.Errorf("daemonize: hand-off file: %w", err)
		}
		d.handoff = &handoff{f: f}
	}
	if err := d.out.setup(flip, d.inherit.StderrCaptured); err != nil {
		return d, err
	}
	d.fds.gen = d.gen
	if sup != nil {
		d.notify.socket, d.notify.conn = "", sup
	}
	if d.notify.conn != nil {
		d.notify.pid = strconv.Itoa(os.Getpid())
		d.logError(d.notify.send(fmt.Sprintf("DAEMONIZE_GENERATION=%d", d.gen)))
	}
	if o.PIDFile != "" && d.pid == nil && d.supervisor == 0 {
		if d.pid, err = lockPIDFile(o.PIDFile); err != nil {
			return d, err
		}
		if err := flip.AddFile(pidLockName, d.pid.lock); err != nil {
			return d, fmt.Errorf("daemonize: %w", err)
		}
	}
	d.status = statusFile{log: d.log, st: Status{
		PID:            os.Getpid(),
		Generation:     d.gen,
		State:          StateStarting,
		Executable:     exe,
		Started:        time.Now(),
		ServiceStarted: d.started,
		Restarts:       d.inherit.Restarts,
		Supervisor:     d.supervisor,
	}}
	if o.PIDFile != "" {
		d.status.path = StatusPath(o.PIDFile)
	}
	d.life = newLifecycle(d, d.log, d.inherit.Restarts, flip.parentGone())
	d.life.pid1 = isPID1()
	d.life.supervised = d.supervisor != 0
	if restarted {
		d.status.st.Started = time.Unix(0, d.inherit.AttemptStarted)
		d.life.deadline = time.After(d.readyDeadline())
	} else {
		d.status.set(func(*Status) {})
		d.notify.startWatchdog(0, d.logError)
	}
	notifySignals(d.life.signals)
	go d.life.run()
	return d, nil
}

// inheritFrom takes what the previous generation passed: the hand-off
// file, the sockets it lists, and the pid file's lock.
func (d *Daemon) inheritFrom() error {
	d.parent = os.Getppid()
	f, err := d.flip.File(handoffName)
	if err == nil && f == nil {
		err = errors.New("the parent process passed no hand-off file; were both built with daemonize?")
	}
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	d.handoff = &handoff{f: f}
	d.handoff.setChild(os.Getpid(), "")
	m, err := d.handoff.manifest()
	if err != nil {
		return err
	}
	d.inherit = m
	d.gen = m.Generation
	d.started = time.Unix(0, m.Started)
	d.notify.socket, d.notify.watchdog = m.NotifySocket, time.Duration(m.WatchdogUSec)*time.Microsecond
	if err := inheritFds(d.flip, m); err != nil {
		return err
	}
	d.fds.inherited = m.Files
	if m.Supervisor != 0 {
		d.supervisor = m.Supervisor
		if d.notify.conn, err = d.flip.File(supervisorName); err != nil || d.notify.conn == nil {
			return fmt.Errorf("daemonize: the supervisor's socket: %v", err)
		}
	}
	if lock, err := d.flip.File(pidLockName); err != nil {
		return fmt.Errorf("daemonize: %w", err)
	} else if lock != nil && d.opts.PIDFile != "" && d.supervisor == 0 {
		d.pid = &pidFile{path: d.opts.PIDFile, lock: lock}
	}
	return nil
}

// inheritFds gives each file of m its descriptor: from the socket pair of
// the hand-off, or, from a parent of an earlier release (manifest version
// 1 or 2), from tableflip by name.
func inheritFds(files fileTable, m manifest) error {
	if len(m.Files) == 0 {
		return nil
	}
	if m.Version < 3 {
		for i, e := range m.Files {
			f, err := files.File(e.Name)
			if err == nil && f == nil {
				err = errors.New("descriptor missing")
			}
			if err == nil {
				m.Files[i].fd, err = dupConn(f)
				f.Close()
			}
			if err != nil {
				for _, e := range m.Files[:i] {
					closeFds(e.fd)
				}
				return fmt.Errorf("daemonize: inherited %s %s %s: %w", e.Kind, e.Network, e.Addr, err)
			}
		}
		return nil
	}
	if err := checkFdLimit(len(m.Files)); err != nil {
		return err
	}
	ch, err := files.File(filesName)
	if err == nil && ch == nil {
		err = errors.New("the old process passed none")
	}
	if err != nil {
		return fmt.Errorf("daemonize: descriptors from the old process: %w", err)
	}
	defer ch.Close()
	fds, err := recvFds(ch, len(m.Files))
	if err != nil {
		return err
	}
	for i := range m.Files {
		m.Files[i].fd = fds[i]
	}
	return nil
}

// parentExits reports whether this process's parent, parent, exits within
// killGrace.
func parentExits(parent int) bool {
	return within(killGrace, func() bool { return os.Getppid() != parent })
}

// within reports whether done holds within limit, checking it every
// millisecond: for what the kernel tells nobody, as a reparenting or
// another process's exit.
func within(limit time.Duration, done func() bool) bool {
	for end := time.Now().Add(limit); !done(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			return false
		}
	}
	return true
}

// readyDeadline is how long a restarted process has left to become ready.
func (d *Daemon) readyDeadline() time.Duration {
	if d.inherit.Deadline != 0 {
		return time.Duration(d.inherit.Deadline-monotonicUSec())*time.Microsecond + readyGuard(d.opts.UpgradeTimeout)
	}
	return time.Until(time.Unix(0, d.inherit.AttemptStarted).Add(d.opts.UpgradeTimeout))
}

// reportError tells whoever waits for this process to become ready (the
// launching process, or the parent of a restart) why it failed.
func (d *Daemon) reportError(err error) {
	if d == nil || err == nil {
		return
	}
	if d.launcher != nil {
		fmt.Fprintf(d.launcher, "error %s\n", oneLine(err.Error()))
	}
	if d.handoff != nil && d.parent != 0 {
		d.handoff.setChild(0, err.Error())
	}
}

// Listen returns a listener for network and addr: the one the previous
// generation passed, or a new one. Call it before [Daemon.Ready]. Its Accept
// waits until Ready: until the new process is ready, connections wait in the
// socket for the old one, so that none is lost if the new one fails.
//
// An inherited socket matches by the address as asked for, then by the
// address it is bound to: "localhost:8080" finds the socket a previous
// generation asked for as "127.0.0.1:8080", and ":0" keeps the port the
// first generation got.
//
// The listener may be wrapped (by [crypto/tls.NewListener], say) before it
// is given to [Daemon.Serve].
func (d *Daemon) Listen(network, addr string) (net.Listener, error) {
	ln, err := d.fds.listen(network, addr)
	d.reportError(err)
	return ln, err
}

// ListenPacket is [Daemon.Listen] for packet sockets: udp, udp4, udp6 and
// unixgram. The socket is not gated: do not read from it before Ready, or a
// new process that then fails takes datagrams with it. Close it when
// [Daemon.Draining] is closed: the socket lives on in the new process.
func (d *Daemon) ListenPacket(network, addr string) (net.PacketConn, error) {
	pc, err := d.fds.listenPacket(network, addr)
	d.reportError(err)
	return pc, err
}

// File returns the file the previous generation passed under name, or calls
// open and passes its result on to the next generation. Use it for any
// descriptor that must survive a restart: a socket made some other way (see
// [net.FileListener] to turn it back into a listener), a pipe, a file.
func (d *Daemon) File(name string, open func() (*os.File, error)) (*os.File, error) {
	f, err := d.fds.file(name, open)
	d.reportError(err)
	return f, err
}

// Ready says the program has set up its listeners and state and serves. It
// writes the pid file, tells the launching process or the parent of a
// restart, and closes the inherited sockets nobody asked for.
func (d *Daemon) Ready() error {
	reply := make(chan error, 1)
	d.life.send(evReady{reply})
	err := <-reply
	d.reportError(err)
	return err
}

// becomeReady does the work of Ready, in the lifecycle's loop, so that a
// signal is handled wholly before it or wholly after.
func (d *Daemon) becomeReady() error {
	left, err := d.fds.markReady()
	if err != nil {
		return err
	}
	for _, e := range left {
		d.log.Info("daemonize: closing inherited socket nobody asked for", "network", e.Network, "addr", e.Addr)
		if e.ownPath() {
			os.Remove(e.Bound)
		}
	}
	if d.parent != 0 {
		deadline := d.inherit.Deadline
		won, _, err := d.handoff.transition(stateReady, func() bool { return deadline == 0 || monotonicUSec() < deadline })
		if err != nil {
			return err
		}
		if !won {
			return fmt.Errorf("daemonize: not ready within the old process's %s (Options.UpgradeTimeout); it keeps serving", d.opts.UpgradeTimeout)
		}
		if d.releaseServe, err = d.handoff.serve(d.gen); err != nil {
			d.log.Warn("daemonize: cannot take the serving lock; the old process will not notice if this one dies", "err", err)
		}
	}
	// The pid file names this process before the old one learns it is
	// ready, so that it never names a process that has exited. On a first
	// start the status says ready before the pid file appears, so that
	// whoever waits for the pid file finds the status ready with it.
	if d.parent == 0 {
		d.status.set(func(st *Status) { st.State = StateReady })
	}
	if d.pid != nil {
		if err := d.pid.write(os.Getpid()); err != nil {
			return err
		}
	}
	// Accept before telling the old process, which then stops accepting:
	// there is no moment when nobody accepts. Nothing slow comes between
	// the two: the Accepts woken here, a thousand with a thousand served
	// listeners, would take the CPU from this goroutine at its next slow
	// system call (the pid file's, 20 to 30 ms on a 2-core machine).
	close(d.readyC)
	// The old process closes the pipe of tableflip's byte only as it
	// exits: a byte that cannot be written means it is exiting (killed a
	// moment ago, its descriptors closed before its children are
	// reparented), and this process, which won the hand-off, serves alone
	// as when the old one died sooner.
	if err := d.flip.ready(); err != nil && !(errors.Is(err, errParentExiting) && parentExits(d.parent)) {
		return err
	}
	// Unless orphaned, the parent copies what this process wrote before
	// Ready into the log.
	parentGone := d.parent != 0 && os.Getppid() != d.parent
	d.logError(d.out.release(parentGone))
	if d.parent != 0 {
		// The old process writes this same status once it learns that we
		// are ready, keeping the write off the restart's critical path;
		// unless it is gone already.
		st := readyStatus(d.status.get(), d.parent, os.Getpid(), d.gen, d.inherit.Restarts, time.Unix(0, d.inherit.AttemptStarted), time.Now())
		d.status.update(func(s *Status) { *s = st })
		if parentGone {
			d.status.set(func(*Status) {})
		}
	}
	if d.launcher != nil {
		// Supervised, the supervisor says it, once the pid file names it.
		if d.supervisor == 0 {
			fmt.Fprintf(d.launcher, "ready %d\n", os.Getpid())
		}
		d.launcher.Close()
		d.launcher = nil
	}
	d.readyDone.Store(true)
	d.log.Info("daemonize: ready", "pid", os.Getpid(), "generation", d.gen)
	go warmProcessCheck()
	if d.parent == 0 || parentGone {
		// Orphaned, this process must say it serves itself.
		d.logError(d.notify.send(fmt.Sprintf("MAINPID=%d", os.Getpid()), "READY=1", "STATUS="+d.describe()))
		d.notify.startWatchdog(0, d.logError)
	} else {
		// The old process tells systemd, with MAINPID, once it knows;
		// until then systemd would not accept this one's messages.
		d.notify.startWatchdog(d.notify.watchdog/2, d.logError)
	}
	return nil
}

// describe sums up this process for systemd's STATUS line.
func (d *Daemon) describe() string {
	return fmt.Sprintf("serving: generation %d, pid %d", d.gen, os.Getpid())
}

// logError logs err, if any.
func (d *Daemon) logError(err error) {
	if err != nil {
		d.log.Error(err.Error())
	}
}

// Generation returns 1 for the first process of the service and counts up
// with each restart.
func (d *Daemon) Generation() int { return d.gen }

// Restart starts the executable at the same path as a new process, passes it
// the listeners, and waits until it is ready. Then this process stops
// serving: [Daemon.Draining] is closed and [Daemon.Wait] drains. On failure
// the new process is stopped and this one keeps serving; the error is a
// [*RestartError]. SIGUSR1 asks for a restart the same way.
//
// A request is answered only by an attempt that starts the executable after
// the request arrived: requests made during an attempt share one follow-up,
// which runs if the attempt fails, or if it succeeds but the executable was
// replaced meanwhile (then the new process runs it, and Restart returns an
// error wrapping [ErrHandedOver]). A restart asked for while the previous
// generation still drains makes it hurry, and starts once it has exited.
//
// If ctx ends first, Restart returns its error; the restart goes on.
func (d *Daemon) Restart(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case d.life.events <- evRestart{reply}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop asks the process to stop, as SIGTERM does: it stops accepting at
// once (new connections are refused), drains, and [Daemon.Wait] returns.
func (d *Daemon) Stop() { d.life.send(evStop{}) }

// Draining returns a channel that is closed when this process begins to
// drain: after SIGTERM, SIGINT or [Daemon.Stop], or once a new process took
// over. A handler of a long-lived request (a WebSocket, server-sent events,
// a streaming call) selects on it to end the request at a point where its
// client can carry on with the new process. After a take-back (see
// [Options.TakeBack]) the process serves again, and Draining returns a new
// channel.
func (d *Daemon) Draining() <-chan struct{} {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	return d.drainingC
}

// OnDrain registers fn to run when the process drains, with a context that
// ends after [Options.DrainTimeout]. fn should stop accepting (close its
// listeners: the sockets live on in the new process), finish what is in
// flight, and return by the context's deadline. [Daemon.Wait] waits for it.
// Use it for servers that are not run by [Daemon.Serve].
func (d *Daemon) OnDrain(fn func(ctx context.Context) error) {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	d.onDrain = append(d.onDrain, fn)
}

// Wait blocks until the process must stop serving, then waits for the
// drain: the functions of [Daemon.OnDrain] and the servers of
// [Daemon.Serve], within [Options.DrainTimeout]. It then removes the pid
// file if it still names this process, and returns. The error says what
// was still running when the drain deadline passed; the program should
// then exit non-zero.
func (d *Daemon) Wait() error {
	<-d.life.done
	d.waitOnce.Do(d.cleanup)
	return d.life.drainErr
}
