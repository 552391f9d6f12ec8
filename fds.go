package daemonize

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// This file keeps the descriptors that pass from one generation to the
// next: the program's sockets and files, found again by address or name in
// the new process.

// reservedPrefix starts the names of the library's own files.
const reservedPrefix = "daemonize."

// The names under which the library passes its own files to a restarted
// child through tableflip; the program's sockets and files travel in bulk
// (passfd_unix.go).
const (
	handoffName    = reservedPrefix + "handoff"
	pidLockName    = reservedPrefix + "pidlock"
	stderrName     = reservedPrefix + "stderr"     // the real standard error, while the child's is captured
	supervisorName = reservedPrefix + "supervisor" // the socket to the supervisor of Options.Supervise
	filesName      = reservedPrefix + "files"      // the socket pair's end the program's descriptors wait in
)

// activatedPrefix starts the names of the sockets systemd passed (socket
// activation), which keep them across restarts: their files belong to the
// socket unit, and the library never removes them.
const activatedPrefix = "sd."

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

	fd int // the descriptor this generation holds to pass on; not in the manifest
}

// fileTable is where the library's own files are passed by name to the
// next generation: the flipper, or a table in memory in tests.
type fileTable interface {
	File(name string) (*os.File, error)
	AddFile(name string, f *os.File) error
}

// fdSet keeps the sockets and files that pass to the next generation, each
// with a descriptor of its own: the one passed on, and the one a listener
// is made from again to take the service back.
type fdSet struct {
	mu        sync.Mutex
	lc        *net.ListenConfig
	gen       int
	seq       int
	inherited []entry // passed by the parent (or systemd), claimed or not
	unclaimed *unclaimed
	used      []entry // passed on at the next restart
	released  bool    // the descriptors of used are closed
	ready     bool    // Ready was called: no more listeners
	readyC    <-chan struct{}
	listeners []*gatedListener // from Listen: closed at once when a new process takes over
	toMake    []*gatedListener // inherited, whose net.Listener is not made yet
	making    bool             // makeListeners runs
	makeErr   error            // why makeListeners could not make one
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
	if e, ok := s.claim(kindListener, network, addr); ok {
		g, err := s.inheritedListener(e, network)
		if err != nil {
			closeFds(e.fd)
			return nil, fmt.Errorf("daemonize: inherited listener %s %s: %w", network, addr, err)
		}
		s.used = append(s.used, e)
		s.listeners = append(s.listeners, g)
		return g, nil
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
	e, err := s.add(kindListener, network, addr, ln.Addr().String(), ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	g := newGatedListener(ln, e.fd, network, s.readyC)
	s.listeners = append(s.listeners, g)
	return g, nil
}

// inheritedListener returns the listener on an inherited socket. Where the
// manifest says its address, its net.Listener is made by makeListeners;
// otherwise now.
func (s *fdSet) inheritedListener(e entry, network string) (*gatedListener, error) {
	if a := boundAddr(network, e.Bound); a != nil {
		l := newInheritedListener(e.fd, a, network, s.readyC)
		s.toMake = append(s.toMake, l)
		if !s.making {
			s.making = true
			go s.makeListeners()
		}
		return l, nil
	}
	ln, err := listenerFromFd(e.fd)
	if err != nil {
		return nil, err
	}
	return newGatedListener(ln, e.fd, network, s.readyC), nil
}

// makeListeners makes the net.Listeners of inherited sockets one after the
// other, in the order of Listen, alongside the rest of the program's start:
// the first listener asked for is the first to accept once ready, and the
// program's goroutines do not wait behind a thousand others.
func (s *fdSet) makeListeners() {
	for {
		s.mu.Lock()
		if len(s.toMake) == 0 {
			s.making = false
			s.mu.Unlock()
			return
		}
		l := s.toMake[0]
		s.toMake = s.toMake[1:]
		s.mu.Unlock()
		if err := l.makeInner(); err != nil {
			s.mu.Lock()
			s.makeErr = cmp.Or(s.makeErr, err)
			s.mu.Unlock()
		}
		// Only now: Ready, once this listener is made, sees its error.
		close(l.made)
	}
}

// boundAddr returns the address a socket bound to bound has, or nil if
// bound does not say.
func boundAddr(network, bound string) net.Addr {
	switch network {
	case "tcp", "tcp4", "tcp6":
		if ap, err := netip.ParseAddrPort(bound); err == nil {
			return net.TCPAddrFromAddrPort(ap)
		}
	case "unix", "unixpacket":
		if bound != "" {
			return &net.UnixAddr{Name: bound, Net: network}
		}
	}
	return nil
}

// served finds the listener from Listen that ln is, or wraps: a TLS or
// proxy-protocol listener around it has its address.
func (s *fdSet) served(ln net.Listener) *gatedListener {
	if g, ok := ln.(*gatedListener); ok {
		return g
	}
	key := addrKey(ln.Addr())
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range slices.Backward(s.listeners) {
		if g.addrKey == key {
			return g
		}
	}
	return nil
}

// closeListeners closes every listener from Listen: once a new process
// serves, or a stop begins, this one must stop accepting at once, whatever
// its drain does next. With keep, the sockets stay open in this process, to
// take the service back if the new process dies; otherwise this process
// lets go of them.
func (s *fdSet) closeListeners(keep bool) {
	s.mu.Lock()
	for _, l := range s.listeners {
		l.closeForLibrary(keep)
	}
	s.mu.Unlock()
	if !keep {
		s.releaseKept()
	}
}

// releaseKept closes the sockets and files this process holds to pass on
// or to take the service back: once a stop begins or the new process is
// sure, the sockets must not outlive the processes that serve them.
func (s *fdSet) releaseKept() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.releaseKept()
	}
	if !s.released {
		s.released = true
		for _, e := range s.used {
			closeFds(e.fd)
		}
	}
}

// allServed reports whether every listener from Listen runs under Serve,
// there is one at least, and no packet socket was asked for: the library
// can then undo a drain.
func (s *fdSet) allServed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.conns.Load() == nil {
			return false
		}
	}
	for _, e := range s.used {
		if e.Kind == kindPacket {
			return false
		}
	}
	return len(s.listeners) > 0
}

// listenPacket returns the packet socket inherited for network and addr, or
// binds one.
func (s *fdSet) listenPacket(network, addr string) (net.PacketConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil, errAfterReady("ListenPacket " + network + " " + addr)
	}
	if e, ok := s.claim(kindPacket, network, addr); ok {
		f, err := fileFromFd(e.fd, e.Name)
		if err == nil {
			defer f.Close()
			var pc net.PacketConn
			if pc, err = net.FilePacketConn(f); err == nil {
				s.used = append(s.used, e)
				return pc, nil
			}
		}
		closeFds(e.fd)
		return nil, fmt.Errorf("daemonize: inherited packet socket %s %s: %w", network, addr, err)
	}
	if err := checkAddr("ListenPacket", network, addr); err != nil {
		return nil, err
	}
	pc, err := s.lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("daemonize: %w", err)
	}
	if _, err := s.add(kindPacket, network, addr, pc.LocalAddr().String(), pc); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}

// file returns the file inherited under name, or opens one with open.
func (s *fdSet) file(name string, open func() (*os.File, error)) (*os.File, error) {
	if name == "" || strings.HasPrefix(name, reservedPrefix) {
		return nil, fmt.Errorf("daemonize: File: name %q is empty or reserved; choose another", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil, errAfterReady("File " + name)
	}
	if e, ok := s.claim(kindFile, "", name); ok {
		f, err := fileFromFd(e.fd, name)
		if err != nil {
			closeFds(e.fd)
			return nil, fmt.Errorf("daemonize: inherited file %s: %w", name, err)
		}
		s.used = append(s.used, e)
		return f, nil
	}
	f, err := open()
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("daemonize: File %s: open returned no file", name)
	}
	if _, err := s.add(kindFile, "", name, "", f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// add registers a new socket or file to pass on at the next restart, with
// a duplicate of its descriptor.
func (s *fdSet) add(kind, network, addr, bound string, x any) (entry, error) {
	c, ok := x.(syscall.Conn)
	if !ok {
		return entry{}, fmt.Errorf("daemonize: %s %s %s: %T cannot be passed to a child process", kind, network, addr, x)
	}
	fd, err := dupConn(c)
	if err != nil {
		return entry{}, fmt.Errorf("daemonize: %s %s %s: %w", kind, network, addr, err)
	}
	s.seq++
	e := entry{Name: fmt.Sprintf("g%d.%d", s.gen, s.seq), Kind: kind, Network: network, Addr: addr, Bound: bound, fd: fd}
	s.used = append(s.used, e)
	return e, nil
}

// claim takes the inherited entry that matches, first by the address string
// as asked for (or the name systemd gave a socket it passed), then by the
// address the socket is bound to (so that "localhost:8080" finds a socket
// asked for as "127.0.0.1:8080"). The entry's descriptor is the caller's.
func (s *fdSet) claim(kind, network, addr string) (entry, bool) {
	if s.unclaimed == nil {
		s.unclaimed = newUnclaimed(s.inherited)
		// Most programs claim what they passed on: grown by doubling,
		// these cost a thousand listeners as much fresh memory again.
		s.used = slices.Grow(s.used, len(s.inherited))
		s.listeners = slices.Grow(s.listeners, len(s.inherited))
	}
	i := s.unclaimed.take(kind, network, addr)
	if i < 0 {
		return entry{}, false
	}
	e := s.inherited[i]
	e.Addr = addr
	return e, true
}

// unclaimed indexes the inherited entries nobody claimed yet, so that a
// service with a thousand listeners finds each in constant time: a scan of
// the list per Listen made the hand-off quadratic in the number of
// listeners.
type unclaimed struct {
	entries []entry
	taken   []bool
	byAddr  map[entryKey][]int // indexes into entries, in the parent's order
	left    int
}

// entryKey is what an exact match compares.
type entryKey struct{ kind, network, addr string }

func newUnclaimed(entries []entry) *unclaimed {
	u := &unclaimed{entries: entries, taken: make([]bool, len(entries)), byAddr: make(map[entryKey][]int, len(entries)), left: len(entries)}
	for i, e := range entries {
		k := entryKey{e.Kind, e.Network, e.Addr}
		u.byAddr[k] = append(u.byAddr[k], i)
	}
	return u
}

// take marks the first unclaimed entry that matches as claimed and returns
// its index, or -1: first by the address as asked for, then, for sockets,
// by the address they are bound to.
func (u *unclaimed) take(kind, network, addr string) int {
	if u.left == 0 {
		return -1
	}
	k := entryKey{kind, network, addr}
	q := u.byAddr[k]
	for len(q) > 0 && u.taken[q[0]] {
		q = q[1:]
	}
	i := -1
	if len(q) > 0 {
		i, q = q[0], q[1:]
	}
	if len(q) == 0 {
		delete(u.byAddr, k)
	} else {
		u.byAddr[k] = q
	}
	if i < 0 && kind != kindFile {
		// Rare (the program asks for the address in another spelling),
		// and sameAddr resolves names: a scan is fine here.
		for j, e := range u.entries {
			if !u.taken[j] && e.Kind == kind && e.Network == network && sameAddr(network, addr, e.Bound) {
				i = j
				break
			}
		}
	}
	if i >= 0 {
		u.taken[i] = true
		u.left--
	}
	return i
}

// rest returns the entries nobody claimed, in the parent's order.
func (u *unclaimed) rest() []entry {
	var left []entry
	for i, e := range u.entries {
		if !u.taken[i] {
			left = append(left, e)
		}
	}
	return left
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
		if e.ownPath() {
			paths = append(paths, e.Bound)
		}
	}
	return paths
}

// ownPath reports whether e is a unix socket whose file the library
// created, and removes once nobody listens on it: not an abstract one, nor
// one systemd created.
func (e entry) ownPath() bool {
	return e.Kind != kindFile && strings.HasPrefix(e.Network, "unix") && e.Bound != "" && !strings.HasPrefix(e.Bound, "@") && !strings.HasPrefix(e.Name, activatedPrefix)
}

// passOn returns the entries to hand to the next generation, and the
// receiving end of a socket pair that holds their descriptors (nil if
// there are none). The set's lock keeps them open meanwhile.
func (s *fdSet) passOn() ([]entry, *os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil, nil, errors.New("daemonize: this process has let go of its sockets")
	}
	if len(s.used) == 0 {
		return nil, nil, nil
	}
	fds := make([]int, len(s.used))
	for i, e := range s.used {
		fds[i] = e.fd
	}
	sent, err := sendFds(fds)
	if err != nil {
		return nil, nil, err
	}
	return slices.Clone(s.used), sent, nil
}

// markReady stops new listeners, closes the inherited sockets and files
// nobody claimed, and returns their entries; or, if an inherited listener
// made so far could not be, the error, so that the old process serves on.
func (s *fdSet) markReady() ([]entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.makeErr != nil {
		return nil, s.makeErr
	}
	s.ready = true
	left := s.inherited
	if s.unclaimed != nil {
		left = s.unclaimed.rest()
	}
	s.inherited, s.unclaimed = nil, nil
	for _, e := range left {
		closeFds(e.fd)
	}
	return left, nil
}
