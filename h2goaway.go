package daemonize

import (
	"sync"
	"sync/atomic"
	"time"
)

// This file gives an HTTP/2 connection the graceful GOAWAY of RFC 9113,
// section 6.8, in two steps. net/http sends one GOAWAY, whose last stream
// id is the highest it has read: the streams a client opened meanwhile,
// still on their way, are refused, and a client that does not retry them
// (h2load, among others) counts them lost. So the drain first sends a
// GOAWAY of its own that names the highest stream id there can be: the
// client opens no new stream on the connection and refuses none; a moment
// later net/http's GOAWAY names the real last stream, which is by then the
// last one the client opened.
//
// A client also loses the requests it queued, on a stream that ended,
// just before it read the GOAWAY: it will not send them once it has. So
// the first GOAWAY is preceded by a PING, and nothing else is written
// until the client's ACK comes back (or holdLimit passes): by then the
// client has acted on every frame before the PING, and the GOAWAY reaches
// it alone, ahead of any response that would make it queue a request.
//
// The library follows the frames both ways, to put its own between two of
// net/http's and to see the ACK: in the clear (h2c) on the connection it
// accepted, and over TLS on the one net/http's HTTP/2 server is handed
// (h2tls.go).

// h2Preface starts every HTTP/2 connection, from the client.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// goAwayFirst is the first GOAWAY: last stream id 2^31-1, NO_ERROR.
var goAwayFirst = []byte{0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// pingData is the payload of the drain's PING, which the client echoes.
var pingData = [8]byte{'d', 'a', 'e', 'm', 'o', 'n', 'i', 'z'}

// pingFrame is the drain's PING.
var pingFrame = append([]byte{0, 0, 8, 0x6, 0, 0, 0, 0, 0}, pingData[:]...)

// How long, and how many bytes, the writes wait for the PING's ACK at most.
const (
	holdLimit = 100 * time.Millisecond
	holdBytes = 1 << 20
)

// frameCursor follows the frame boundaries of one direction of a connection.
type frameCursor struct {
	head  [9]byte // the header of the current frame
	nhead int     // of which this many bytes have passed
	left  int     // bytes of the frame's payload still to pass
	whole int     // frames passed whole
	block bool    // inside a header block, which no other frame may interrupt (RFC 9113, 6.10)
}

// Frame types and flags the cursor and the drain look at.
const (
	frameHeaders      = 0x1
	framePushPromise  = 0x5
	frameTypePing     = 0x6
	frameContinuation = 0x9
	flagAck           = 0x1
	flagEndHeaders    = 0x4
)

// between reports whether a frame may go where the cursor is: between two
// frames, after the first, outside a header block.
func (c *frameCursor) between() bool {
	return c.nhead == 0 && c.left == 0 && c.whole > 0 && !c.block
}

// advance passes the first bytes of p, up to the end of a frame's header or
// of its payload; it returns how many, and whether a header ended there.
func (c *frameCursor) advance(p []byte) (n int, head bool) {
	if c.left > 0 {
		n = min(c.left, len(p))
		if c.left -= n; c.left == 0 {
			c.whole++
		}
		return n, false
	}
	n = copy(c.head[c.nhead:], p)
	if c.nhead += n; c.nhead < len(c.head) {
		return n, false
	}
	c.nhead = 0
	switch c.head[3] {
	case frameHeaders, framePushPromise, frameContinuation:
		c.block = c.head[4]&flagEndHeaders == 0
	}
	if c.left = int(c.head[0])<<16 | int(c.head[1])<<8 | int(c.head[2]); c.left == 0 {
		c.whole++
	}
	return n, true
}

// pass passes all of p.
func (c *frameCursor) pass(p []byte) {
	for len(p) > 0 {
		n, _ := c.advance(p)
		p = p[n:]
	}
}

// h2Sniff tells an HTTP/2 client by its preface.
type h2Sniff struct {
	seen    int  // bytes of the preface read so far
	is, not bool // the client spoke HTTP/2, or did not
}

// look looks at what the client sent for the preface, and returns what
// follows it.
func (s *h2Sniff) look(p []byte) []byte {
	if s.is || s.not {
		return p
	}
	n := min(len(p), len(h2Preface)-s.seen)
	if string(p[:n]) != string(h2Preface[s.seen:s.seen+n]) {
		s.not = true
		return nil
	}
	s.seen += n
	s.is = s.seen == len(h2Preface)
	return p[n:]
}

// h2Frames follows an HTTP/2 connection's frames, and puts the PING and the
// first GOAWAY between two of them when asked.
type h2Frames struct {
	w func([]byte) (int, error) // writes to the connection

	// The reading side, used only by the goroutine that reads.
	in    frameCursor
	ack   bool    // the frame being read is a PING ACK
	nack  int     // of whose payload this many bytes are in acked
	acked [8]byte // the payload

	// holding: writes are kept until the ACK; set under mu, read by the
	// drain, which must not close the connection meanwhile.
	holding atomic.Bool

	mu     sync.Mutex // the writing side
	out    frameCursor
	asked  time.Time // when the GOAWAY was asked for
	want   bool      // the PING waits for the next frame boundary
	held   []byte    // what net/http wrote after the PING
	timer  *time.Timer
	sentAt time.Time // when the GOAWAY went out
	err    error     // of a write the library made: the connection is broken
}

func newH2Frames(w func([]byte) (int, error)) *h2Frames { return &h2Frames{w: w} }

// received follows the client's frames in p; the ACK of the drain's PING
// among them releases what was kept.
func (h *h2Frames) received(p []byte) {
	if h.read(p) {
		go h.release()
	}
}

// read follows the client's frames in p, and reports whether the ACK of the
// drain's PING ends among them.
func (h *h2Frames) read(p []byte) bool {
	found := false
	for len(p) > 0 {
		payload := h.in.left > 0
		n, head := h.in.advance(p)
		switch {
		case head:
			f := h.in.head
			h.ack = f[3] == frameTypePing && f[4]&flagAck != 0 && h.in.left == len(h.acked)
			h.nack = 0
		case payload && h.ack:
			h.nack += copy(h.acked[h.nack:], p[:n])
			found = found || h.nack == len(h.acked) && h.acked == pingData
		}
		p = p[n:]
	}
	return found
}

// write writes p, net/http's frames: at once, or, after the PING, once the
// ACK has come. Once asked, the PING goes at the first frame boundary.
func (h *h2Frames) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.err != nil:
		return 0, h.err
	case h.holding.Load():
		h.held = append(h.held, p...)
		if len(h.held) >= holdBytes {
			if err := h.releaseLocked(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	case !h.sentAt.IsZero():
		return h.w(p)
	case !h.want:
		n, err := h.w(p)
		h.out.pass(p[:n])
		return n, err
	}
	c, i := h.out, 0
	for i < len(p) && !c.between() {
		n, _ := c.advance(p[i:])
		i += n
	}
	if !c.between() {
		n, err := h.w(p)
		h.out.pass(p[:n])
		return n, err
	}
	n, err := h.w(append(p[:i:i], pingFrame...))
	if err != nil {
		h.out.pass(p[:min(n, i)])
		if n > i {
			h.err = err // part of the PING went out
		}
		return min(n, i), err
	}
	h.out = c
	h.holdLocked(p[i:])
	return len(p), nil
}

// holdLocked starts keeping what net/http writes, after the PING went out.
func (h *h2Frames) holdLocked(rest []byte) {
	h.want = false
	h.held = append(h.held[:0], rest...)
	h.holding.Store(true)
	h.timer = time.AfterFunc(holdLimit, h.release)
}

// release writes the first GOAWAY, then what was kept since the PING.
func (h *h2Frames) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseLocked()
}

// releaseLocked releases what was kept; an error breaks the connection,
// and net/http meets it at its next write.
func (h *h2Frames) releaseLocked() error {
	if !h.holding.Load() {
		return nil
	}
	h.timer.Stop()
	h.sentAt = time.Now()
	out := append(append([]byte{}, goAwayFirst...), h.held...)
	h.held = nil
	_, err := h.w(out)
	h.holding.Store(false) // only now may the drain close the connection
	if err != nil {
		h.err = err
	}
	return err
}

// goAway starts the PING and first GOAWAY: at once if the connection is
// between two frames, else as soon as it is. It reports whether it was
// asked for the first time. The write happens on its own goroutine: a
// client that reads nothing blocks it, not the drain.
func (h *h2Frames) goAway() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.asked.IsZero() {
		return false
	}
	h.asked = time.Now()
	go func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.err != nil {
			return
		}
		if !h.out.between() {
			h.want = true
			return
		}
		if n, err := h.w(pingFrame); err != nil {
			if n > 0 {
				h.err = err
			}
			return
		}
		h.holdLocked(nil)
	}()
	return true
}

// settled reports whether the first GOAWAY went out goAwayDelay ago or
// more, or was asked for so long ago that it is not coming: the time a
// client has to stop opening streams before net/http's GOAWAY.
func (h *h2Frames) settled(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.sentAt.IsZero() {
		return now.Sub(h.sentAt) >= goAwayDelay
	}
	return !h.asked.IsZero() && now.Sub(h.asked) >= holdLimit+goAwayDelay
}

// sentGoAway reports whether the first GOAWAY went out.
func (h *h2Frames) sentGoAway() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.sentAt.IsZero()
}
