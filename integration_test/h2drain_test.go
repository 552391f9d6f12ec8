//go:build linux

package integration_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// h2Frame is the header of an HTTP/2 frame, and its payload.
type h2Frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2WindowUpdate = 0x8
	h2EndStream    = 0x1
	h2EndHeaders   = 0x4
	h2Ack          = 0x1
)

func writeH2Frame(w io.Writer, typ, flags byte, stream uint32, payload []byte) error {
	hdr := make([]byte, 9, 9+len(payload))
	hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	hdr[3], hdr[4] = typ, flags
	binary.BigEndian.PutUint32(hdr[5:], stream)
	_, err := w.Write(append(hdr, payload...))
	return err
}

// dialH2c opens a cleartext HTTP/2 connection with prior knowledge: the
// preface, then a SETTINGS frame with settings. Every read and write on it
// ends within 30 s; the test's end closes it.
func dialH2c(t *testing.T, addr string, settings []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(scale(30 * time.Second)))
	io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if err := writeH2Frame(conn, h2Settings, 0, 0, settings); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

func readH2Frame(r *bufio.Reader) (h2Frame, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return h2Frame{}, err
	}
	f := h2Frame{typ: hdr[3], flags: hdr[4], stream: binary.BigEndian.Uint32(hdr[5:]) &^ (1 << 31)}
	f.payload = make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
	_, err := io.ReadFull(r, f.payload)
	return f, err
}

// TestH2ResponseInFlightAcrossDrain sends GET / over cleartext HTTP/2 with
// a stream window of 0, so that the response's body waits in the server
// after the handler has returned (a slow client's, or one whose data is
// still queued), then restarts the server. The old process, which drains
// with TakeBack on (as the example does), must not close the connection
// before the response is complete: once the client opens the window, the
// body and the end of the stream arrive.
func TestH2ResponseInFlightAcrossDrain(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start("-h2c")
	conn, br := dialH2c(t, s.addr, []byte{0, 0x4, 0, 0, 0, 0}) // SETTINGS_INITIAL_WINDOW_SIZE = 0
	// GET http://addr/, HPACK: :method GET, :scheme http, :path / from the
	// static table, :authority as a literal.
	block := append([]byte{0x82, 0x86, 0x84, 0x41, byte(len(s.addr))}, s.addr...)
	writeH2Frame(conn, h2Headers, h2EndStream|h2EndHeaders, 1, block)
	frames := make(chan h2Frame, 64)
	readErr := make(chan error, 1)
	go func() {
		for {
			conn.SetReadDeadline(time.Now().Add(scale(30 * time.Second)))
			f, err := readH2Frame(br)
			if err != nil {
				readErr <- err
				close(frames)
				return
			}
			frames <- f
		}
	}()
	var got []string
	next := func(limit time.Duration) (h2Frame, bool) {
		select {
		case f, ok := <-frames:
			if ok {
				got = append(got, fmt.Sprintf("type %d flags %#x stream %d len %d", f.typ, f.flags, f.stream, len(f.payload)))
			}
			return f, ok
		case <-time.After(limit):
			return h2Frame{}, true
		}
	}
	// The response's HEADERS come; its DATA cannot.
	for headers := false; !headers; {
		f, ok := next(scale(10 * time.Second))
		if !ok {
			t.Fatalf("connection ended before the response's headers: %v; frames %q", <-readErr, got)
		}
		switch {
		case f.typ == h2Settings && f.flags&h2Ack == 0:
			writeH2Frame(conn, h2Settings, h2Ack, 0, nil)
		case f.typ == h2Headers && f.stream == 1:
			headers = true
		case f.typ == h2Data && f.stream == 1:
			t.Fatalf("DATA on stream 1 with a window of 0: %q", got)
		}
	}
	// The drain begins with the response incomplete; it has been idle
	// since before the request, so an idle connection would be closed at
	// once.
	time.Sleep(300 * time.Millisecond)
	s.signal(pid, syscall.SIGUSR1)
	next2 := s.waitPIDChange(pid)
	waitFor(t, 20*time.Second, "the hand-over", func() bool {
		st, err := daemonize.ReadStatus(s.pidFile)
		return err == nil && st.PID == next2
	})
	time.Sleep(500 * time.Millisecond)
	if err := writeH2Frame(conn, h2WindowUpdate, 0, 1, []byte{0, 0, 0x10, 0}); err != nil {
		t.Errorf("opening the stream's window after the hand-over: %v", err)
	}
	ended := false
	for !ended {
		f, ok := next(scale(10 * time.Second))
		if !ok {
			break
		}
		if f.stream == 1 && f.flags&h2EndStream != 0 {
			ended = true
		}
	}
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
	err := <-readErr
	if !ended {
		t.Errorf("the old process ended the connection (%v) before the response in flight was complete; frames %q", err, got)
	}
	t.Logf("frames from the old process: %q; then %v", got, err)
}

// TestH2StreamCrossingGoAway: a client of cleartext HTTP/2 opens a stream
// just as the drain's GOAWAY reaches it (a request on its way when the
// GOAWAY was sent), after its connection was idle for a while. The first
// GOAWAY comes right after a PING, once the client has answered it. The
// old process must answer the stream: its first GOAWAY names the highest stream id there can be, refusing nothing
// (RFC 9113 section 6.8); a later one, if any, names a last stream no lower
// than the one the client opened; no stream is reset; the connection then
// ends and the old process exits 0.
func TestH2StreamCrossingGoAway(t *testing.T) {
	t.Parallel()
	s := newServer(t, exampleBin)
	pid := s.start("-h2c")
	conn, br := dialH2c(t, s.addr, nil)
	block := append([]byte{0x82, 0x86, 0x84, 0x41, byte(len(s.addr))}, s.addr...)
	var got []string
	// read reads frames until until says stop, answering SETTINGS.
	read := func(until func(f h2Frame) bool) {
		t.Helper()
		for {
			f, err := readH2Frame(br)
			if err != nil {
				t.Fatalf("%v; frames %q", err, got)
			}
			got = append(got, fmt.Sprintf("type %d flags %#x stream %d len %d", f.typ, f.flags, f.stream, len(f.payload)))
			if f.typ == h2Settings && f.flags&h2Ack == 0 {
				writeH2Frame(conn, h2Settings, h2Ack, 0, nil)
			}
			if f.typ == h2Ping && f.flags&h2Ack == 0 {
				writeH2Frame(conn, h2Ping, h2Ack, 0, f.payload)
			}
			if f.typ == h2RSTStream {
				t.Fatalf("stream %d reset; frames %q", f.stream, got)
			}
			if until(f) {
				return
			}
		}
	}
	ended := func(stream uint32) func(h2Frame) bool {
		return func(f h2Frame) bool {
			return f.stream == stream && f.flags&h2EndStream != 0 && (f.typ == h2Data || f.typ == h2Headers)
		}
	}
	writeH2Frame(conn, h2Headers, h2EndStream|h2EndHeaders, 1, block)
	read(ended(1))

	// Idle for longer than the drain's idle grace (250 ms), as on a busy
	// machine where the restart takes that long: the client is still told
	// before its connection is closed.
	time.Sleep(300 * time.Millisecond)
	s.signal(pid, syscall.SIGUSR1)
	var first, before h2Frame
	read(func(f h2Frame) bool {
		if f.typ == h2GoAway {
			first = f
			return true
		}
		before = f
		return false
	})
	if before.typ != h2Ping {
		t.Errorf("the first GOAWAY follows a frame of type %d, want a PING, whose ACK it waits for; frames %q", before.typ, got)
	}
	if last := binary.BigEndian.Uint32(first.payload) &^ (1 << 31); last != 1<<31-1 {
		t.Errorf("the first GOAWAY names last stream %d, want %d: streams on their way are refused", last, 1<<31-1)
	}
	writeH2Frame(conn, h2Headers, h2EndStream|h2EndHeaders, 3, block)
	read(func(f h2Frame) bool {
		if f.typ == h2GoAway {
			if last := binary.BigEndian.Uint32(f.payload) &^ (1 << 31); last < 3 {
				t.Errorf("a later GOAWAY names last stream %d, below stream 3, which the client opened", last)
			}
		}
		return ended(3)(f)
	})
	// The connection ends once nothing is in flight.
	for {
		if _, err := readH2Frame(br); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("the connection ended with %v, want EOF", err)
			}
			break
		}
	}
	if code := mustExit(t, pid, 20*time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
	t.Logf("frames from the old process: %q", got)
}
