//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

// pollEvery is how often a condition is checked while waiting for it.
const pollEvery = 500 * time.Microsecond

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
	err := proc.PollUntil(context.Background(), time.Now().Add(10*time.Second), pollEvery, func() bool {
		// Children nobody told us about: a daemon whose launcher we
		// killed before it said where the daemon was.
		for _, pid := range proc.Children(os.Getpid()) {
			if g, err := unix.Getpgid(pid); err == nil {
				killGroup(g)
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		// Reap every child that has exited; done once none is left.
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.ECHILD) {
				return true
			}
			if pid <= 0 {
				return false
			}
		}
	})
	if err != nil {
		return fmt.Errorf("processes left after killing them: %v", proc.Children(os.Getpid()))
	}
	return nil
}

// close kills and reaps everything, and refuses to start anything after.
func (p *procs) close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return p.killAll()
}

// clean reports whether a process exited with status 0, or was not ours to
// tell.
func clean(e proc.Exit) bool { return !e.Known || e.Status.Exited() && e.Status.ExitStatus() == 0 }

// poll checks cond every pollEvery until it holds, limit passes or ctx ends.
func poll(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	err := proc.PollUntil(ctx, time.Now().Add(limit), pollEvery, cond)
	if errors.Is(err, proc.ErrTimeout) {
		return fmt.Errorf("%s: not within %s", what, limit)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// waitGone waits until pid has exited and reaps it; see [proc.Reap].
func waitGone(ctx context.Context, pid int, limit time.Duration) (proc.Exit, error) {
	var e proc.Exit
	err := poll(ctx, limit, fmt.Sprintf("process %d to exit", pid), func() bool {
		var ok bool
		ok, e = proc.Reap(pid)
		return ok
	})
	return e, err
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

// probe sends GET / on a new connection, over TLS with useTLS, and returns
// the pid the server says it has.
func probe(addr string, useTLS bool) (int, error) {
	var c net.Conn
	var err error
	if useTLS {
		d := &net.Dialer{Timeout: time.Second}
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
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
