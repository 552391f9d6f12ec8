package daemonize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// frame makes an HTTP/2 frame.
func frame(typ, flags byte, payload []byte) []byte {
	f := make([]byte, 9, 9+len(payload))
	binary.BigEndian.PutUint32(f, uint32(len(payload))<<8|uint32(typ))
	f[4] = flags
	return append(f, payload...)
}

// frames makes n HTTP/2 frames of random lengths, none a PING, some of them
// header blocks in several frames (HEADERS, then CONTINUATION, the last
// with END_HEADERS).
func frames(r *rand.Rand, n int) [][]byte {
	var fs [][]byte
	for len(fs) < n {
		if r.IntN(4) > 0 {
			typ := []byte{0x0, 0x2, 0x3, 0x4, 0x8}[r.IntN(5)]
			fs = append(fs, frame(typ, byte(r.IntN(256)), make([]byte, r.IntN(40))))
			continue
		}
		typ := byte(frameHeaders)
		for k := r.IntN(3); k >= 0; k-- {
			flags := byte(r.IntN(256)) &^ flagEndHeaders
			if k == 0 {
				flags |= flagEndHeaders
			}
			fs = append(fs, frame(typ, flags, make([]byte, r.IntN(40))))
			typ = frameContinuation
		}
	}
	return fs
}

// boundaries returns the offsets in the joined frames where another frame
// may go: after a frame, outside a header block.
func boundaries(fs [][]byte) map[int]bool {
	at := make(map[int]bool)
	off := 0
	for _, f := range fs {
		off += len(f)
		if f[3] != frameHeaders && f[3] != frameContinuation || f[4]&flagEndHeaders != 0 {
			at[off] = true
		}
	}
	return at
}

// sink is a connection's writing end, as goAway's goroutine and the hold's
// timer may use it too.
type sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *sink) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *sink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// TestH2FramesPingThenGoAway writes random frames in random pieces, the
// drain asking for the GOAWAY at a random byte: the PING goes at the next
// frame boundary outside a header block, nothing follows it until the ACK,
// then the GOAWAY comes first and the frames, unchanged.
func TestH2FramesPingThenGoAway(t *testing.T) {
	pingGoAway := append(bytes.Clone(pingFrame), goAwayFirst...)
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, seed))
		var out sink
		h := newH2Frames(out.write)
		fs := frames(r, 20)
		stream := bytes.Join(fs, nil)
		ask := r.IntN(len(stream)) // when the drain asks for the GOAWAY
		pinged := -1               // the output's length once the PING is out
		for i := 0; i < len(stream); {
			if i == ask {
				h.goAway()
				waitGoAway(t, h)
			}
			end := min(i+1+r.IntN(30), len(stream))
			if ask > i && ask < end {
				end = ask
			}
			if k, err := h.write(stream[i:end]); err != nil || k != end-i {
				t.Fatalf("seed %d: write %d bytes: %d, %v", seed, end-i, k, err)
			}
			i = end
			if got := out.bytes(); pinged < 0 && bytes.HasSuffix(got, pingFrame) {
				pinged = len(got)
			}
		}
		if pinged < 0 {
			if !h.want {
				t.Fatalf("seed %d: no PING written, none pending", seed)
			}
			continue // asked during the last frame: it goes with the next write
		}
		if got := out.bytes(); len(got) != pinged {
			t.Fatalf("seed %d: %d bytes written after the PING, before its ACK", seed, len(got)-pinged)
		}
		h.release()
		got := out.bytes()
		at := bytes.Index(got, pingGoAway)
		if at < 0 || at+len(pingFrame) != pinged {
			t.Fatalf("seed %d: the GOAWAY does not follow the PING", seed)
		}
		if !bytes.Equal(append(got[:at:at], got[at+len(pingGoAway):]...), stream) {
			t.Fatalf("seed %d: frames changed around the PING and GOAWAY", seed)
		}
		if !boundaries(fs)[at] {
			t.Errorf("seed %d: PING at byte %d, not between two frames outside a header block", seed, at)
		}
	}
}

// waitGoAway waits for goAway's goroutine to send the PING or leave it for
// the next frame boundary.
func waitGoAway(t *testing.T, h *h2Frames) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		done := h.holding.Load() || !h.sentAt.IsZero() || h.want
		h.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the PING was neither sent nor left pending")
		}
		runtime.Gosched()
	}
}

// TestH2FramesReadAck reads a client's preface and frames in random
// pieces: only the ACK of the drain's own PING is found.
func TestH2FramesReadAck(t *testing.T) {
	other := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, seed))
		fs := frames(r, 10)
		fs = append(fs, frame(frameTypePing, 0, pingData[:]), frame(frameTypePing, flagAck, other[:]))
		r.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		stream := append(bytes.Clone(h2Preface), bytes.Join(fs, nil)...)
		ack := len(stream)
		stream = append(stream, frame(frameTypePing, flagAck, pingData[:])...)
		stream = append(stream, bytes.Join(frames(r, 3), nil)...)
		var sniff h2Sniff
		h := newH2Frames(nil)
		for i := 0; i < len(stream); {
			end := min(i+1+r.IntN(30), len(stream))
			found := h.read(sniff.look(stream[i:end]))
			if want := ack+len(pingFrame) > i && ack+len(pingFrame) <= end; found != want {
				t.Fatalf("seed %d: bytes %d to %d: found the ACK %v, want %v", seed, i, end, found, want)
			}
			i = end
		}
		if !sniff.is {
			t.Fatalf("seed %d: preface not recognised", seed)
		}
	}
}

// TestH2FramesHoldLimit: a client that does not answer the PING gets the
// GOAWAY and what was kept after holdLimit.
func TestH2FramesHoldLimit(t *testing.T) {
	var out sink
	h := newH2Frames(out.write)
	settings := frame(0x4, 0, nil)
	h.write(settings)
	h.goAway()
	waitGoAway(t, h)
	data := frame(0x0, 1, []byte("hello"))
	h.write(data)
	want := bytes.Join([][]byte{settings, pingFrame, goAwayFirst, data}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(out.bytes(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("wrote %q, want %q", out.bytes(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestH2FramesNotHTTP2(t *testing.T) {
	var s h2Sniff
	if rest := s.look([]byte("GET / HTTP/1.1\r\n")); !s.not || s.is || rest != nil {
		t.Errorf("an HTTP/1 request taken for HTTP/2: not %v, is %v", s.not, s.is)
	}
}

// TestH2FramesShortWrite: a write that is cut short moves the cursor by
// what went out only, so that net/http's retry of the rest (as with
// WriteByteTimeout) leaves the PING at a real boundary; a PING cut short
// breaks the connection for good.
func TestH2FramesShortWrite(t *testing.T) {
	var out sink
	short := 0 // bytes the next write lets through, when > 0
	errShort := errors.New("short write")
	h := newH2Frames(func(p []byte) (int, error) {
		if short > 0 && short < len(p) {
			n, _ := out.write(p[:short])
			short = 0
			return n, errShort
		}
		return out.write(p)
	})
	one, two := frame(0x0, 0, make([]byte, 20)), frame(0x0, 0, make([]byte, 20))
	h.write(frame(0x4, 0, nil))
	short = 5
	if n, err := h.write(one); n != 5 || err != errShort {
		t.Fatalf("short write: %d, %v", n, err)
	}
	h.write(one[5:]) // net/http's retry
	h.goAway()
	waitGoAway(t, h)
	if !h.holding.Load() {
		t.Fatal("the PING did not go out at the boundary after the retried frame")
	}
	h.release()
	h.write(two)
	want := bytes.Join([][]byte{frame(0x4, 0, nil), one, pingFrame, goAwayFirst, two}, nil)
	if got := out.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}

	var out2 sink
	h = newH2Frames(func(p []byte) (int, error) {
		if bytes.HasSuffix(p, pingFrame) {
			n, _ := out2.write(p[:len(p)-3])
			return n, errShort
		}
		return out2.write(p)
	})
	h.write(frame(0x4, 0, nil))
	h.write(one[:10])
	h.goAway()
	waitGoAway(t, h)
	if _, err := h.write(one[10:]); err != errShort {
		t.Fatalf("write with the PING cut short: %v", err)
	}
	if n, err := h.write(two); n != 0 || err != errShort {
		t.Errorf("write after the PING was cut short: %d, %v; want the connection broken", n, err)
	}
}

// TestH2FramesSettled: net/http's GOAWAY waits goAwayDelay after the first
// went out, or after holdLimit and goAwayDelay for one that never does.
func TestH2FramesSettled(t *testing.T) {
	var out sink
	h := newH2Frames(out.write)
	now := time.Now()
	if h.settled(now) {
		t.Error("settled before the GOAWAY was asked for")
	}
	h.write(frame(0x4, 0, nil))
	h.write(frame(0x1, 0, nil)) // a header block begins: no PING yet
	h.goAway()
	waitGoAway(t, h)
	if h.holding.Load() {
		t.Fatal("the PING went inside a header block")
	}
	if at := time.Now(); h.settled(at) || !h.settled(at.Add(holdLimit+goAwayDelay)) {
		t.Error("a GOAWAY that is not coming does not settle after holdLimit+goAwayDelay")
	}
	h.write(frame(frameContinuation, flagEndHeaders, nil))
	h.release()
	at := time.Now()
	if h.settled(at) || !h.settled(at.Add(goAwayDelay)) {
		t.Error("a GOAWAY sent does not settle goAwayDelay later")
	}
}
