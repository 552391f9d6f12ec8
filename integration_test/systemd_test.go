//go:build linux

package integration_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// notifySocket plays systemd's end of the notify protocol: a unixgram
// socket that learns the sender of each message from its credentials.
type notifySocket struct {
	t    *testing.T
	name string
	conn *net.UnixConn
	seen []notifyMessage
}

type notifyMessage struct {
	pid    int
	fields map[string]string
	raw    string
	at     time.Time // when it arrived
}

func listenNotify(t *testing.T, abstract bool) *notifySocket {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = fmt.Sprintf("@daemonize-test-%d-%d", os.Getpid(), rand.Int64())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		if err == nil {
			// Each message's arrival time, whenever the test reads it.
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return &notifySocket{t: t, name: name, conn: conn}
}

// expect reads messages until one has key (with value, unless value is
// empty) and returns it; every message read is kept in seen.
func (n *notifySocket) expect(key, value string) notifyMessage {
	n.t.Helper()
	deadline := time.Now().Add(scale(20 * time.Second))
	for {
		m, err := n.read(deadline)
		if err != nil {
			n.t.Fatalf("waiting for %s=%s: %v; seen: %v", key, value, err, n.seen)
		}
		if v, ok := m.fields[key]; ok && (value == "" || v == value) {
			return m
		}
	}
}

// read reads the next message, waiting until deadline at most, and keeps
// it in seen.
func (n *notifySocket) read(deadline time.Time) (notifyMessage, error) {
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	n.conn.SetReadDeadline(deadline)
	nb, noob, _, _, err := n.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return notifyMessage{}, err
	}
	m := notifyMessage{raw: string(buf[:nb]), fields: make(map[string]string), at: time.Now()}
	cmsgs, _ := unix.ParseSocketControlMessage(oob[:noob])
	for _, c := range cmsgs {
		if cred, err := unix.ParseUnixCredentials(&c); err == nil {
			m.pid = int(cred.Pid)
		}
		if c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPNS && len(c.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&c.Data[0]))
			m.at = time.Unix(ts.Unix())
		}
		// A barrier (BARRIER=1, as systemd-notify sends) passes a
		// pipe that systemd closes once it has read what came before.
		fds, _ := unix.ParseUnixRights(&c)
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(m.raw), "\n") {
		k, v, _ := strings.Cut(line, "=")
		m.fields[k] = v
	}
	n.seen = append(n.seen, m)
	return m, nil
}

// TestNotify runs the example under a fake systemd and checks the messages
// of a start, a restart that works, one that fails, and a stop.
func TestNotify(t *testing.T) {
	t.Parallel()
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			t.Parallel()
			n := listenNotify(t, abstract)
			s := newServer(t, exampleBin)
			s.env = []string{"NOTIFY_SOCKET=" + n.name}
			cmd := s.foreground("-upgrade-timeout", "1s")
			first := cmd.Process.Pid

			if m := n.expect("READY", "1"); m.pid != first || !strings.Contains(m.fields["STATUS"], "generation 1") {
				t.Errorf("READY=1 from %d with STATUS %q; want it from %d", m.pid, m.fields["STATUS"], first)
			}

			s.signal(first, syscall.SIGUSR1)
			checkReloading(t, n.expect("RELOADING", "1"), first)
			m := n.expect("MAINPID", "")
			second := s.mustPID()
			if m.pid != first || m.fields["MAINPID"] != strconv.Itoa(second) || m.fields["READY"] != "1" {
				t.Errorf("hand-over message %q from %d; want MAINPID=%d and READY=1 from the old main process %d", m.raw, m.pid, second, first)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("old main process: %v", err)
			}

			s.installScript("#!/bin/sh\nexit 1\n")
			s.signal(second, syscall.SIGUSR1)
			checkReloading(t, n.expect("RELOADING", "1"), second)
			m = n.expect("READY", "1")
			if m.pid != second || !strings.Contains(m.fields["STATUS"], "restart failed") || m.fields["MAINPID"] != "" {
				t.Errorf("after a failed restart: %q from %d; want READY=1 and a STATUS saying it failed from %d", m.raw, m.pid, second)
			}

			s.signal(second, syscall.SIGTERM)
			if m := n.expect("STOPPING", "1"); m.pid != second {
				t.Errorf("STOPPING=1 from %d, want %d", m.pid, second)
			}
			if code := mustExit(t, second, 20*time.Second); code != 0 {
				t.Errorf("exit %d", code)
			}
			for i, m := range n.seen[:len(n.seen)-1] {
				if _, ok := m.fields["STOPPING"]; ok {
					t.Errorf("message %d, before the stop: %q", i, m.raw)
				}
			}
		})
	}
}

// checkReloading checks a RELOADING=1 message: systemd ignores it without a
// MONOTONIC_USEC that is current.
func checkReloading(t *testing.T, m notifyMessage, from int) {
	t.Helper()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	now := ts.Nano() / 1000
	usec, err := strconv.ParseInt(m.fields["MONOTONIC_USEC"], 10, 64)
	if m.pid != from || err != nil || usec <= 0 || usec > now || now-usec > int64(scale(10*time.Second)/time.Microsecond) {
		t.Errorf("RELOADING message %q from %d; want it from %d with a current MONOTONIC_USEC (now %d)", m.raw, m.pid, from, now)
	}
}

// TestWatchdog checks that the serving process sends WATCHDOG=1, and that
// the new one takes over after a restart.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	n := listenNotify(t, false)
	s := newServer(t, exampleBin)
	s.env = []string{"NOTIFY_SOCKET=" + n.name, "WATCHDOG_USEC=100000"}
	cmd := s.foreground()
	first := cmd.Process.Pid
	n.expect("READY", "1")
	// Pings repeat, so one follows READY=1 whichever came first.
	if m := n.expect("WATCHDOG", "1"); m.pid != first {
		t.Errorf("WATCHDOG=1 from %d, want %d", m.pid, first)
	}
	s.signal(first, syscall.SIGUSR1)
	n.expect("MAINPID", "")
	second := s.mustPID()
	deadline := time.Now().Add(scale(20 * time.Second))
	for {
		if m := n.expect("WATCHDOG", "1"); m.pid == second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no WATCHDOG=1 from the new process %d", second)
		}
	}
	cmd.Wait()
	// Once the old process is gone every ping comes from the new one.
	for range 3 {
		if m := n.expect("WATCHDOG", "1"); m.pid != second {
			t.Errorf("WATCHDOG=1 from %d after the hand-over, want %d", m.pid, second)
		}
	}
	// A clean stop, not the cleanup's SIGKILL: once the old process has
	// exited, the new one runs a helper (/bin/sh, then systemd-notify) to
	// make systemd adopt it, and a stop waits for that helper; killed, the
	// new process would leave it to the test process, unreaped.
	s.signal(second, syscall.SIGTERM)
	if code := mustExit(t, second, 20*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// TestSocketActivation hands the server a listening socket as systemd does
// (LISTEN_FDS=1 on descriptor 3, LISTEN_PID its pid): it serves on that very
// socket, found by address or by name, and keeps it across two restarts.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	for _, byName := range []bool{false, true} {
		t.Run(fmt.Sprintf("by name=%v", byName), func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close() // held open: a server that bound afresh would fail
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			socket := fmt.Sprintf("socket:[%d]", st.Sys().(*syscall.Stat_t).Ino)

			s := newServer(t, helperBin)
			s.addr = ln.Addr().String()
			s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
			args := s.flags()
			if byName {
				args = s.flags("-addr", "web")
			}
			cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec "$0" "$@"`, s.bin}, args...)...)
			cmd.Env = append(os.Environ(), s.env...)
			cmd.ExtraFiles = []*os.File{f}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			s.track(pid)
			waitFor(t, 20*time.Second, "the pid file", func() bool {
				p, err := s.readPID()
				return err == nil && p == pid
			})
			for gen := 1; gen <= 3; gen++ {
				if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d generation=%d ", pid, gen)) {
					t.Errorf("GET / = %q, want pid %d generation %d", body, pid, gen)
				}
				if !holds(pid, socket) {
					t.Errorf("generation %d does not serve on the socket it was passed (%s)", gen, socket)
				}
				if env := s.get("/env"); strings.Contains(env, "LISTEN_") {
					t.Errorf("generation %d passes systemd's variables on:\n%s", gen, env)
				}
				if gen < 3 {
					pid, _, _ = s.restart(pid)
				}
			}
		})
	}
}

// holds reports whether pid has a descriptor pointing at target.
func holds(pid int, target string) bool {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range entries {
		if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); got == target {
			return true
		}
	}
	return false
}
