package daemonize

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// gatedListener is the listener [Daemon.Listen] returns. Its Accept waits
// until the process is ready: a new process that accepted connections
// before it was ready would drop them if it then failed and was stopped;
// until it is ready, they wait in the socket for the old process. It also
// counts the connections of a server that [Daemon.Serve] drains, and can
// reopen in place on a socket kept for a take-back, so that a wrapper
// around it (TLS) serves again as it was.
type gatedListener struct {
	network   string
	addr      net.Addr
	addrKey   string // addr's network and address, for [fdSet.served]
	ready     <-chan struct{}
	byLibrary atomic.Bool                 // closed by the library: a stop or a hand-over, not a failure
	conns     atomic.Pointer[connTracker] // set by Serve

	mu      sync.Mutex
	inner   net.Listener  // for an inherited socket, nil until made from fd
	fd      int           // the socket's descriptor in the fdSet, which owns it
	made    chan struct{} // closed once inner is made, or could not be
	openErr error         // why inner could not be made
	closed  chan struct{} // closed by Close
	kept    bool          // the listener was closed for a hand-over that may be taken back
}

func newGatedListener(ln net.Listener, fd int, network string, ready <-chan struct{}) *gatedListener {
	l := newInheritedListener(fd, ln.Addr(), network, ready)
	l.inner = ln
	close(l.made)
	return l
}

// newInheritedListener returns a listener on the inherited socket fd,
// bound to addr, whose net.Listener makeInner makes later: a new process
// with a thousand sockets need not make a thousand listeners before it
// tells the old one it is ready. The connections that come meanwhile wait
// in the sockets.
func newInheritedListener(fd int, addr net.Addr, network string, ready <-chan struct{}) *gatedListener {
	return &gatedListener{network: network, addr: addr, addrKey: addrKey(addr), ready: ready, fd: fd, made: make(chan struct{}), closed: make(chan struct{})}
}

func (l *gatedListener) Addr() net.Addr { return l.addr }

// addrKey returns a's network and address as one string.
func addrKey(a net.Addr) string { return a.Network() + " " + a.String() }

// Accept waits until the process is ready and the listener is made, then
// accepts.
func (l *gatedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	inner, closed := l.inner, l.closed
	l.mu.Unlock()
	for _, wait := range []<-chan struct{}{l.ready, l.made} {
		select {
		case <-wait:
		case <-closed:
			return nil, &net.OpError{Op: "accept", Net: l.addr.Network(), Addr: l.addr, Err: net.ErrClosed}
		}
	}
	if inner == nil {
		l.mu.Lock()
		var err error
		inner, err = l.inner, l.openErr
		l.mu.Unlock()
		if inner == nil {
			return nil, &net.OpError{Op: "accept", Net: l.addr.Network(), Addr: l.addr, Err: err}
		}
	}
	c, err := inner.Accept()
	if err != nil {
		return nil, err
	}
	if t := l.conns.Load(); t != nil {
		return t.track(c), nil
	}
	return c, nil
}

// makeInner makes the net.Listener of an inherited socket, unless it was
// closed first, and returns why it could not. The caller closes l.made
// once it has noted the error.
func (l *gatedListener) makeInner() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		l.openErr = net.ErrClosed
		return nil
	default:
	}
	var err error
	if l.inner, err = listenerFromFd(l.fd); err != nil {
		l.openErr = fmt.Errorf("daemonize: inherited listener %s %s: %w", l.network, l.addr, err)
		return l.openErr
	}
	return nil
}

// listenerFromFd returns a listener on a duplicate of fd.
func listenerFromFd(fd int) (net.Listener, error) {
	f, err := fileFromFd(fd, "listener")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

func (l *gatedListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	if l.inner == nil {
		return nil
	}
	return l.inner.Close()
}

// closeForLibrary closes the listener for a stop or a hand-over; with keep
// it may reopen on its socket, for a take-back.
func (l *gatedListener) closeForLibrary(keep bool) {
	l.mu.Lock()
	l.kept = l.kept || keep
	l.mu.Unlock()
	l.byLibrary.Store(true)
	l.Close()
}

// releaseKept forgets the socket kept for a take-back, which the fdSet
// then closes.
func (l *gatedListener) releaseKept() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kept = false
}

// reopen makes the listener accept again on the socket kept for a
// take-back.
func (l *gatedListener) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.kept {
		return errors.New("no socket kept")
	}
	ln, err := listenerFromFd(l.fd)
	if err != nil {
		return err
	}
	l.kept = false
	l.inner, l.closed = ln, make(chan struct{})
	l.byLibrary.Store(false)
	return nil
}

// connTracker counts the connections a served listener accepted until they
// close, whatever becomes of them (hijacked ones included), and can close
// them all at the drain deadline.
type connTracker struct {
	open   atomic.Int64
	closed chan struct{} // a connection closed (buffered, 1)
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
}

func newConnTracker() *connTracker {
	return &connTracker{closed: make(chan struct{}, 1), conns: make(map[*trackedConn]struct{})}
}

func (t *connTracker) track(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, t: t}
	// Idle from now, not from the epoch, until net/http's ConnContext says
	// again: a drain between the two would close it at once.
	tc.idleAt.Store(time.Now().UnixNano())
	t.open.Add(1)
	t.mu.Lock()
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc
}

func (t *connTracker) untrack(tc *trackedConn) {
	t.mu.Lock()
	delete(t.conns, tc)
	t.mu.Unlock()
	t.open.Add(-1)
	select {
	case t.closed <- struct{}{}:
	default:
	}
}

// closeAll closes every connection still open.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedConn is a connection counted until it closes. It keeps what
// net/http looks for on a *net.TCPConn: CloseWrite, for its lingering close,
// and ReadFrom, for sendfile. Serve records on it what the drain needs to
// know of the connection.
type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once

	top    atomic.Pointer[net.Conn] // the connection net/http serves: this one, or a TLS connection around it
	state  atomic.Int32             // the last http.ConnState
	idleAt atomic.Int64             // when it last became idle, Unix nanoseconds
	readAt atomic.Int64             // when it last read bytes, Unix nanoseconds
	h2     atomic.Bool              // it carries HTTP/2
	busy   atomic.Int32             // requests in the handler

	// The frames of an HTTP/2 connection, for the drain's GOAWAY
	// (h2goaway.go): followed here in the clear, or over TLS by h2Conn.
	frames   atomic.Pointer[h2Frames]
	sniff    h2Sniff     // used by Read only, until decided
	decided  atomic.Bool // whether it is HTTP/2 in the clear is known
	cleartH2 atomic.Bool // it is: its frames pass here
}

// Read reads, and follows what an HTTP/2 client sends: its preface, then
// its frames, for the ACK of the drain's PING (h2goaway.go).
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.readAt.Store(time.Now().UnixNano())
	}
	got := p[:n]
	if n > 0 && !c.decided.Load() {
		got = c.sniff.look(got)
		if c.sniff.is {
			c.frames.Store(newH2Frames(c.Conn.Write))
			c.cleartH2.Store(true)
		}
		c.decided.Store(c.sniff.is || c.sniff.not)
	}
	if len(got) > 0 && c.cleartH2.Load() {
		c.frames.Load().received(got)
	}
	return n, err
}

// Write writes, following the frames of an HTTP/2 connection in the clear.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.cleartH2.Load() {
		return c.frames.Load().write(p)
	}
	return c.Conn.Write(p)
}

// goAway sends an HTTP/2 connection the PING and the first GOAWAY of the
// graceful two.
func (c *trackedConn) goAway() {
	if f := c.frames.Load(); f != nil {
		f.goAway()
	}
}

// holding reports whether an HTTP/2 connection keeps net/http's writes
// until the client acknowledges the drain's PING.
func (c *trackedConn) holding() bool {
	f := c.frames.Load()
	return f != nil && f.holding.Load()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.t.untrack(c) })
	return err
}

func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("daemonize: connection cannot half-close")
}

func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok && !c.cleartH2.Load() {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c}, r) // through Write, for HTTP/2's frames
}

func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("daemonize: connection has no descriptor")
}

// NetConn returns the connection the library wraps.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }
