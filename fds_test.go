//go:build unix

package daemonize

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// memTable is tableflip's file table, in memory: it keeps a duplicate of
// each file it is given, as tableflip does.
type memTable map[string]*os.File

func (m memTable) AddFile(name string, f *os.File) error {
	fd, err := dupFile(f)
	if err != nil {
		return err
	}
	m[name] = fd
	return nil
}

func (m memTable) File(name string) (*os.File, error) {
	f := m[name]
	if f == nil {
		return nil, nil
	}
	return dupFile(f)
}

// handOff passes what parent holds as a restart does: the manifest through
// its text, the descriptors through the socket pair, and returns the
// entries a child inherits.
func handOff(tb testing.TB, parent *fdSet) []entry {
	tb.Helper()
	files, ch, err := parent.passOn()
	if err != nil {
		tb.Fatal(err)
	}
	m, err := decodeManifest(encodeManifest(manifest{Generation: parent.gen + 1, Files: files}))
	if err != nil {
		tb.Fatal(err)
	}
	table := memTable{}
	if err := table.AddFile(filesName, ch); err != nil {
		tb.Fatal(err)
	}
	ch.Close()
	defer table[filesName].Close()
	if err := inheritFds(table, m); err != nil {
		tb.Fatal(err)
	}
	return m.Files
}

// TestInheritListeners passes listeners from one fdSet to a second one, as
// a restart does, and checks that each address finds its socket.
func TestInheritListeners(t *testing.T) {
	parent := &fdSet{lc: &net.ListenConfig{}, gen: 1}
	defer parent.releaseKept()
	sock := filepath.Join(t.TempDir(), "s.sock")
	asked := []struct{ network, addr string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp", ":0"},
		{"unix", sock},
	}
	var bound []string
	for _, a := range asked {
		ln, err := parent.listen(a.network, a.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		bound = append(bound, ln.Addr().String())
	}
	pc, err := parent.listenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	// The child asks for the same sockets, some by other names.
	child := &fdSet{lc: &net.ListenConfig{}, gen: 2, inherited: handOff(t, parent)}
	defer child.releaseKept()
	_, port, _ := net.SplitHostPort(bound[0])
	for i, addr := range []string{"localhost:" + port, ":0", sock} {
		ln, err := child.listen(asked[i].network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := ln.Addr().String(); got != bound[i] {
			t.Errorf("child Listen(%q) got %s, want the inherited %s", addr, got, bound[i])
		}
	}
	cpc, err := child.listenPacket("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cpc.Close()
	if cpc.LocalAddr().String() != pc.LocalAddr().String() {
		t.Errorf("child ListenPacket got %s, want %s", cpc.LocalAddr(), pc.LocalAddr())
	}
	if left, err := child.markReady(); len(left) != 0 || err != nil {
		t.Errorf("unclaimed after every socket was asked for: %v, %v", left, err)
	}
	if _, err := child.listen("tcp", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "after Ready") {
		t.Errorf("Listen after Ready: %v, want an error", err)
	}
	got, ch, err := child.passOn()
	if err != nil || len(got) != 4 {
		t.Errorf("child passes on %d sockets (%v), want 4", len(got), err)
	}
	discardFds(ch)
}

func TestSameAddr(t *testing.T) {
	for _, tc := range []struct {
		network, addr, bound string
		want                 bool
	}{
		{"tcp", "localhost:8080", "127.0.0.1:8080", true},
		{"tcp", "127.0.0.1:8080", "127.0.0.1:8080", true},
		{"tcp", ":8080", "[::]:8080", true},
		{"tcp", "0.0.0.0:8080", "[::]:8080", true},
		{"tcp", ":0", "[::]:41234", true},
		{"tcp", "127.0.0.1:0", "127.0.0.1:41234", true},
		{"tcp", "127.0.0.1:8081", "127.0.0.1:8080", false},
		{"tcp", "127.0.0.2:8080", "127.0.0.1:8080", false},
		{"tcp", "[::1]:8080", "127.0.0.1:8080", false},
		{"tcp", ":8080", "127.0.0.1:8080", false},
		{"tcp", "nonsense", "127.0.0.1:8080", false},
		{"udp", "localhost:53", "127.0.0.1:53", true},
		{"unix", "/tmp/a.sock", "/tmp/a.sock", true},
		{"unix", "/tmp/./a.sock", "/tmp/a.sock", true},
		{"unix", "/tmp/a.sock", "/tmp/b.sock", false},
	} {
		if got := sameAddr(tc.network, tc.addr, tc.bound); got != tc.want {
			t.Errorf("sameAddr(%s, %s, %s) = %v, want %v", tc.network, tc.addr, tc.bound, got, tc.want)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		call, network, addr, want string
	}{
		{"Listen", "tcp", "127.0.0.1:8080", ""},
		{"Listen", "tcp", "", "want host:port"},
		{"Listen", "tcp", "8080", "want host:port"},
		{"Listen", "udp", ":53", "use ListenPacket"},
		{"Listen", "sctp", ":1", "unknown network"},
		{"Listen", "unix", "", "needs a path"},
		{"ListenPacket", "udp", ":53", ""},
		{"ListenPacket", "tcp", ":80", "use Listen"},
		{"ListenPacket", "unixgram", "/tmp/x", ""},
	} {
		err := checkAddr(tc.call, tc.network, tc.addr)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkAddr(%s, %q, %q) = %v, want %q", tc.call, tc.network, tc.addr, err, tc.want)
		}
	}
}

func TestHandoff(t *testing.T) {
	f, err := anonFile("test-handoff")
	if err != nil {
		t.Fatal(err)
	}
	h := &handoff{f: f}
	defer f.Close()
	m := manifest{Version: manifestVersion, Generation: 3, Started: 42, Files: []entry{{Name: "g1.1", Kind: kindListener, Network: "tcp", Addr: ":0", Bound: "[::]:9"}}}
	if err := h.begin(m); err != nil {
		t.Fatal(err)
	}
	got, err := h.manifest()
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("manifest() = %+v, %v; want %+v", got, err, m)
	}
	h.setChild(1234, "")
	h.setChild(0, strings.Repeat("x", 2*ctlSize))
	if pid, msg := h.child(); pid != 1234 || len(msg) == 0 || len(msg) > maxMessage {
		t.Errorf("child() = %d, %d bytes", pid, len(msg))
	}
	if won, _, err := h.transition(stateReady, func() bool { return false }); won || err != nil {
		t.Fatalf("a transition too late won: %v", err)
	}
	if won, _, err := h.transition(stateReady, func() bool { return true }); !won || err != nil {
		t.Fatalf("first transition lost: %v", err)
	}
	if won, state, _ := h.transition(stateAborted, nil); won || state != stateReady {
		t.Errorf("second transition won (state %d), want it to lose to ready", state)
	}
	if err := h.begin(m); err != nil { // the next restart starts afresh
		t.Fatal(err)
	}
	if pid, msg := h.child(); pid != 0 || msg != "" {
		t.Errorf("after begin: child() = %d, %q", pid, msg)
	}
}

func TestDecodeManifestErrors(t *testing.T) {
	const head = "daemonize-handoff 1\ngeneration 2\n"
	for in, want := range map[string]string{
		"":                                  "not a daemonize hand-off",
		"nope":                              "not a daemonize hand-off",
		"daemonize-handoff 4\n":             "version \"4\"",
		"daemonize-handoff 0\n":             "version \"0\"",
		"daemonize-handoff 1\ngeneration 1": "bad generation 1",
		head + "restarts -1":                "restart count -1",
		head + "color blue":                 "unknown line",
		head + "started soon":               "invalid syntax",
		head + `file "a" "x" "" "" ""`:      "unknown kind",
		head + `file "" "file" "" "" ""`:    "bad or repeated name",
		head + `file "a" "file" "" "" ""` + "\n" + `file "a" "file" "" "" ""`: "bad or repeated name",
		head + `file "daemonize.handoff" "file" "" "" ""`:                     "bad or repeated name",
		head + `file "a" "listener" "" "" ""`:                                 "has no network",
		head + `file "a" "file" "" ""`:                                        "want a space",
		head + `file "a" "file" "" "" "" ""`:                                  "trailing text",
		head + `file "a""file" "" "" ""`:                                      "want a space",
	} {
		if _, err := decodeManifest([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeManifest(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte("daemonize-handoff 1\ngeneration 2\nstarted 1\nrestarts 1\nnotify \"@sd\"\nfile \"g1.1\" \"listener\" \"tcp\" \":0\" \"[::]:1\"\n"))
	f.Add([]byte("daemonize-handoff 1\ngeneration 9\nfile \"a\\x00\" \"file\" \"\" \"x y\" \"\"\n"))
	f.Add([]byte("daemonize-handoff 1\n"))
	f.Add([]byte("daemonize-handoff 2\ngeneration 3\ndeadline 77\nstderr-captured true\n"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		again, err := decodeManifest(encodeManifest(m))
		m.Version = manifestVersion // a version 1 hand-off is written anew as the current one
		if err != nil || fmt.Sprint(again) != fmt.Sprint(m) {
			t.Errorf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add(make([]byte, ctlSize))
	f.Add([]byte{1, 0, 0, 0, 0xd2, 4, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c'})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, msg := decodeControl(b)
		if len(msg) > len(b) {
			t.Errorf("message longer than its block")
		}
	})
}

func TestParseListenEnv(t *testing.T) {
	for _, tc := range []struct {
		pid, fds, names string
		want            []string
		err             string
	}{
		{"", "", "", nil, ""},
		{"42", "2", "web:admin", []string{"web", "admin"}, ""},
		{"42", "2", "", []string{"unknown", "unknown"}, ""},
		{"42", "2", "web:", []string{"web", "unknown"}, ""},
		{"43", "2", "web:admin", nil, ""}, // for another process
		{"x", "2", "", nil, ""},
		{"42", "two", "", nil, "LISTEN_FDS"},
		{"42", "-1", "", nil, "LISTEN_FDS"},
		{"42", "99999", "", nil, "LISTEN_FDS"},
		{"42", "2", "web", nil, "1 names for LISTEN_FDS=2"},
	} {
		got, err := parseListenEnv(tc.pid, tc.fds, tc.names, 42, false)
		if tc.err == "" && (err != nil || !reflect.DeepEqual(got, tc.want)) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseListenEnv(%q, %q, %q) = %q, %v; want %q, %q", tc.pid, tc.fds, tc.names, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseListenEnv(f *testing.F) {
	f.Add("42", "2", "web:admin")
	f.Add("42", "1", "")
	f.Add("42", "0", "")
	f.Add("42", "3", "::")
	f.Fuzz(func(t *testing.T, pid, fds, names string) {
		got, err := parseListenEnv(pid, fds, names, 42, false)
		if err == nil && len(got) > maxListenFDs {
			t.Errorf("%d names accepted", len(got))
		}
		for _, n := range got {
			if n == "" {
				t.Errorf("empty name accepted")
			}
		}
	})
}

// benchManifest is a hand-off with n listeners.
func benchManifest(n int) manifest {
	m := manifest{Generation: 2, Started: 1, Restarts: 1, AttemptStarted: 2}
	for i := range n {
		m.Files = append(m.Files, entry{Name: fmt.Sprintf("g1.%d", i), Kind: kindListener, Network: "tcp", Addr: "127.0.0.1:0", Bound: fmt.Sprintf("127.0.0.1:%d", 10000+i)})
	}
	return m
}

func BenchmarkManifest(b *testing.B) {
	for _, n := range []int{1, 1000} {
		m := benchManifest(n)
		enc := encodeManifest(m)
		b.Run(fmt.Sprintf("encode/%d", n), func(b *testing.B) {
			for b.Loop() {
				encodeManifest(m)
			}
		})
		b.Run(fmt.Sprintf("decode/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeManifest(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestClaimOrder checks that many listeners asked for by one address find
// their sockets in the order they were made, and that the match by bound
// address skips what an exact match took.
func TestClaimOrder(t *testing.T) {
	var entries []entry
	for i := range 5 {
		entries = append(entries, entry{Name: fmt.Sprintf("g1.%d", i), Kind: kindListener, Network: "tcp", Addr: "127.0.0.1:0", Bound: fmt.Sprintf("127.0.0.1:%d", 4000+i)})
	}
	entries = append(entries, entry{Name: "g1.5", Kind: kindListener, Network: "tcp", Addr: "localhost:5000", Bound: "127.0.0.1:5000"})
	entries = append(entries, entry{Name: "g1.6", Kind: kindFile, Addr: "state"})
	u := newUnclaimed(entries)
	for _, tc := range []struct {
		kind, network, addr string
		want                int
	}{
		{kindListener, "tcp", "127.0.0.1:4002", 2}, // by bound address
		{kindListener, "tcp", "127.0.0.1:0", 0},
		{kindListener, "tcp", "127.0.0.1:0", 1},
		{kindListener, "tcp", "127.0.0.1:0", 3}, // 2 was taken
		{kindListener, "tcp", "127.0.0.1:5000", 5},
		{kindListener, "tcp", "localhost:5000", -1}, // taken by its bound address
		{kindFile, "", "127.0.0.1:0", -1},
		{kindFile, "", "state", 6},
		{kindFile, "", "state", -1},
	} {
		if got := u.take(tc.kind, tc.network, tc.addr); got != tc.want {
			t.Errorf("take(%s %s %q) = %d, want %d", tc.kind, tc.network, tc.addr, got, tc.want)
		}
	}
	if got := u.rest(); len(got) != 1 || got[0].Name != "g1.4" {
		t.Errorf("rest = %v, want g1.4 alone", got)
	}
}

// BenchmarkInherit measures what a restart does per inherited listener in
// this package until the new process is ready: the manifest, the
// descriptors sent and received, the match, and the listener made at the
// first Accept (-accept), which comes after Ready.
func BenchmarkInherit(b *testing.B) {
	for _, n := range []int{1, 1000} {
		for _, accept := range []bool{false, true} {
			b.Run(fmt.Sprintf("%d/accept=%t", n, accept), func(b *testing.B) {
				benchInherit(b, n, accept)
			})
		}
	}
}

func benchInherit(b *testing.B, n int, accept bool) {
	parent := &fdSet{lc: &net.ListenConfig{}, gen: 1}
	defer parent.releaseKept()
	for range n {
		ln, err := parent.listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
	}
	b.ResetTimer()
	for range b.N {
		child := &fdSet{lc: &net.ListenConfig{}, gen: 2, inherited: handOff(b, parent)}
		for range n {
			ln, err := child.listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			if accept {
				<-ln.(*gatedListener).made
			}
			ln.Close()
		}
		if left, err := child.markReady(); len(left) != 0 || err != nil {
			b.Fatalf("%d left, %v", len(left), err)
		}
		child.releaseKept()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/listener")
}

// BenchmarkHandoff measures the hand-off file's part of a restart: the
// parent's begin (control block and manifest, one listener) and the
// child's read of the manifest.
func BenchmarkHandoff(b *testing.B) {
	f, err := anonFile("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := &handoff{f: f}
	m := benchManifest(1)
	for b.Loop() {
		if err := h.begin(m); err != nil {
			b.Fatal(err)
		}
		if _, err := h.manifest(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestManifestQuoting round-trips names and addresses that take strconv's
// quoting and ones that skip it.
func TestManifestQuoting(t *testing.T) {
	odd := []string{"", "plain", `q"uote`, `back\slash`, "tab\there", "é", "\x00\xff", "end\\", `"`, "sp ace"}
	var m manifest
	m.Generation = 2
	for i, s := range odd {
		m.Files = append(m.Files, entry{Name: fmt.Sprintf("g1.%d", i), Kind: kindFile, Network: s, Addr: s, Bound: s})
	}
	got, err := decodeManifest(encodeManifest(m))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got.Files {
		if e != m.Files[i] {
			t.Errorf("file %d: got %+v, want %+v", i, e, m.Files[i])
		}
	}
	for _, s := range odd {
		if got, want := string(appendQuoted(nil, s)), strconv.Quote(s); got != want {
			t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestInheritedListenersMadeLater checks the listeners a restarted process
// makes after Listen returns: each accepts once ready, on the socket the
// parent bound; one closed before it was made reports that it is closed;
// and every descriptor is closed after the child lets go of its sockets.
func TestInheritedListenersMadeLater(t *testing.T) {
	parent := &fdSet{lc: &net.ListenConfig{}, gen: 1}
	defer parent.releaseKept()
	for range 3 {
		ln, err := parent.listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	ready := make(chan struct{})
	child := &fdSet{lc: &net.ListenConfig{}, gen: 2, readyC: ready, inherited: handOff(t, parent)}
	var lns []net.Listener
	for range 3 {
		ln, err := child.listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	lns[1].Close()
	if _, err := child.markReady(); err != nil {
		t.Fatal(err)
	}
	close(ready)
	for i, ln := range lns {
		if i == 1 {
			if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept on a listener closed before it was made: %v, want net.ErrClosed", err)
			}
			continue
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := ln.Accept()
		if err != nil {
			t.Fatalf("listener %d: %v", i, err)
		}
		if got.LocalAddr().String() != ln.Addr().String() {
			t.Errorf("listener %d accepted on %s, want %s", i, got.LocalAddr(), ln.Addr())
		}
		got.Close()
		c.Close()
		ln.Close()
	}
	fds := make([]int, len(child.used))
	for i, e := range child.used {
		fds[i] = e.fd
	}
	child.closeListeners(false)
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			t.Errorf("descriptor %d still open after the child let go of its sockets", fd)
		}
	}
}

// TestInheritFromEarlierRelease reads a hand-off as a parent built with an
// earlier release of the library writes it (manifest version 2), whose
// sockets come through tableflip by name.
func TestInheritFromEarlierRelease(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	table := memTable{}
	if err := table.AddFile("g1.1", f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer table["g1.1"].Close()
	text := fmt.Sprintf("daemonize-handoff 2\ngeneration 2\nstarted 1\nrestarts 1\nfile \"g1.1\" \"listener\" \"tcp\" \"127.0.0.1:0\" %q\n", ln.Addr().String())
	m, err := decodeManifest([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := inheritFds(table, m); err != nil {
		t.Fatal(err)
	}
	child := &fdSet{lc: &net.ListenConfig{}, gen: 2, inherited: m.Files}
	defer child.releaseKept()
	got, err := child.listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Addr().String() != ln.Addr().String() {
		t.Errorf("inherited %s, want %s", got.Addr(), ln.Addr())
	}
	delete(table, "g1.1")
	m.Files[0].fd = 0
	if err := inheritFds(table, m); err == nil || !strings.Contains(err.Error(), "descriptor missing") {
		t.Errorf("a socket tableflip did not pass: %v, want an error", err)
	}
}

// TestInheritFile passes a file from Daemon.File on, as a restart does: the
// child gets the parent's open file, not a new one.
func TestInheritFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	parent := &fdSet{lc: &net.ListenConfig{}, gen: 1}
	defer parent.releaseKept()
	f, err := parent.file("state", func() (*os.File, error) { return os.Create(path) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(path); err != nil { // only the open file is left
		t.Fatal(err)
	}
	if _, err := f.WriteString("kept"); err != nil {
		t.Fatal(err)
	}
	child := &fdSet{lc: &net.ListenConfig{}, gen: 2, inherited: handOff(t, parent)}
	defer child.releaseKept()
	got, err := child.file("state", func() (*os.File, error) { return nil, errors.New("opened anew") })
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	b := make([]byte, 4)
	if _, err := got.ReadAt(b, 0); err != nil || string(b) != "kept" {
		t.Errorf("inherited file reads %q, %v; want the parent's \"kept\"", b, err)
	}
}

// TestDiscardFds checks that the descriptors a failed new process left
// unread are closed with the old process's end of the socket pair, though
// another copy of that end (tableflip's) stays open: the socket they name
// closes once nobody else holds it.
func TestDiscardFds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	fd, err := dupConn(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sendFds([]int{fd})
	closeFds(fd)
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	tableflips, err := dupFile(ch)
	if err != nil {
		t.Fatal(err)
	}
	defer tableflips.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the socket in flight should still listen: %v", err)
	}
	c.Close()
	discardFds(ch)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the descriptors in flight were discarded", addr)
	}
}

// TestOwnPath checks which socket files the library removes when nobody
// listens on them any more: its own, not abstract ones nor systemd's.
func TestOwnPath(t *testing.T) {
	for _, tc := range []struct {
		e    entry
		want bool
	}{
		{entry{Name: "g1.1", Kind: kindListener, Network: "unix", Bound: "/run/app.sock"}, true},
		{entry{Name: "g2.3", Kind: kindPacket, Network: "unixgram", Bound: "/run/app.dgram"}, true},
		{entry{Name: "g1.1", Kind: kindListener, Network: "unix", Bound: "@app"}, false},
		{entry{Name: "sd.3", Kind: kindListener, Network: "unix", Bound: "/run/app.sock"}, false},
		{entry{Name: "g1.1", Kind: kindListener, Network: "tcp", Bound: "127.0.0.1:80"}, false},
		{entry{Name: "g1.2", Kind: kindFile, Addr: "state"}, false},
	} {
		if got := tc.e.ownPath(); got != tc.want {
			t.Errorf("%+v: ownPath() = %v, want %v", tc.e, got, tc.want)
		}
	}
}

// TestInheritedListenerNotASocket checks that a listener that cannot be
// made from what was inherited makes Ready fail, so that the old process
// serves on, and makes its Accept say why.
func TestInheritedListenerNotASocket(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := dupConn(null)
	null.Close()
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	child := &fdSet{lc: &net.ListenConfig{}, gen: 2, readyC: ready, inherited: []entry{{Name: "g1.1", Kind: kindListener, Network: "tcp", Addr: "127.0.0.1:0", Bound: "127.0.0.1:9", fd: fd}}}
	defer child.releaseKept()
	ln, err := child.listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	<-ln.(*gatedListener).made
	if _, err := child.markReady(); err == nil || !strings.Contains(err.Error(), "inherited listener tcp 127.0.0.1:9") {
		t.Errorf("Ready with a listener that could not be made: %v, want its error", err)
	}
	close(ready)
	if _, err := ln.Accept(); err == nil || errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept: %v, want why the listener could not be made", err)
	}
}

// TestCheckFdLimit lowers the open files limit under what a thousand
// inherited sockets need.
func TestCheckFdLimit(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	low := lim
	low.Cur = min(lim.Max, 1024)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	if err := checkFdLimit(100); err != nil {
		t.Errorf("100 sockets under a limit of 1024: %v", err)
	}
	if err := checkFdLimit(1000); err == nil || !strings.Contains(err.Error(), "raise it to 2064 at least") {
		t.Errorf("1000 sockets under a limit of 1024: %v, want what to raise it to", err)
	}
}
