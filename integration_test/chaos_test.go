//go:build linux

package integration_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/load"
	"github.com/daemonize-dev/daemonize/internal/proc"
)

// TestChaos runs a seeded random mix of what a service meets, under load:
// storms of SIGUSR1, SIGHUP, good, broken and hung binaries installed by
// rename, restarts through the deploy command, SIGKILL of the new or the
// old process in the middle of a restart; then a stop. Throughout it checks
// the process model: never more than two generations alive, the pid file
// names a live process, every deploy command gets an answer, no request
// fails but those of a process it killed, and nothing is left after the
// stop. DAEMONIZE_CHAOS=5m runs longer; DAEMONIZE_CHAOS_SEED=N replays a
// run.
func TestChaos(t *testing.T) {
	t.Parallel()
	length := 15 * time.Second
	if d, err := time.ParseDuration(os.Getenv("DAEMONIZE_CHAOS")); err == nil && d > 0 {
		length = d
	}
	seed := uint64(time.Now().UnixNano())
	if n, err := strconv.ParseUint(os.Getenv("DAEMONIZE_CHAOS_SEED"), 10, 64); err == nil {
		seed = n
	}
	t.Logf("chaos for %s, seed %d (DAEMONIZE_CHAOS_SEED=%d replays it)", length, seed, seed)
	rnd := rand.New(rand.NewPCG(seed, seed))

	s := newServer(t, exampleBin)
	pid := s.start("-upgrade-timeout", "1s", "-drain", "3s")
	c := &chaos{t: t, s: s, kills: make(map[int]time.Time)}
	t.Cleanup(func() {
		if t.Failed() {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Logf("seed %d failed; what it did:\n%s", seed, strings.Join(c.steps, "\n"))
		}
	})

	bg := startLoad(t, load.Config{Addr: s.addr, KeepAlive: 2, NewConn: 2, Slow: 1,
		SlowPath: "/sleep?d=200ms", MaxDuration: length + scale(time.Minute), Timeout: scale(20 * time.Second)})
	watching := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() { c.watch(watching) })

	var deploys sync.WaitGroup
	end := time.Now().Add(length)
	good := true // what the executable at the path is
	for step := 0; time.Now().Before(end); step++ {
		pid = c.serving(pid)
		switch k := rnd.IntN(10); {
		case k < 3:
			n := 1 + rnd.IntN(20)
			c.logf("step %d: %d SIGUSR1 to %d", step, n, pid)
			for range n {
				syscall.Kill(pid, syscall.SIGUSR1)
			}
		case k == 3:
			c.logf("step %d: SIGHUP to %d", step, pid)
			syscall.Kill(pid, syscall.SIGHUP)
		case k == 4:
			switch b := rnd.IntN(4); b {
			case 0, 1:
				c.logf("step %d: install the good binary", step)
				s.install([]string{exampleBin, exampleV2}[b])
				good = true
			case 2:
				c.logf("step %d: install a broken binary", step)
				s.installScript("#!/bin/sh\necho chaos: broken >&2\nexit 1\n")
				good = false
			case 3:
				c.logf("step %d: install a hung binary", step)
				s.installScript("#!/bin/sh\nexec sleep 600\n")
				good = false
			}
		case k == 5:
			c.logf("step %d: daemonize restart", step)
			deploys.Go(func() { c.deploy() })
		case k == 6:
			// A process being started: kill the newest child of the
			// serving process (a new generation, or a hung script). It
			// is stopped while it is looked at, so that it cannot declare
			// itself ready in between: one that did serves already, and
			// killing it would be a crash of the service, not of a
			// restart.
			if kids := childrenOf(pid); len(kids) > 0 {
				child := kids[len(kids)-1]
				syscall.Kill(child, syscall.SIGSTOP)
				if declaredReady(child) {
					syscall.Kill(child, syscall.SIGCONT)
					c.logf("step %d: new process %d of %d is ready already: not killed", step, child, pid)
				} else {
					c.logf("step %d: SIGKILL new process %d of %d", step, child, pid)
					syscall.Kill(child, syscall.SIGKILL)
				}
			}
		case k == 7 && good:
			// The old process, while a good new one starts: the new one
			// carries on alone. Only then is the service left with a
			// process to serve.
			syscall.Kill(pid, syscall.SIGUSR1)
			var child int
			proc.Poll(500*time.Millisecond, func() bool {
				for _, k := range childrenOf(pid) {
					if c.isGeneration(k) && reachedNew(k) {
						child = k
					}
				}
				return child != 0
			})
			if child != 0 {
				c.logf("step %d: SIGKILL old process %d while %d starts", step, pid, child)
				c.kill(pid)
				pid = child
			}
		}
		time.Sleep(time.Duration(20+rnd.IntN(250)) * time.Millisecond)
	}

	// Calm down: the good binary, one restart that must succeed, a stop.
	s.install(exampleBin)
	deploys.Wait()
	waitFor(t, 30*time.Second, "one process to serve", func() bool {
		procs := c.generations()
		p, err := s.readPID()
		return err == nil && len(procs) == 1 && procs[0] == p
	})
	pid = s.mustPID()
	restart := func() (int, string) {
		return tool(t, "restart", "-pidfile", s.pidFile, "-timeout", scale(30*time.Second).String())
	}
	// A process that took the service back hands over no more (a
	// process hands over once): the deploy command says so at once,
	// and the documented remedy, a stop and a start, follows the load.
	code, out := restart()
	tookBack := code == 1 && strings.Contains(out, "took the service back")
	if code != 0 && !tookBack {
		t.Errorf("restart after the chaos: exit %d: %s", code, out)
	}
	pid = s.mustPID()
	res := bg.stop()
	close(watching)
	watch.Wait()
	if tookBack {
		t.Logf("the chaos ended in a take-back (%s): stop, start, restart", strings.TrimSpace(out))
		s.signal(pid, syscall.SIGTERM)
		if code := mustExit(t, pid, 30*time.Second); code != 0 {
			t.Errorf("stop after the take-back: exit %d", code)
		}
		s.checkPIDFileGone()
		waitFor(t, 20*time.Second, "every process of the service to exit", func() bool { return len(c.generations()) == 0 })
		s.start("-upgrade-timeout", "1s", "-drain", "3s")
		if code, out := restart(); code != 0 {
			t.Errorf("restart after the stop and start: exit %d: %s", code, out)
		}
		pid = s.mustPID()
	}
	s.signal(pid, syscall.SIGTERM)
	if code := mustExit(t, pid, 30*time.Second); code != 0 {
		t.Errorf("stop after the chaos: exit %d", code)
	}
	s.checkPIDFileGone()
	waitFor(t, 20*time.Second, "every process of the service to exit", func() bool { return len(c.generations()) == 0 })

	c.checkFailures(res)
	t.Logf("seed %d: %v; deploy commands by exit code: %v; %d old processes SIGKILLed mid-restart", seed, res, c.answers, len(c.kills))
}

// chaos is the state of TestChaos.
type chaos struct {
	t *testing.T
	s *server

	mu      sync.Mutex
	steps   []string
	kills   map[int]time.Time // processes SIGKILLed, and when
	answers map[int]int       // exit codes of the deploy commands
}

func (c *chaos) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (c *chaos) kill(pid int) {
	c.mu.Lock()
	c.kills[pid] = time.Now()
	c.mu.Unlock()
	c.s.track(pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

// serving returns the process the pid file names, or last.
func (c *chaos) serving(last int) int {
	if p, err := c.s.readPID(); err == nil && alive(p) {
		c.s.track(p)
		return p
	}
	return last
}

// isGeneration reports whether pid is a process of the service: it runs
// the program at the service's path (or a binary that was there), not a
// script installed in its place nor the deploy command.
func (c *chaos) isGeneration(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasPrefix(exe, c.s.bin) && alive(pid)
}

// generations lists the processes of the service.
func (c *chaos) generations() []int {
	return processesWhere(c.isGeneration)
}

// deploy runs daemonize restart, which must answer: 0 or 1, never a
// timeout.
func (c *chaos) deploy() {
	ctx, cancel := context.WithTimeout(context.Background(), scale(60*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, toolBin, "restart", "-pidfile", c.s.pidFile, "-timeout", scale(30*time.Second).String())
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	c.logf("daemonize restart: exit %d: %s", code, strings.TrimSpace(string(out)))
	c.mu.Lock()
	if c.answers == nil {
		c.answers = make(map[int]int)
	}
	c.answers[code]++
	c.mu.Unlock()
	if code != 0 && code != 1 {
		c.t.Errorf("daemonize restart got no answer: exit %d: %s", code, out)
	}
}

// watch checks the process model until stop is closed: at most two
// generations alive, and the pid file naming a live process, unless the
// chaos killed that one a moment ago. A process counts once seen in 25
// samples in a row (50 ms or more) and running threads: a child cloned
// with CLONE_VFORK (Go's start of a process, and its CLONE_PIDFD probe)
// carries its parent's executable with one thread until it execs or
// exits, and under CPU contention it waited over 50 ms for a CPU.
func (c *chaos) watch(stop <-chan struct{}) {
	streak := make(map[int]int)
	for {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		next := make(map[int]int)
		var stable []int
		c.mu.Lock()
		killed := maps.Clone(c.kills)
		c.mu.Unlock()
		for _, p := range c.generations() {
			if _, ok := killed[p]; ok {
				continue // dying
			}
			c.s.track(p)
			if next[p] = streak[p] + 1; next[p] >= 25 && threads(p) > 1 {
				stable = append(stable, p)
			}
		}
		streak = next
		if len(stable) > 2 {
			c.t.Errorf("more than two generations alive:\n%s", describeProcs(stable))
			return
		}
		p, err := c.s.readPID()
		if err != nil {
			c.t.Errorf("pid file unreadable during the chaos: %v", err)
			return
		}
		at, ok := killed[p]
		if !alive(p) && !(ok && time.Since(at) < scale(5*time.Second)) && !c.gone(p) {
			c.t.Errorf("the pid file names %d, which is not alive", p)
			return
		}
	}
}

// gone reports whether p has exited after writing the pid file a moment
// ago, while a new process takes over: the pid file is checked again.
func (c *chaos) gone(p int) bool {
	time.Sleep(50 * time.Millisecond)
	q, err := c.s.readPID()
	return err == nil && q != p
}

// checkFailures fails the test for a failed request that no SIGKILL
// explains: each must come within a few seconds after one.
func (c *chaos) checkFailures(res *load.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if res.Requests == 0 {
		c.t.Errorf("no request made")
	}
	for _, at := range res.FailedAt {
		explained := false
		for _, killed := range c.kills {
			explained = explained || !at.Before(killed) && at.Sub(killed) < scale(5*time.Second)
		}
		if !explained {
			c.t.Errorf("a request failed at %s, and no process was killed in the 5 s before; first errors %q", at.Format("15:04:05.000"), res.FirstErrs)
			return
		}
	}
}

// declaredReady reports whether the new process pid has declared itself
// ready in the control block of the hand-off file (state 1, stateReady).
func declaredReady(pid int) bool {
	b, ok := controlBlock(pid)
	return ok && le32(b[0:4]) == 1
}

func le32(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24 }

// controlBlock reads the first 8 bytes of the control block of pid's
// hand-off file (state, then the child's pid), if pid is the child it names.
func controlBlock(pid int) ([8]byte, bool) {
	var b [8]byte
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		path := fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())
		if target, _ := os.Readlink(path); !strings.HasPrefix(target, "/memfd:daemonize-handoff") {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return b, false
		}
		_, err = f.ReadAt(b[:], 0)
		f.Close()
		return b, err == nil && le32(b[4:8]) == pid
	}
	return b, false
}

// reachedNew reports whether the new process pid has received its sockets
// (tableflip passes them in New, and a new process whose parent dies before
// can only exit): it has written its pid into the control block of the
// hand-off file, which the test reads through /proc.
func reachedNew(pid int) bool {
	_, ok := controlBlock(pid)
	return ok
}
