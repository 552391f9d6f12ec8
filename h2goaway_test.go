package daemonize

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// frames makes n HTTP/2 frames of random lengths.
func frames(r *rand.Rand, n int) [][]byte {
	var fs [][]byte
	for range n {
		f := make([]byte, 9+r.IntN(40))
		binary.BigEndian.PutUint32(f, uint32(len(f)-9)<<8|uint32(r.IntN(10)))
		fs = append(fs, f)
	}
	return fs
}

func TestH2FramesGoAwayAtABoundary(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, seed))
		var h h2Frames
		h.read(h2Preface[:10])
		h.read(h2Preface[10:])
		if !h.is {
			t.Fatal("preface not recognised")
		}
		fs := frames(r, 20)
		stream := bytes.Join(fs, nil)
		var out bytes.Buffer
		write := func(p []byte) (int, error) { return out.Write(p) }
		ask := r.IntN(len(stream)) // when the drain asks for the GOAWAY
		for i := 0; i < len(stream); {
			n := 1 + r.IntN(30)
			if i <= ask && ask < i+n {
				if _, err := h.write(stream[i:ask], write); err != nil {
					t.Fatal(err)
				}
				h.goAway(write)
				waitGoAway(t, &h)
				i, ask = ask, -1
				continue
			}
			end := min(i+n, len(stream))
			if k, err := h.write(stream[i:end], write); err != nil || k != end-i {
				t.Fatalf("seed %d: write %d bytes: %d, %v", seed, end-i, k, err)
			}
			i = end
		}
		// The output is the frames with one GOAWAY between two of them,
		// after the first.
		got := out.Bytes()
		at := bytes.Index(got, goAwayFirst)
		if at < 0 {
			if !h.want {
				t.Fatalf("seed %d: no GOAWAY written, none pending", seed)
			}
			continue // asked during the last frame: it goes with the next write
		}
		if !bytes.Equal(append(append([]byte{}, got[:at]...), got[at+len(goAwayFirst):]...), stream) {
			t.Fatalf("seed %d: frames changed around the GOAWAY", seed)
		}
		off, boundary := 0, false
		for j, f := range fs {
			if off == at && j > 0 {
				boundary = true
			}
			off += len(f)
		}
		if !boundary {
			t.Errorf("seed %d: GOAWAY at byte %d, not between two frames", seed, at)
		}
	}
}

// waitGoAway waits for goAway's goroutine to send the GOAWAY or leave it
// for the next frame boundary.
func waitGoAway(t *testing.T, h *h2Frames) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		done := h.sent || h.want
		h.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the GOAWAY was neither sent nor left pending")
		}
		runtime.Gosched()
	}
}

func TestH2FramesNotHTTP2(t *testing.T) {
	var h h2Frames
	h.read([]byte("GET / HTTP/1.1\r\n"))
	var out bytes.Buffer
	write := func(p []byte) (int, error) { return out.Write(p) }
	h.write([]byte("HTTP/1.1 200 OK\r\n"), write)
	if h.goAway(write) || out.String() != "HTTP/1.1 200 OK\r\n" {
		t.Errorf("an HTTP/1 connection got %q", out.String())
	}
}
