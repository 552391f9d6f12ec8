package daemonize

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The names under which the library passes its own files to a restarted
// child, beside the program's sockets.
const (
	handoffName = "daemonize.handoff"
	pidLockName = "daemonize.pidlock"
)

// The kinds of inherited file.
const (
	kindListener = "listener"
	kindPacket   = "packet"
	kindFile     = "file"
)

// entry describes one file passed to a restarted child.
type entry struct {
	Name    string // the name the descriptor travels under
	Kind    string // kindListener, kindPacket or kindFile
	Network string // "tcp", "unix", ...; empty for a file
	Addr    string // the address as the program asked for it, or the file's name
	Bound   string // the address the socket is bound to
}

// manifest is what a parent tells its child: the files it passes and the
// service's state that outlives a generation.
type manifest struct {
	Version        int
	Generation     int   // the child's generation: 2 for the first restart
	Started        int64 // first generation's start, Unix nanoseconds
	Restarts       int
	AttemptStarted int64 // when this restart began, Unix nanoseconds
	NotifySocket   string
	WatchdogUSec   int64
	Files          []entry
}

const manifestVersion = 1

// The manifest is text, a line per field and per file, with strings quoted
// as in Go: it costs a restarted child a few microseconds to read, where a
// first JSON decode costs a hundred.
//
//	daemonize-handoff 1
//	generation 2
//	started 1795601425708313000
//	restarts 1
//	attempt-started 1795601425708313000
//	notify "/run/systemd/notify"
//	watchdog-usec 30000000
//	file "g1.1" "listener" "tcp" "localhost:8080" "127.0.0.1:8080"
func encodeManifest(m manifest) ([]byte, error) {
	b := fmt.Appendf(nil, "daemonize-handoff %d\ngeneration %d\nstarted %d\nrestarts %d\nattempt-started %d\nnotify %s\nwatchdog-usec %d\n",
		manifestVersion, m.Generation, m.Started, m.Restarts, m.AttemptStarted, strconv.Quote(m.NotifySocket), m.WatchdogUSec)
	for _, e := range m.Files {
		b = append(b, "file"...)
		for _, f := range []string{e.Name, e.Kind, e.Network, e.Addr, e.Bound} {
			b = strconv.AppendQuote(append(b, ' '), f)
		}
		b = append(b, '\n')
	}
	return b, nil
}

// decodeManifest parses and checks a manifest from the parent process.
func decodeManifest(b []byte) (manifest, error) {
	var m manifest
	bad := func(format string, args ...any) (manifest, error) {
		return m, fmt.Errorf("daemonize: hand-off from parent process: "+format, args...)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		key, rest, _ := strings.Cut(line, " ")
		if i == 0 {
			if key != "daemonize-handoff" {
				return bad("not a daemonize hand-off")
			}
			if v, err := strconv.Atoi(rest); err != nil || v != manifestVersion {
				return bad("version %q, want %d: the old and new binaries use incompatible versions of daemonize", truncate(rest, 20), manifestVersion)
			}
			m.Version = manifestVersion
			continue
		}
		var err error
		switch key {
		case "generation":
			m.Generation, err = strconv.Atoi(rest)
		case "started":
			m.Started, err = strconv.ParseInt(rest, 10, 64)
		case "restarts":
			m.Restarts, err = strconv.Atoi(rest)
		case "attempt-started":
			m.AttemptStarted, err = strconv.ParseInt(rest, 10, 64)
		case "notify":
			m.NotifySocket, err = strconv.Unquote(rest)
		case "watchdog-usec":
			m.WatchdogUSec, err = strconv.ParseInt(rest, 10, 64)
		case "file":
			var f []string
			if f, err = unquoteFields(rest, 5); err == nil {
				m.Files = append(m.Files, entry{Name: f[0], Kind: f[1], Network: f[2], Addr: f[3], Bound: f[4]})
			}
		default:
			return bad("unknown line %q", truncate(line, 40))
		}
		if err != nil {
			return bad("line %q: %v", truncate(line, 40), err)
		}
	}
	if m.Version == 0 {
		return bad("empty")
	}
	if m.Generation < 2 || m.Restarts < 0 {
		return bad("bad generation %d or restart count %d", m.Generation, m.Restarts)
	}
	names := make(map[string]bool, len(m.Files))
	for _, e := range m.Files {
		switch {
		case e.Kind != kindListener && e.Kind != kindPacket && e.Kind != kindFile:
			return bad("unknown kind %q", e.Kind)
		case e.Name == "" || names[e.Name] || e.Name == handoffName || e.Name == pidLockName:
			return bad("bad or repeated name %q", e.Name)
		case e.Kind != kindFile && e.Network == "":
			return bad("%s %q has no network", e.Kind, e.Name)
		}
		names[e.Name] = true
	}
	return m, nil
}

// unquoteFields splits s into n Go-quoted strings separated by spaces.
func unquoteFields(s string, n int) ([]string, error) {
	fields := make([]string, 0, n)
	for len(fields) < n {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Unquote(q)
		fields = append(fields, v)
		s = s[len(q):]
		if len(fields) < n {
			if !strings.HasPrefix(s, " ") {
				return nil, errors.New("want a space between fields")
			}
			s = s[1:]
		}
	}
	if s != "" {
		return nil, errors.New("trailing text")
	}
	return fields, nil
}

// fileTable is the part of tableflip's Fds the library uses: files passed
// by name to the next generation.
type fileTable interface {
	File(name string) (*os.File, error)
	AddFile(name string, f *os.File) error
}

// fdSet keeps the sockets and files that pass to the next generation.
type fdSet struct {
	mu        sync.Mutex
	files     fileTable
	lc        *net.ListenConfig
	gen       int
	seq       int
	inherited []entry // passed by the parent, not yet claimed
	used      []entry // passed on at the next restart
	ready     bool    // Ready was called: no more listeners
	readyC    <-chan struct{}
	activated map[string]*os.File // sockets systemd passed, by entry name, until claimed
	listeners []*gatedListener    // to close at once when a new process takes over
}

// errAfterReady says a listener or file was asked for after Ready.
func errAfterReady(what string) error {
	return fmt.Errorf("daemonize: %s after Ready: create every listener and file before Ready, so that a restarted child finds it: %w", what, ErrAlreadyReady)
}

// listen returns the listener inherited for network and addr, or binds one.
func (s *fdSet) listen(network, addr string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil, errAfterReady("Listen " + network + " " + addr)
	}
	if f, e, err := s.claim(kindListener, network, addr); f != nil || err != nil {
		if err != nil {
			return nil, err
		}
		defer f.Close()
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("daemonize: inherited listener %s %s: %w", network, addr, err)
		}
		s.used = append(s.used, e)
		return s.gate(ln), nil
	}
	if err := checkAddr("Listen", network, addr); err != nil {
		return nil, err
	}
	ln, err := s.lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("daemonize: %w", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // the path outlives this generation
	}
	if err := s.add(kindListener, network, addr, ln.Addr().String(), ln); err != nil {
		ln.Close()
		return nil, err
	}
	return s.gate(ln), nil
}

// gate makes ln accept only once the process is ready. A new process that
// accepted connections before it was ready would drop them if it then
// failed and was stopped; until it is ready, they wait in the socket for
// the old process.
func (s *fdSet) gate(ln net.Listener) net.Listener {
	if s.readyC == nil {
		return ln
	}
	g := &gatedListener{Listener: ln, ready: s.readyC, closed: make(chan struct{})}
	s.listeners = append(s.listeners, g)
	return g
}

// closeListeners closes every listener from Listen: once a new process
// serves, this one must stop accepting at once, whatever its drain does
// next. The sockets live on in the new process; with keep, this process
// keeps them too, to take the service back if the new process dies.
func (s *fdSet) closeListeners(keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if keep && l.kept == nil {
			if fl, ok := l.Listener.(filer); ok {
				l.kept, _ = fl.File()
			}
		}
		l.byLibrary.Store(true)
		l.Close()
	}
}

// releaseKept closes the sockets kept for a take-back.
func (s *fdSet) releaseKept() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.kept != nil {
			l.kept.Close()
			l.kept = nil
		}
	}
}

// allServed reports whether every listener from Listen runs under Serve,
// and there is one at least.
func (s *fdSet) allServed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if !l.served.Load() {
			return false
		}
	}
	return len(s.listeners) > 0
}

// reopen returns a listener on the socket kept for l, accepting at once.
func (s *fdSet) reopen(l *gatedListener) (*gatedListener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.kept == nil {
		return nil, errors.New("no socket kept")
	}
	ln, err := net.FileListener(l.kept)
	l.kept.Close()
	l.kept = nil
	if err != nil {
		return nil, err
	}
	g := &gatedListener{Listener: ln, ready: s.readyC, closed: make(chan struct{})}
	g.served.Store(true)
	s.listeners = append(s.listeners, g)
	return g, nil
}

// closedByLibrary reports whether ln is a listener from Listen that the
// library closed.
func closedByLibrary(ln net.Listener) bool {
	g, ok := ln.(*gatedListener)
	return ok && g.byLibrary.Load()
}

type gatedListener struct {
	net.Listener
	ready     <-chan struct{}
	closed    chan struct{}
	once      sync.Once
	byLibrary atomic.Bool // closed by the library: a stop, not a failure
	served    atomic.Bool // Serve serves it, so the library can resume it
	kept      *os.File    // the socket, kept after a hand-over for a take-back
}

// Accept waits until the process is ready, then accepts.
func (l *gatedListener) Accept() (net.Conn, error) {
	select {
	case <-l.ready:
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	}
	return l.Listener.Accept()
}

func (l *gatedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// listenPacket returns the packet socket inherited for network and addr, or
// binds one.
func (s *fdSet) listenPacket(network, addr string) (net.PacketConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil, errAfterReady("ListenPacket " + network + " " + addr)
	}
	if f, e, err := s.claim(kindPacket, network, addr); f != nil || err != nil {
		if err != nil {
			return nil, err
		}
		defer f.Close()
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return nil, fmt.Errorf("daemonize: inherited packet socket %s %s: %w", network, addr, err)
		}
		s.used = append(s.used, e)
		return pc, nil
	}
	if err := checkAddr("ListenPacket", network, addr); err != nil {
		return nil, err
	}
	pc, err := s.lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("daemonize: %w", err)
	}
	if err := s.add(kindPacket, network, addr, pc.LocalAddr().String(), pc); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}

// file returns the file inherited under name, or opens one with open.
func (s *fdSet) file(name string, open func() (*os.File, error)) (*os.File, error) {
	if name == "" || strings.HasPrefix(name, "daemonize.") {
		return nil, fmt.Errorf("daemonize: File: name %q is empty or reserved; choose another", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil, errAfterReady("File " + name)
	}
	if f, e, err := s.claim(kindFile, "", name); f != nil || err != nil {
		if err == nil {
			s.used = append(s.used, e)
		}
		return f, err
	}
	f, err := open()
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("daemonize: File %s: open returned no file", name)
	}
	if err := s.add(kindFile, "", name, "", f); err != nil {
		return nil, err
	}
	return f, nil
}

// filer is what net's listeners and connections offer to duplicate their
// descriptor.
type filer interface {
	File() (*os.File, error)
}

// add registers a new socket or file to pass on at the next restart.
func (s *fdSet) add(kind, network, addr, bound string, x any) error {
	f, ok := x.(*os.File)
	if !ok {
		fx, ok := x.(filer)
		if !ok {
			return fmt.Errorf("daemonize: %s %s %s: %T cannot be passed to a child process", kind, network, addr, x)
		}
		var err error
		if f, err = fx.File(); err != nil {
			return fmt.Errorf("daemonize: %s %s %s: %w", kind, network, addr, err)
		}
		defer f.Close()
	}
	s.seq++
	e := entry{Name: fmt.Sprintf("g%d.%d", s.gen, s.seq), Kind: kind, Network: network, Addr: addr, Bound: bound}
	if err := s.files.AddFile(e.Name, f); err != nil {
		return fmt.Errorf("daemonize: %s %s %s: %w", kind, network, addr, err)
	}
	s.used = append(s.used, e)
	return nil
}

// claim takes the inherited entry that matches, first by the address string
// as asked for (or the name systemd gave a socket it passed), then by the
// address the socket is bound to (so that "localhost:8080" finds a socket
// asked for as "127.0.0.1:8080").
func (s *fdSet) claim(kind, network, addr string) (*os.File, entry, error) {
	i := slices.IndexFunc(s.inherited, func(e entry) bool {
		return e.Kind == kind && e.Network == network && e.Addr == addr
	})
	if i < 0 && kind != kindFile {
		i = slices.IndexFunc(s.inherited, func(e entry) bool {
			return e.Kind == kind && e.Network == network && sameAddr(network, addr, e.Bound)
		})
	}
	if i < 0 {
		return nil, entry{}, nil
	}
	e := s.inherited[i]
	s.inherited = slices.Delete(s.inherited, i, i+1)
	var f *os.File
	var err error
	if af := s.activated[e.Name]; af != nil {
		// A socket systemd passed: from now on it travels like ours.
		delete(s.activated, e.Name)
		if err = s.files.AddFile(e.Name, af); err == nil {
			f = af
		}
	} else if f, err = s.files.File(e.Name); err == nil && f == nil {
		err = errors.New("descriptor missing")
	}
	if err != nil {
		return nil, e, fmt.Errorf("daemonize: inherited %s %s %s: %w", kind, network, addr, err)
	}
	e.Addr = addr
	return f, e, nil
}

// sameAddr reports whether a socket bound to bound is what a program asking
// for addr on network would get.
func sameAddr(network, addr, bound string) bool {
	if strings.HasPrefix(network, "unix") {
		a, err1 := filepath.Abs(addr)
		b, err2 := filepath.Abs(bound)
		return err1 == nil && err2 == nil && a == b
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	var want, got net.Addr
	if strings.HasPrefix(network, "udp") {
		want, err = net.ResolveUDPAddr(network, addr)
		if err == nil {
			got, err = net.ResolveUDPAddr(network, bound)
		}
	} else {
		want, err = net.ResolveTCPAddr(network, addr)
		if err == nil {
			got, err = net.ResolveTCPAddr(network, bound)
		}
	}
	if err != nil {
		return false
	}
	wantIP, wantPort := ipPort(want)
	gotIP, gotPort := ipPort(got)
	if port != "0" && wantPort != gotPort {
		return false
	}
	if len(wantIP) == 0 || wantIP.IsUnspecified() {
		return len(gotIP) == 0 || gotIP.IsUnspecified()
	}
	return wantIP.Equal(gotIP)
}

func ipPort(a net.Addr) (net.IP, int) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP, a.Port
	case *net.UDPAddr:
		return a.IP, a.Port
	}
	return nil, -1
}

// checkAddr refuses an address that cannot be listened on, saying why.
func checkAddr(call, network, addr string) error {
	bad := func(why string) error {
		return fmt.Errorf("daemonize: %s(%q, %q): %s", call, network, addr, why)
	}
	stream := call == "Listen"
	switch network {
	case "tcp", "tcp4", "tcp6":
		if !stream {
			return bad("tcp is a stream network: use Listen")
		}
	case "udp", "udp4", "udp6":
		if stream {
			return bad("udp is a packet network: use ListenPacket")
		}
	case "unix", "unixpacket":
		if !stream {
			return bad(network + " is a stream network: use Listen")
		}
	case "unixgram":
		if stream {
			return bad("unixgram is a packet network: use ListenPacket")
		}
	default:
		return bad("unknown network; use tcp, tcp4, tcp6, unix or unixpacket with Listen, udp, udp4, udp6 or unixgram with ListenPacket")
	}
	if strings.HasPrefix(network, "unix") {
		if addr == "" {
			return bad("a unix socket needs a path")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return bad("want host:port, such as 127.0.0.1:8080 or :8080")
	}
	return nil
}

// unixPaths returns the socket paths this generation listens on, to remove
// when the service stops for good.
func (s *fdSet) unixPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var paths []string
	for _, e := range s.used {
		if strings.HasPrefix(e.Network, "unix") && !strings.HasPrefix(e.Bound, "@") && e.Bound != "" {
			paths = append(paths, e.Bound)
		}
	}
	return paths
}

// passOn returns the entries to hand to the next generation.
func (s *fdSet) passOn() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.used)
}

// markReady stops new listeners and returns the inherited entries nobody
// claimed (tableflip closes their descriptors).
func (s *fdSet) markReady() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = true
	left := s.inherited
	s.inherited = nil
	for _, f := range s.activated {
		f.Close()
	}
	s.activated = nil
	return left
}

// maxListenFDs bounds LISTEN_FDS, far above what a unit can pass.
const maxListenFDs = 4096

// parseListenEnv reads systemd's socket activation variables: how many
// descriptors from 3 up were passed to the process self, and their names.
// Variables meant for another process (LISTEN_PID differs) give 0.
func parseListenEnv(pid, fds, names string, self int) ([]string, error) {
	if pid == "" && fds == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pid); err != nil || p != self {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, fmt.Errorf("daemonize: LISTEN_FDS=%q: want the number of sockets passed, 0 to %d", truncate(fds, 20), maxListenFDs)
	}
	list := make([]string, n)
	if names != "" {
		list = strings.Split(names, ":")
		if len(list) != n {
			return nil, fmt.Errorf("daemonize: LISTEN_FDNAMES has %d names for LISTEN_FDS=%d sockets", len(list), n)
		}
	}
	for i, name := range list {
		if name == "" {
			list[i] = "unknown" // what sd_listen_fds_with_names says
		}
	}
	return list, nil
}

// handoff is the file a parent and its restarted child share: a control
// block the child writes (its pid, its last error, whether it declared
// itself ready) and the manifest the parent writes. Both processes hold the
// same open file, so it is passed once and lives across all generations.
//
// The child's "I am ready" and the parent's "I gave up waiting" are decided
// under a lock, so that they never both win: a parent never kills a child
// that became ready, and a child never serves for a parent that gave up.
type handoff struct {
	f *os.File
}

// Layout of the control block at the start of the hand-off file.
const (
	ctlState   = 0  // uint32: one of the hand-off states
	ctlPID     = 4  // uint32: the child's pid
	ctlStopped = 8  // uint32: 1 once the child, serving, began a clean stop
	ctlMsgLen  = 12 // uint32: length of the child's error message
	ctlMsg     = 16 // the child's error message
	ctlSize    = 4096
	maxMessage = ctlSize - ctlMsg
)

// Hand-off states.
const (
	stateWaiting = iota // the parent waits for the child
	stateReady          // the child declared itself ready
	stateAborted        // the parent gave up on the child
)

// begin resets the control block and writes the manifest, before a child starts.
func (h *handoff) begin(m manifest) error {
	b, err := encodeManifest(m)
	if err != nil {
		return err
	}
	buf := make([]byte, ctlSize+len(b))
	copy(buf[ctlSize:], b)
	if _, err := h.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return h.f.Truncate(int64(len(buf)))
}

// manifest reads what the parent wrote.
func (h *handoff) manifest() (manifest, error) {
	st, err := h.f.Stat()
	if err != nil {
		return manifest{}, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	if st.Size() < ctlSize {
		return manifest{}, errors.New("daemonize: hand-off file from parent process is truncated")
	}
	b := make([]byte, st.Size()-ctlSize)
	if _, err := h.f.ReadAt(b, ctlSize); err != nil {
		return manifest{}, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return decodeManifest(b)
}

// setChild records the child's pid (pid > 0) or its last error (msg != "").
func (h *handoff) setChild(pid int, msg string) {
	if pid > 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(pid))
		h.f.WriteAt(b[:], ctlPID)
	}
	if msg != "" {
		msg = truncate(msg, maxMessage-4)
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(msg)))
		h.f.WriteAt(append(b, msg...), ctlMsgLen)
	}
}

// markStopping records that the process serving the service stops on
// purpose, so that its parent, if still draining, does not take it for a
// crash.
func (h *handoff) markStopping() {
	h.f.WriteAt([]byte{1, 0, 0, 0}, ctlStopped)
}

// stopping reports whether the child marked a clean stop.
func (h *handoff) stopping() bool {
	var b [4]byte
	_, err := h.f.ReadAt(b[:], ctlStopped)
	return err == nil && b[0] == 1
}

// child returns the child's pid and last error message, as far as known.
func (h *handoff) child() (pid int, msg string) {
	b := make([]byte, ctlSize)
	if _, err := h.f.ReadAt(b, 0); err != nil {
		return 0, ""
	}
	return decodeControl(b)
}

// decodeControl parses a control block, tolerating any content.
func decodeControl(b []byte) (pid int, msg string) {
	if len(b) < ctlMsg {
		return 0, ""
	}
	pid = int(binary.LittleEndian.Uint32(b[ctlPID:]))
	n := int(binary.LittleEndian.Uint32(b[ctlMsgLen:]))
	if n > len(b)-ctlMsg {
		n = len(b) - ctlMsg
	}
	return pid, strings.ToValidUTF8(string(b[ctlMsg:ctlMsg+n]), "?")
}

// transition moves the hand-off from waiting to state to. It reports false,
// with the state that won, when the other side moved first.
func (h *handoff) transition(to uint32) (bool, uint32, error) {
	unlock, err := lockRegion(h.f, ctlState, 4)
	if err != nil {
		return false, 0, fmt.Errorf("daemonize: hand-off lock: %w", err)
	}
	defer unlock()
	var b [4]byte
	if _, err := h.f.ReadAt(b[:], ctlState); err != nil {
		return false, 0, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	if cur := binary.LittleEndian.Uint32(b[:]); cur != stateWaiting {
		return false, cur, nil
	}
	binary.LittleEndian.PutUint32(b[:], to)
	if _, err := h.f.WriteAt(b[:], ctlState); err != nil {
		return false, 0, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return true, to, nil
}
