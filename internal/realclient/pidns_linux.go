//go:build linux

package realclient

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PIDNamespace is a command running as PID 1 of a new PID namespace, as a
// container runtime starts one: unshare --pid --fork --mount-proc CMD.
// When that process exits, the kernel kills every other process of the
// namespace.
type PIDNamespace struct {
	t       testing.TB
	unshare *process
	inner   int // host pid of the namespace's PID 1
}

// StartInPIDNamespace starts argv as PID 1 of a new PID namespace, with
// env added to the environment and its output appended to the file
// output, finds its pid as seen from outside, and kills it in t.Cleanup.
func StartInPIDNamespace(t testing.TB, output string, env []string, argv ...string) *PIDNamespace {
	t.Helper()
	path, err := lookPath("unshare")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(path, append([]string{"--pid", "--fork", "--mount-proc"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ns := &PIDNamespace{t: t}
	if ns.unshare, err = start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Kill)
	ns.inner = findChild(t, ns.unshare, argv[0])
	return ns
}

// findChild waits for the child of p (started with unshare --fork) that
// runs executable path (by /proc/PID/cmdline's first word), and returns its
// pid.
func findChild(t testing.TB, p *process, path string) int {
	t.Helper()
	var pid int
	if !poll(10*time.Second, func() bool {
		for _, c := range ChildrenOf(p.pid()) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); err == nil && strings.SplitN(string(b), "\x00", 2)[0] == path {
				pid = c
				return true
			}
		}
		return p.exited()
	}) || pid == 0 {
		t.Fatalf("no child of unshare (pid %d) runs %s within 10s (unshare exited: %v)", p.pid(), path, p.exited())
	}
	return pid
}

// PID returns the pid, as seen from outside, of the namespace's PID 1.
func (ns *PIDNamespace) PID() int { return ns.inner }

// UnsharePID returns the pid of the unshare process, PID 1's parent.
func (ns *PIDNamespace) UnsharePID() int { return ns.unshare.pid() }

// Wait waits at most limit for PID 1 to exit, and returns unshare's exit
// code, which is PID 1's (-1 if a signal ended it; unshare then kills
// itself with the same signal). ok is false if it did not exit.
func (ns *PIDNamespace) Wait(limit time.Duration) (code int, ok bool) {
	if !ns.unshare.wait(limit) {
		return 0, false
	}
	return ns.unshare.exitCode(), true
}

// Kill kills PID 1 (and so the whole namespace) and the unshare process by
// pid, and reaps them. Kill may be called more than once.
func (ns *PIDNamespace) Kill() {
	if ns.unshare.exited() {
		return
	}
	if ns.inner > 0 {
		syscall.Kill(ns.inner, syscall.SIGKILL)
	}
	ns.unshare.stop(syscall.SIGKILL, 0)
	if ns.inner > 0 && !WaitGone(ns.inner, 10*time.Second) {
		ns.t.Errorf("PID 1 of the namespace (pid %d) still running 10s after SIGKILL", ns.inner)
	}
}

// NSPID returns the pid that pid (as seen from outside) has in its own
// innermost PID namespace, from /proc/PID/status's NSpid line.
func NSPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[len(f)-1])
		}
	}
	return 0, fmt.Errorf("no NSpid line in /proc/%d/status", pid)
}

// hostPID returns the pid, as seen from outside, of the process whose pid
// is nsPID in the PID namespace of process ref (0 if there is none).
func hostPID(ref, nsPID int) int {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", ref))
	if err != nil {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if got, err := NSPID(pid); err != nil || got != nsPID {
			continue
		}
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && other == ns {
			return pid
		}
	}
	return 0
}
