//go:build linux

package realclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The systemd that Debian 12 ships (252), and where units go. Units are
// written to /etc/systemd/system rather than /run/systemd/system: systemd
// mounts a tmpfs of its own on /run inside its mount namespace, where files
// written from outside would not appear.
const (
	SystemdPath = "/lib/systemd/systemd"
	unitDir     = "/etc/systemd/system"
	unitPrefix  = "daemonize-test-"
)

// The units that a normal boot starts and that would harm the machine the
// namespace shares its file system with: systemd-tmpfiles --boot empties
// /tmp, and tmp.mount hides it. Masked on systemd's command line; checked
// after the boot.
var systemdMasks = []string{
	"systemd-tmpfiles-setup.service",
	"systemd-tmpfiles-setup-dev.service",
	"systemd-tmpfiles-clean.timer",
	"tmp.mount",
}

var boots atomic.Int64

// Systemd is a real systemd booted as PID 1 of a PID and mount namespace
// of its own (unshare --pid --fork --mount --mount-proc), into an empty
// target of its own that pulls nothing in, with the units that would empty
// /tmp masked. It shares the machine's file system and network: a unit's
// paths and addresses are the test's. systemd logs to the kernel's ring
// buffer ([Systemd.Log]); the units' own output goes nowhere, so give the
// server a file for its standard error.
//
// Every unit name this boot writes starts with [Systemd.ID], so that tests
// running at the same time, and other engineers' on the same machine, never
// share a unit, and dmesg's lines can be told apart (each systemd calls
// itself systemd[1]).
type Systemd struct {
	t       testing.TB
	ID      string // daemonize-test-<test pid>-<n>: the prefix of this boot's unit names
	marker  string // a file in /tmp that must outlive the boot
	unshare *process
	pid     int      // systemd's pid as seen from outside
	written []string // unit files to remove
	down    bool
}

// BootSystemd boots systemd, waits until it runs, checks that the units
// that would empty /tmp are masked and that /tmp still holds a marker file
// written before the boot, and tears everything down in t.Cleanup.
func BootSystemd(t testing.TB) *Systemd {
	t.Helper()
	for _, c := range []string{"unshare", "nsenter", "dmesg", "systemctl"} {
		if _, err := lookPath(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(SystemdPath); err != nil {
		t.Fatalf("systemd not found (scripts/test installs it): %v", err)
	}
	sweepStaleUnits()
	s := &Systemd{t: t, ID: fmt.Sprintf("%s%d-%d", unitPrefix, os.Getpid(), boots.Add(1))}
	s.marker = filepath.Join("/tmp", s.ID+".marker")
	if err := os.WriteFile(s.marker, []byte("systemd tests check that /tmp outlives their boot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	target := s.ID + "-empty.target"
	s.writeFile(target, "[Unit]\nDescription=daemonize test: a target that pulls nothing in\nDefaultDependencies=no\n")

	args := []string{"--pid", "--fork", "--mount", "--mount-proc",
		SystemdPath, "--system", "--unit=" + target, "--log-level=info", "--log-target=kmsg"}
	for _, m := range systemdMasks {
		args = append(args, "systemd.mask="+m)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "systemd.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "container=unshare")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if s.unshare, err = start(cmd); err != nil {
		t.Fatal(err)
	}
	s.pid = findChild(t, s.unshare, SystemdPath)

	var state string
	if !poll(30*time.Second, func() bool {
		state, _ = s.Systemctl("is-system-running")
		state = strings.TrimSpace(state)
		return state == "running" || state == "degraded" || s.unshare.exited()
	}) || s.unshare.exited() {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("systemd (pid %d) not running within 30s: is-system-running says %q; its output: %s; its log:\n%s",
			s.pid, state, b, strings.Join(s.Log(), "\n"))
	}
	for _, m := range systemdMasks {
		if got := s.Show(m, "LoadState")["LoadState"]; got != "masked" {
			t.Fatalf("%s is %q in the booted systemd, want masked: it could empty /tmp", m, got)
		}
	}
	s.checkMarker("after the boot")
	return s
}

// checkMarker fails the test loudly if /tmp lost the marker file.
func (s *Systemd) checkMarker(when string) {
	if _, err := os.Stat(s.marker); err != nil {
		s.t.Errorf("/tmp lost the marker file %s %s (%v): something emptied /tmp", s.marker, when, err)
	}
}

// PID returns systemd's pid as seen from outside.
func (s *Systemd) PID() int { return s.pid }

// Unit returns the full name of this boot's unit name: ID-name.
func (s *Systemd) Unit(name string) string { return s.ID + "-" + name }

// WriteUnit writes the unit [Systemd.Unit](name) to /etc/systemd/system,
// makes systemd load it (daemon-reload), and returns its full name. The
// file is removed at the teardown. Give the unit DefaultDependencies=no, so
// that it pulls in nothing of a normal boot.
func (s *Systemd) WriteUnit(name, content string) string {
	s.t.Helper()
	unit := s.Unit(name)
	s.writeFile(unit, content)
	if out, err := s.Systemctl("daemon-reload"); err != nil {
		s.t.Fatalf("daemon-reload: %v: %s", err, out)
	}
	return unit
}

func (s *Systemd) writeFile(unit, content string) {
	s.t.Helper()
	path := filepath.Join(unitDir, unit)
	s.written = append(s.written, path)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// Systemctl runs systemctl ARGS inside the namespace (nsenter --target
// SYSTEMD --pid --mount), bounded by a minute, and returns its output.
func (s *Systemd) Systemctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append([]string{"--target", strconv.Itoa(s.pid), "--pid", "--mount", "systemctl", "--no-pager", "--no-ask-password"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("systemctl %s: no answer within a minute", strings.Join(args, " "))
	}
	return string(out), err
}

// Show returns properties of unit (systemctl show -p A,B,...), such as
// MainPID (a pid inside the namespace: see [Systemd.HostPID]),
// ActiveState, SubState, Result, NRestarts, ExecMainStatus.
func (s *Systemd) Show(unit string, props ...string) map[string]string {
	s.t.Helper()
	out, err := s.Systemctl("show", "-p", strings.Join(props, ","), unit)
	if err != nil {
		s.t.Fatalf("%v: %s", err, out)
	}
	m := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// MainPID returns the unit's MainPID, a pid inside the namespace (0 when
// it has none).
func (s *Systemd) MainPID(unit string) int {
	pid, _ := strconv.Atoi(s.Show(unit, "MainPID")["MainPID"])
	return pid
}

// HostPID returns the pid, as seen from outside, of the process whose pid
// inside the namespace is nsPID, or 0 if there is none.
func (s *Systemd) HostPID(nsPID int) int { return hostPID(s.pid, nsPID) }

// Log returns the lines systemd wrote to the kernel's ring buffer (dmesg)
// about this boot's units. The kernel rate-limits writes to /dev/kmsg
// (printk_devkmsg=ratelimit) and drops lines of a busy systemd; its
// "N output lines suppressed" notices since the boot are included, so that
// a missing line is not taken for something systemd did not do.
func (s *Systemd) Log() []string {
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		return []string{"dmesg: " + err.Error()}
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, s.ID) || len(lines) > 0 && strings.Contains(l, "systemd: ") && strings.Contains(l, "suppressed due to ratelimiting") {
			lines = append(lines, l)
		}
	}
	return lines
}

// Killed returns the lines of [Systemd.Log] in which systemd sends unit's
// processes SIGKILL: a stop that did not let the service finish.
func (s *Systemd) Killed(unit string) []string {
	var lines []string
	for _, l := range s.Log() {
		if strings.Contains(l, unit+": Killing process") && strings.Contains(l, "SIGKILL") {
			lines = append(lines, l)
		}
	}
	return lines
}

// Shutdown kills systemd and the unshare process by pid (the kernel kills
// every other process of the namespace with its PID 1), waits until they
// are gone, removes the unit files written and the cgroups systemd made for
// them, and checks that /tmp still holds the marker. It may be called more
// than once; t.Cleanup calls it.
func (s *Systemd) Shutdown() {
	if s.down {
		return
	}
	s.down = true
	if s.unshare != nil {
		// systemd, or (if the boot failed before it was found) whatever
		// unshare forked: once unshare is gone it would be nobody's.
		victims := ChildrenOf(s.unshare.pid())
		if s.pid > 0 {
			victims = append(victims, s.pid)
		}
		for _, pid := range victims {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if _, err := s.unshare.stop(syscall.SIGKILL, 0); err != nil {
			s.t.Error(err)
		}
		for _, pid := range victims {
			if !WaitGone(pid, 10*time.Second) {
				s.t.Errorf("systemd (pid %d) still running 10s after SIGKILL", pid)
			}
		}
	}
	for _, path := range s.written {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.t.Errorf("remove unit file: %v", err)
		}
		removeCgroups(filepath.Base(path))
	}
	s.checkMarker("after the teardown")
	os.Remove(s.marker)
}

// removeCgroups removes the (empty) cgroups systemd made for unit in the
// machine's hierarchies, which the namespace shares: rmdir only, which
// fails on a cgroup that still has processes.
func removeCgroups(unit string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/system.slice/" + unit)
	dirs2, _ := filepath.Glob("/sys/fs/cgroup/system.slice/" + unit)
	for _, d := range append(dirs, dirs2...) {
		poll(5*time.Second, func() bool {
			err := syscall.Rmdir(d)
			return err == nil || errors.Is(err, os.ErrNotExist)
		})
	}
}

// sweepStaleUnits removes the unit files of boots whose test process is
// gone (killed by a test timeout, which runs no cleanup). Files of a live
// test process, this one's or another engineer's, are left alone.
func sweepStaleUnits() {
	paths, _ := filepath.Glob(filepath.Join(unitDir, unitPrefix+"*"))
	for _, p := range paths {
		rest := strings.TrimPrefix(filepath.Base(p), unitPrefix)
		owner, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(owner)
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			os.Remove(p)
		}
	}
}
