//go:build linux

package realclient

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a command this package started: its pid, and its exit once
// reaped by the one goroutine that waits for it.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's, once done is closed
}

// start starts cmd and reaps it in the background.
func start(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited and been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits at most limit for the process to exit.
func (p *process) wait(limit time.Duration) bool {
	if p.exited() {
		return true
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// stop sends sig, waits at most limit, then sends SIGKILL and waits at most
// another 10 s. It reports whether the process exited after sig alone.
func (p *process) stop(sig syscall.Signal, limit time.Duration) (clean bool, err error) {
	if p.exited() {
		return true, nil
	}
	p.cmd.Process.Signal(sig)
	if p.wait(limit) {
		return true, nil
	}
	p.cmd.Process.Kill()
	if !p.wait(10 * time.Second) {
		return false, fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", p.cmd.Path, p.pid())
	}
	return false, nil
}

// exitCode returns the exit code once the process has exited, -1 if a
// signal ended it.
func (p *process) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// ChildrenOf lists the processes whose parent is ppid, zombies included, by
// reading /proc: pgrep -P without matching names.
func ChildrenOf(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

type stat struct {
	state string
	ppid  int
}

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return stat{}, errors.New("bad /proc stat")
	}
	ppid, _ := strconv.Atoi(f[1])
	return stat{state: f[0], ppid: ppid}, nil
}

// Alive reports whether pid runs: a zombie does not count.
func Alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state != "Z" && st.state != "X"
}

// WaitGone waits at most limit until pid no longer runs, and reports
// whether it stopped. It reaps pid if it is a child of the caller (the
// integration tests' process is a subreaper, so orphans become its
// children).
func WaitGone(pid int, limit time.Duration) bool {
	return poll(limit, func() bool {
		var ws syscall.WaitStatus
		if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid {
			return true
		}
		return !Alive(pid)
	})
}

// poll reports whether cond became true within limit.
func poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// lookPath finds a command that scripts/test installs.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (scripts/test installs it): %w", name, err)
	}
	return p, nil
}
