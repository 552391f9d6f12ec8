package daemonize

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
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

var (
	// ErrNotSupported is returned by [New] on platforms without fork, exec
	// and file descriptor passing (Windows, Plan 9, wasm).
	ErrNotSupported = errors.New("daemonize: not supported on this platform")

	// ErrNotReady is returned by [Daemon.Restart] before [Daemon.Ready].
	ErrNotReady = errors.New("daemonize: not ready")

	// ErrAlreadyReady is returned by [Daemon.Ready] when called twice, and by
	// [Daemon.Listen], [Daemon.ListenPacket] and [Daemon.File] after Ready.
	ErrAlreadyReady = errors.New("daemonize: already ready")

	// ErrStopping is returned by [Daemon.Restart] once the process stops or
	// has handed over to a new one.
	ErrStopping = errors.New("daemonize: stopping")
)

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
	// to become ready before stopping it. Zero means DefaultUpgradeTimeout.
	UpgradeTimeout time.Duration

	// DrainTimeout bounds the drain after a stop signal or a restart: the
	// deadline of the context passed to Stop and to the servers started
	// with [Daemon.Serve]. Zero means DefaultDrainTimeout.
	DrainTimeout time.Duration

	// Stop, if not nil, is called when the process must stop serving:
	// on SIGTERM or SIGINT, or once a restarted process has taken over.
	// It should stop accepting, finish what is in flight, and return by
	// the context's deadline.
	Stop func(ctx context.Context) error

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

// Environment variables the library sets for its own processes; each is
// removed as soon as it is read, so that no grandchild inherits it.
const (
	envDetached  = "DAEMONIZE_DETACHED"         // set for the detached daemon: its report pipe's fd
	envTableflip = "TABLEFLIP_HAS_PARENT_7DIU3" // set by tableflip for a restarted child
)

// Daemon is a running daemon: its pid file, its signals, and the sockets it
// hands to the next process on restart.
type Daemon struct {
	opts     Options
	log      *slog.Logger
	exe      string
	gen      int
	started  time.Time
	upg      *tableflip.Upgrader
	fds      fdSet
	handoff  *handoff
	pid      *pidFile
	launcher *os.File // pipe to the launching process, until ready
	parent   int      // the parent's pid, for a restarted child

	notify         notifier
	statusMu       sync.Mutex
	status         Status
	restarts       int   // restart attempts of the service, from the hand-off
	attemptStarted int64 // when the restart that started this process began

	stoppingUsed atomic.Bool // Stopping was called: the program stops servers of its own
	spent        bool        // took the service back: tableflip hands over once per process

	mu         sync.Mutex
	readyDone  bool
	drains     []func(context.Context) error
	successor  int // pid of the process that took over
	servers    []*httpDrain
	waitErr    error
	parentGone chan struct{}

	readyC     chan struct{}
	stopC      chan struct{}
	handedOver chan struct{} // closed once a hand-over has been reported
	stopOnce   sync.Once
	waitOnce   sync.Once
	sigs       chan os.Signal
	requests   chan chan error
	stopReq    chan struct{}
}

// newOnce guards the one Daemon a process may have.
var newOnce sync.Mutex

// New makes the calling program a daemon as opts say: it detaches, redirects
// output, takes the pid file's lock, installs the signal handlers and
// receives the sockets of a previous generation. Call it once, early in main,
// before binding anything; then create listeners with [Daemon.Listen], call
// [Daemon.Ready] and block in [Daemon.Wait].
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
	if o.Detach && report == nil && os.Getenv(envTableflip) == "" {
		os.Exit(launch(o, exe))
	}
	d, err := newDaemon(o, exe, report)
	if err != nil {
		d.reportError(err)
		return nil, err
	}
	return d, nil
}

// reportPipe returns the pipe to the launching process, if this is a
// detached daemon, and removes the marker from the environment.
func reportPipe() *os.File {
	v, ok := os.LookupEnv(envDetached)
	if !ok {
		return nil
	}
	os.Unsetenv(envDetached)
	if v != "3" {
		return nil
	}
	f := os.NewFile(3, "daemonize-report")
	if st, err := f.Stat(); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		return nil
	}
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

func newDaemon(o Options, exe string, report *os.File) (*Daemon, error) {
	d := &Daemon{
		opts:       o,
		log:        o.Logger,
		exe:        exe,
		gen:        1,
		started:    time.Now(),
		launcher:   report,
		readyC:     make(chan struct{}),
		stopC:      make(chan struct{}),
		handedOver: make(chan struct{}),
		sigs:       make(chan os.Signal, 16),
		requests:   make(chan chan error),
		stopReq:    make(chan struct{}, 1),
	}
	os.Args[0] = exe // tableflip starts the child from os.Args[0]
	if o.Umask != 0 {
		setUmask(o.Umask)
	}
	if o.Dir != "" {
		if err := os.Chdir(o.Dir); err != nil {
			return d, fmt.Errorf("daemonize: working directory: %w", err)
		}
	}
	restarted := os.Getenv(envTableflip) != ""
	d.notify = systemdEnv()
	if report == nil && !restarted && (o.Stdout != "" || o.Stderr != "") {
		if err := redirect(o.Stdout, o.Stderr); err != nil {
			return d, err
		}
	}
	upg, err := tableflip.New(tableflip.Options{
		// tableflip's own timeout is only a backstop: ours stops the child
		// with SIGTERM first, then SIGKILL.
		UpgradeTimeout: o.UpgradeTimeout + killGrace + time.Second,
	})
	os.Unsetenv(envTableflip) // tableflip leaves it for grandchildren to see
	if err != nil {
		return d, fmt.Errorf("daemonize: %w", err)
	}
	d.upg = upg
	d.fds = fdSet{files: upg.Fds, lc: o.ListenConfig, readyC: d.readyC}
	if restarted {
		if err := d.inherit(); err != nil {
			return d, err
		}
	} else {
		if d.fds.inherited, d.fds.activated, err = activatedSockets(); err != nil {
			return d, err
		}
		h, err := newHandoff()
		if err == nil {
			err = upg.AddFile(handoffName, h.f)
		}
		if err != nil {
			return d, fmt.Errorf("daemonize: %w", err)
		}
		d.handoff = h
	}
	d.fds.gen = d.gen
	if o.PIDFile != "" && d.pid == nil {
		if d.pid, err = lockPIDFile(o.PIDFile); err != nil {
			return d, err
		}
		if err := upg.AddFile(pidLockName, d.pid.lock); err != nil {
			return d, fmt.Errorf("daemonize: %w", err)
		}
	}
	d.status = Status{
		PID:            os.Getpid(),
		Generation:     d.gen,
		State:          StateStarting,
		Executable:     exe,
		Started:        time.Now(),
		ServiceStarted: d.started,
		Restarts:       d.restarts,
	}
	if restarted {
		d.status.Started = time.Unix(0, d.attemptStarted)
	}
	if !restarted {
		d.setStatus(func(*Status) {})
		d.notify.startWatchdog(0, d.logError)
	}
	notifySignals(d.sigs)
	go d.run()
	return d, nil
}

// inherit takes what the parent process passed: the hand-off file, the
// sockets it lists, and the pid file's lock.
func (d *Daemon) inherit() error {
	d.parent = os.Getppid()
	f, err := d.upg.File(handoffName)
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
	d.gen = m.Generation
	d.started = time.Unix(0, m.Started)
	d.restarts, d.attemptStarted = m.Restarts, m.AttemptStarted
	d.notify.socket, d.notify.watchdog = m.NotifySocket, time.Duration(m.WatchdogUSec)*time.Microsecond
	d.fds.inherited = m.Files
	if lock, err := d.upg.File(pidLockName); err != nil {
		return fmt.Errorf("daemonize: %w", err)
	} else if lock != nil && d.opts.PIDFile != "" {
		d.pid = &pidFile{path: d.opts.PIDFile, lock: lock}
	}
	d.parentGone = make(chan struct{})
	go func() {
		d.upg.WaitForParent(context.Background())
		close(d.parentGone)
	}()
	return nil
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

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " | ") }

// Listen returns a listener for network and addr: the one the previous
// generation passed, or a new one. Call it before [Daemon.Ready]. Its Accept
// waits until Ready: until the new process is ready, connections wait in the
// socket for the old one, so that none is lost if the new one fails.
//
// An inherited socket matches by the address as asked for, then by the
// address it is bound to: "localhost:8080" finds the socket a previous
// generation asked for as "127.0.0.1:8080", and ":0" keeps the port the
// first generation got.
func (d *Daemon) Listen(network, addr string) (net.Listener, error) {
	ln, err := d.fds.listen(network, addr)
	d.reportError(err)
	return ln, err
}

// ListenPacket is [Daemon.Listen] for packet sockets: udp, udp4, udp6 and
// unixgram. The socket is not gated: do not read from it before Ready, or a
// new process that then fails takes datagrams with it.
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
	err := d.ready()
	d.reportError(err)
	return err
}

func (d *Daemon) ready() error {
	// d.mu is held throughout, so that the signal loop, which reads
	// readyDone under it, sees this process as ready or not, never half
	// way: a SIGUSR1 sent as soon as the pid file names it is not lost.
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.readyDone {
		return fmt.Errorf("daemonize: Ready called twice: %w", ErrAlreadyReady)
	}
	select {
	case <-d.stopC:
		return fmt.Errorf("daemonize: Ready: %w", ErrStopping)
	default:
	}
	for _, e := range d.fds.markReady() {
		d.log.Info("daemonize: closing inherited socket nobody asked for", "network", e.Network, "addr", e.Addr)
		if e.Kind == kindListener && strings.HasPrefix(e.Network, "unix") && !strings.HasPrefix(e.Bound, "@") {
			os.Remove(e.Bound)
		}
	}
	if d.parent != 0 {
		won, _, err := d.handoff.transition(stateReady)
		if err != nil {
			return err
		}
		if !won {
			return fmt.Errorf("daemonize: the old process gave up waiting for this one after %s (Options.UpgradeTimeout); it keeps serving", d.opts.UpgradeTimeout)
		}
	}
	if d.pid != nil {
		if err := d.pid.write(os.Getpid()); err != nil {
			return err
		}
	}
	if d.parent == 0 {
		d.setStatus(func(st *Status) { st.State = StateReady })
	} else {
		// The old process writes this same status once it learns that we
		// are ready, keeping the write off the restart's critical path;
		// unless it is gone already.
		st := readyStatus(d.status, d.parent, os.Getpid(), d.gen, d.restarts, time.Unix(0, d.attemptStarted), time.Now())
		d.updateStatus(func(s *Status) { *s = st })
		if os.Getppid() != d.parent {
			d.setStatus(func(*Status) {})
		}
	}
	close(d.readyC) // listeners accept from now on
	if err := d.upg.Ready(); err != nil && os.Getppid() == d.parent {
		return fmt.Errorf("daemonize: %w", err)
	}
	if d.launcher != nil {
		fmt.Fprintf(d.launcher, "ready %d\n", os.Getpid())
		d.launcher.Close()
		d.launcher = nil
	}
	d.readyDone = true
	d.log.Info("daemonize: ready", "pid", os.Getpid(), "generation", d.gen)
	if d.parent == 0 {
		d.logError(d.notify.send("READY=1", "STATUS="+d.describe()))
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

// isReady reports whether Ready has succeeded. It waits for a Ready that
// is under way.
func (d *Daemon) isReady() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readyDone
}

// Generation returns 1 for the first process of the service and counts up
// with each restart.
func (d *Daemon) Generation() int { return d.gen }

// Stopping returns a channel that is closed when the process must stop
// serving: after SIGTERM or SIGINT, or once a restarted process took over.
func (d *Daemon) Stopping() <-chan struct{} {
	d.stoppingUsed.Store(true)
	return d.stopC
}

// Stop asks the process to stop, as SIGTERM does.
func (d *Daemon) Stop() {
	select {
	case d.stopReq <- struct{}{}:
	default:
	}
}

// Wait blocks until the process must stop serving, then drains: it calls
// Options.Stop and the drains of [Daemon.Serve] with a context that ends
// after Options.DrainTimeout, and waits for them. It then removes the pid
// file if it still names this process, and returns. The error says what was
// still running when the drain deadline passed; the program should then exit
// non-zero.
func (d *Daemon) Wait() error {
	<-d.stopC
	d.waitOnce.Do(func() {
		d.waitErr = d.drain()
		if d.successorPID() != 0 {
			<-d.handedOver // systemd and the status file are told
		}
		d.cleanup()
	})
	return d.waitErr
}

// onStop adds a drain function, run when the process must stop serving.
func (d *Daemon) onStop(fn func(context.Context) error) {
	d.mu.Lock()
	d.drains = append(d.drains, fn)
	d.mu.Unlock()
}

// drain runs every drain function until it returns or the drain deadline
// passes.
func (d *Daemon) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout)
	defer cancel()
	d.mu.Lock()
	fns := slices.Clone(d.drains)
	if d.opts.Stop != nil {
		fns = append(fns, d.opts.Stop)
	}
	d.mu.Unlock()
	results := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { results <- fn(ctx) }()
	}
	var errs []error
	for left := len(fns); left > 0; left-- {
		select {
		case err := <-results:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			// Give the drains a moment to return their own account of
			// what was still running, then stop waiting.
			grace := time.NewTimer(100 * time.Millisecond)
			for ; left > 0; left-- {
				select {
				case err := <-results:
					if err != nil {
						errs = append(errs, err)
					}
					continue
				case <-grace.C:
				}
				break
			}
			if left > 0 {
				errs = append(errs, fmt.Errorf("%d stop functions still running", left))
			}
			grace.Stop()
			err := fmt.Errorf("daemonize: drain deadline (%s) passed: %w", d.opts.DrainTimeout, errors.Join(errs...))
			d.log.Error(err.Error())
			return err
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("daemonize: stop: %w", errors.Join(errs...))
	}
	return nil
}

// cleanup releases what this process holds for the service. The pid file
// and its lock go only with the last process; a process that handed over
// leaves them to its successor.
func (d *Daemon) cleanup() {
	d.mu.Lock()
	last := d.readyDone && d.successor == 0
	d.mu.Unlock()
	if d.pid != nil {
		d.pid.remove(os.Getpid(), last)
	}
	d.fds.closeListeners(false) // if the program has not: connections are refused, not queued
	d.fds.releaseKept()
	if last {
		for _, p := range d.fds.unixPaths() {
			os.Remove(p)
		}
	}
	// tableflip closes its copies of the sockets in its own goroutine, and
	// closes Exit once it has: wait, so that once Wait returns the sockets
	// are released.
	d.upg.Stop()
	select {
	case <-d.upg.Exit():
	case <-time.After(killGrace):
	}
}

// beginStop closes the Stopping channel, once. The process that serves
// the service says it stops; one that handed over just drains.
func (d *Daemon) beginStop(why string) {
	d.stopOnce.Do(func() {
		d.log.Info("daemonize: stopping", "pid", os.Getpid(), "reason", why)
		if d.successorPID() == 0 {
			d.handoff.markStopping()
			d.setStatus(func(st *Status) { st.State = StateStopping })
			d.logError(d.notify.send("STOPPING=1", "STATUS=stopping: draining"))
		}
		close(d.stopC)
	})
}

// exitNow ends the process at once, on a second stop signal or a stop
// before Ready, killing the child of a running restart with killChild.
func (d *Daemon) exitNow(why string, killChild bool) {
	d.log.Warn("daemonize: exiting at once", "pid", os.Getpid(), "reason", why)
	if killChild {
		if pid, _ := d.handoff.child(); pid != 0 {
			signalProcess(pid, syscall.SIGKILL)
		}
	}
	d.cleanup()
	os.Exit(1)
}
