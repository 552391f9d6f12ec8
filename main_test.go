//go:build unix

package daemonize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain runs the test binary as a helper process when
// DAEMONIZE_TEST_MISUSE names a directory: a process may have one Daemon,
// so misuse is tried in a process of its own.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DAEMONIZE_TEST_MISUSE"); dir != "" {
		misuse(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// misuseResult is one call of the misuse sequence and what it returned.
type misuseResult struct {
	Call         string
	Err          string
	NotReady     bool
	AlreadyReady bool
	Stopping     bool
}

// misuse calls the API the wrong way, step by step, and prints what each
// call returned as JSON lines.
func misuse(dir string) {
	enc := json.NewEncoder(os.Stdout)
	say := func(call string, err error) {
		r := misuseResult{Call: call, NotReady: errors.Is(err, ErrNotReady), AlreadyReady: errors.Is(err, ErrAlreadyReady), Stopping: errors.Is(err, ErrStopping)}
		if err != nil {
			r.Err = err.Error()
		}
		enc.Encode(r)
	}
	d, err := New(Options{PIDFile: filepath.Join(dir, "app.pid")})
	if err != nil {
		say("New", err)
		return
	}
	say("Restart before Ready", d.Restart(context.Background()))
	for _, addr := range []string{"", "8080", "127.0.0.1:http-alt-nonsense"} {
		_, err := d.Listen("tcp", addr)
		say(fmt.Sprintf("Listen tcp %q", addr), err)
	}
	_, err = d.ListenPacket("tcp", "127.0.0.1:0")
	say("ListenPacket tcp", err)
	_, err = d.File("daemonize.mine", func() (*os.File, error) { return os.Open(os.DevNull) })
	say("File with a reserved name", err)
	_, err = New(Options{})
	say("New twice", err)
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	say("Listen", err)
	if ln != nil {
		srv := &http.Server{}
		go d.Serve(srv, ln)
		within(5*time.Second, func() bool {
			d.drainMu.Lock()
			defer d.drainMu.Unlock()
			return len(d.servers) > 0
		})
		ln2, err := d.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			say("Serve with a server already serving", d.Serve(srv, ln2))
			say("Serve on a listener already served", d.Serve(&http.Server{}, ln))
			ln2.Close()
		}
	}
	say("Ready", d.Ready())
	say("Ready twice", d.Ready())
	_, err = d.Listen("tcp", "127.0.0.1:0")
	say("Listen after Ready", err)
	_, err = d.ListenPacket("udp", "127.0.0.1:0")
	say("ListenPacket after Ready", err)
	_, err = d.File("state", func() (*os.File, error) { return os.Open(os.DevNull) })
	say("File after Ready", err)
	d.Stop()
	say("Wait", d.Wait())
	say("Restart after stop", d.Restart(context.Background()))
	if ln != nil {
		_, err = net.Dial("tcp", ln.Addr().String())
		say("Dial after stop", err)
	}
}

func TestMisuse(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "DAEMONIZE_TEST_MISUSE="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := make(map[string]misuseResult)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r misuseResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("helper said %q", line)
		}
		got[r.Call] = r
	}
	for _, want := range []struct {
		call, msg              string
		notReady, ready, stops bool
	}{
		{call: "Restart before Ready", msg: "restart before Ready", notReady: true},
		{call: `Listen tcp ""`, msg: "want host:port"},
		{call: `Listen tcp "8080"`, msg: "want host:port"},
		{call: `Listen tcp "127.0.0.1:http-alt-nonsense"`, msg: "unknown port"},
		{call: "ListenPacket tcp", msg: "use Listen"},
		{call: "File with a reserved name", msg: "reserved"},
		{call: "New twice", msg: "New called twice"},
		{call: "Listen"},
		{call: "Serve with a server already serving", msg: "this http.Server already serves"},
		{call: "Serve on a listener already served", msg: "is already served"},
		{call: "Ready"},
		{call: "Ready twice", msg: "Ready called twice", ready: true},
		{call: "Listen after Ready", msg: "create every listener and file before Ready", ready: true},
		{call: "ListenPacket after Ready", msg: "before Ready", ready: true},
		{call: "File after Ready", msg: "before Ready", ready: true},
		{call: "Wait"},
		{call: "Restart after stop", msg: "stopping", stops: true},
		{call: "Dial after stop", msg: "connection refused"},
	} {
		r, ok := got[want.call]
		switch {
		case !ok:
			t.Errorf("%s: not reached", want.call)
		case want.msg == "" && r.Err != "":
			t.Errorf("%s: %s, want no error", want.call, r.Err)
		case !strings.Contains(r.Err, want.msg) || r.NotReady != want.notReady || r.AlreadyReady != want.ready || r.Stopping != want.stops:
			t.Errorf("%s: %+v; want %q (ErrNotReady %v, ErrAlreadyReady %v, ErrStopping %v)", want.call, r, want.msg, want.notReady, want.ready, want.stops)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in the pid file's directory after the stop: %v", entries)
	}
}
