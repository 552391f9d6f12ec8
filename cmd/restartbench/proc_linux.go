//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollEvery is how often a condition is checked while waiting for it.
const pollEvery = 500 * time.Microsecond

// becomeSubreaper makes this process the reaper of every process it starts
// and of their descendants: a daemon orphaned by its launcher, or a
// generation whose parent generation exited, is reparented to it, so that
// it can see them exit and reap them.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	return nil
}

// procs keeps the process groups of the servers the tool starts, so that
// they and every generation they restart into are killed and reaped at the
// end, whatever happens.
type procs struct {
	mu     sync.Mutex
	groups map[int]bool
	closed bool
}

func newProcs() *procs { return &procs{groups: make(map[int]bool)} }

// start starts a command in a session of its own (so a new process group),
// with its output appended to the file logPath. The caller observes its end
// with [gone], not Wait. A session of its own, as a daemon has: with Linux's
// sched_autogroup each session is scheduled as a group, so a server in the
// tool's session would share the load generator's group, and a detached
// one would not.
func (p *procs) start(logPath, bin string, args ...string) (pid int, err error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Held while starting, so that a process is either started before
	// killAll runs or not at all.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("stopping")
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid = cmd.Process.Pid
	p.groups[pid] = true
	cmd.Process.Release()
	return pid, nil
}

// addGroup adds the process group of pid, such as the session a daemon
// created for itself, to the groups killed at the end.
func (p *procs) addGroup(pid int) {
	pgid, err := unix.Getpgid(pid)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.groups[pgid] = true
	p.mu.Unlock()
}

// killAll kills every process the tool started, with their descendants,
// and reaps them. It returns an error if some are left after a while.
func (p *procs) killAll() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	self := unix.Getpgrp()
	killGroup := func(pgid int) {
		if pgid > 1 && pgid != self {
			unix.Kill(-pgid, unix.SIGKILL)
		}
	}
	for g := range p.groups {
		killGroup(g)
	}
	clear(p.groups)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// Children nobody told us about: a daemon whose launcher we
		// killed before it said where the daemon was.
		for _, pid := range children() {
			if g, err := unix.Getpgid(pid); err == nil {
				killGroup(g)
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return nil
		case pid == 0:
			time.Sleep(pollEvery)
		}
	}
	return fmt.Errorf("processes left after killing them: %v", children())
}

// close kills and reaps everything, and refuses to start anything after.
func (p *procs) close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return p.killAll()
}

// procStat is what the tool reads of /proc/<pid>/stat.
type procStat struct {
	state byte
	ppid  int
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	ppid, err := strconv.Atoi(f[1])
	return procStat{state: f[0][0], ppid: ppid}, err
}

// children lists the processes whose parent is this one.
func children() []int {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// exitStatus is how a process ended, when it was our child.
type exitStatus struct {
	known bool
	ws    unix.WaitStatus
}

func (s exitStatus) clean() bool { return !s.known || s.ws.Exited() && s.ws.ExitStatus() == 0 }

func (s exitStatus) String() string {
	switch {
	case !s.known:
		return "unknown"
	case s.ws.Signaled():
		return "killed by " + s.ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(s.ws.ExitStatus())
}

// gone reports whether pid has exited, and reaps it if it is our child.
func gone(pid int) (bool, exitStatus) {
	var ws unix.WaitStatus
	got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	if got == pid {
		return true, exitStatus{known: true, ws: ws}
	}
	if !errors.Is(err, unix.ECHILD) {
		return false, exitStatus{}
	}
	// Not our child: its parent reaps it. A zombie has exited.
	st, err := readStat(pid)
	return err != nil || st.state == 'Z' || st.state == 'X', exitStatus{}
}

// poll checks cond every pollEvery until it holds, limit passes or ctx ends.
func poll(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// waitGone waits until pid has exited and reaps it.
func waitGone(ctx context.Context, pid int, limit time.Duration) (exitStatus, error) {
	var status exitStatus
	err := poll(ctx, limit, fmt.Sprintf("process %d to exit", pid), func() bool {
		var ok bool
		ok, status = gone(pid)
		return ok
	})
	return status, err
}

// readPID returns the pid in a pid file, or 0.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// probe sends GET / on a new connection and returns the pid the server
// says it has.
func probe(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || err != nil {
		return 0, fmt.Errorf("GET /: status %d, %q, %v", resp.StatusCode, line, err)
	}
	var pid int
	if _, err := fmt.Sscanf(line, "pid=%d", &pid); err != nil {
		return 0, fmt.Errorf("GET /: %q: %w", line, err)
	}
	return pid, nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// findGo returns the go command: the one on PATH, else the one of the Go
// installation this tool was built with.
func findGo() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// The tool runs on the machine it was built on (go run, or go build
	// then run), so the Go tree it was built with is there.
	//lint:ignore SA1019 the fallback for when go is not on PATH
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// tail returns the last lines of the file at path, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}
