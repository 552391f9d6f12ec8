package daemonize

import (
	"bytes"
	"encoding/binary"
	"sync"
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
// The library can write a frame only where it sees them: on a connection it
// serves cleartext (h2c), or whose TLS it terminates itself (ServeTLS). It
// follows the frames net/http writes, to put its own between two.

// h2Preface starts every HTTP/2 connection, from the client.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// goAwayFirst is the first GOAWAY: last stream id 2^31-1, NO_ERROR.
var goAwayFirst = []byte{0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// h2Frames follows the HTTP/2 frames a connection writes, and puts the
// first GOAWAY between two of them when asked.
type h2Frames struct {
	mu      sync.Mutex
	seen    int     // bytes of the client's preface read so far, while deciding
	is      bool    // the client spoke HTTP/2
	not     bool    // the client did not
	head    [9]byte // the header of the frame being written
	nhead   int     // of which this many bytes are written
	left    int     // bytes of the frame's payload still to write
	written int     // frames written whole
	asked   bool    // the GOAWAY was asked for
	want    bool    // it waits for the next frame boundary
	sent    bool
}

// read watches the first bytes the client sends, for the preface.
func (h *h2Frames) read(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.is || h.not {
		return
	}
	n := min(len(p), len(h2Preface)-h.seen)
	if !bytes.Equal(p[:n], h2Preface[h.seen:h.seen+n]) {
		h.not = true
		return
	}
	h.seen += n
	h.is = h.seen == len(h2Preface)
}

// decided reports whether the connection is known to carry HTTP/2 or not.
func (h *h2Frames) decided() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.is || h.not
}

// write writes p, net/http's frames, with write, putting the first GOAWAY
// at the first frame boundary once it is wanted.
func (h *h2Frames) write(p []byte, write func([]byte) (int, error)) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.is {
		return write(p)
	}
	var out []byte
	for i := 0; i < len(p); {
		if h.nhead == 0 && h.left == 0 && h.want && h.written > 0 {
			out = append(out, goAwayFirst...)
			h.want, h.sent = false, true
		}
		if h.left == 0 {
			k := copy(h.head[h.nhead:], p[i:])
			out = append(out, p[i:i+k]...)
			i += k
			h.nhead += k
			if h.nhead < len(h.head) {
				break
			}
			h.nhead = 0
			h.left = int(binary.BigEndian.Uint32(append([]byte{0}, h.head[:3]...)))
			if h.left == 0 {
				h.written++
			}
			continue
		}
		k := min(h.left, len(p)-i)
		out = append(out, p[i:i+k]...)
		i += k
		if h.left -= k; h.left == 0 {
			h.written++
		}
	}
	if out == nil {
		return write(p)
	}
	n, err := write(out)
	// What the caller asked to write was written if all of out was.
	if n == len(out) {
		n = len(p)
	} else {
		n = min(n, len(p))
	}
	return n, err
}

// goAway sends the first GOAWAY with write, at once if the connection is
// between two frames, else as soon as the frame being written is whole. It
// reports whether it was asked for the first time. The write happens on its
// own goroutine: a client that reads nothing blocks it, not the drain.
func (h *h2Frames) goAway(write func([]byte) (int, error)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.is || h.asked {
		return false
	}
	h.asked = true
	go func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.nhead == 0 && h.left == 0 && h.written > 0 {
			h.sent = true
			write(goAwayFirst)
			return
		}
		h.want = true
	}()
	return true
}
