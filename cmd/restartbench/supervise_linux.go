//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// superviseResult compares restarts with and without Options.Supervise,
// and measures the supervisor.
type superviseResult struct {
	Restarts   int   `json:"restarts"`
	Plain      stats `json:"signal_to_ready_plain"`      // without Supervise
	Supervised stats `json:"signal_to_ready_supervised"` // with it
	// The supervisor's resident memory, KiB, once the service serves and
	// after the restarts, and the CPU time it used over the restarts.
	RSSAtRest  int64         `json:"supervisor_rss_at_rest_kib"`
	RSSAfter   int64         `json:"supervisor_rss_after_kib"`
	CPUAtRest  time.Duration `json:"supervisor_cpu_at_rest"`  // over one second at rest
	CPURestart time.Duration `json:"supervisor_cpu_restarts"` // over all the restarts
	Error      string        `json:"error,omitempty"`
}

// supervisePart restarts the example with and without -supervise, in turns
// and without load: signal -> the status file names a new generation and
// it answers GET /. The supervised one's signal goes to the supervisor,
// which passes it on.
func (b *bench) supervisePart(ctx context.Context) *superviseResult {
	n := b.cfg.SuperviseRestarts
	r := &superviseResult{Restarts: n}
	defer b.stopAll(&r.Error)
	b.logf("supervise: %d restarts with and without -supervise, in turns", n)
	plain, err := b.libraryServer("supervise-plain")
	if err == nil {
		err = plain.start(ctx)
	}
	var sup *server
	if err == nil {
		sup, err = b.libraryServer("supervise-supervised")
	}
	if err == nil {
		sup.cmd = append(sup.cmd, "-supervise")
		err = sup.startSupervised(ctx)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	supervisor := readPID(sup.pidFile)
	r.RSSAtRest = rssKiB(supervisor)
	cpu0 := cpuTime(supervisor)
	time.Sleep(time.Second)
	cpu1 := cpuTime(supervisor)
	r.CPUAtRest = cpu1 - cpu0
	var ps, ss []time.Duration
	for range n {
		ready, err := plain.restartByStatus(ctx, plain.pid)
		if err != nil {
			r.Error = err.Error()
			break
		}
		ps = append(ps, ready)
		ready, err = sup.restartByStatus(ctx, supervisor)
		if err != nil {
			r.Error = err.Error()
			break
		}
		ss = append(ss, ready)
	}
	r.CPURestart = cpuTime(supervisor) - cpu1
	r.RSSAfter = rssKiB(supervisor)
	r.Plain, r.Supervised = summarize(ps), summarize(ss)
	return r
}

// startSupervised starts a detached, supervised server: the pid file names
// the supervisor, and s.pid is the generation that answers.
func (s *server) startSupervised(ctx context.Context) error {
	pid, err := s.b.procs.start(s.logPath, s.cmd[0], s.cmd[1:]...)
	if err != nil {
		return fmt.Errorf("%s: start: %w", s.name, err)
	}
	st, err := waitGone(ctx, pid, startLimit)
	if err == nil && !clean(st) {
		err = fmt.Errorf("launcher: %v", st)
	}
	if err != nil {
		return s.fail(err)
	}
	supervisor := readPID(s.pidFile)
	if supervisor == 0 {
		return s.fail(fmt.Errorf("the launcher exited 0 but the pid file names no process"))
	}
	s.b.procs.addGroup(supervisor)
	return poll(ctx, startLimit, "a generation to serve", func() bool {
		got, err := probe(s.addr, s.tls)
		if err == nil && got != 0 && got != supervisor {
			s.pid = got
			return true
		}
		return false
	})
}

// restartByStatus sends the restart signal to target (the serving
// generation, or the supervisor) and returns the time until the status
// file names a new generation and it answers GET /; it waits for the old
// one to exit. The status file says when to probe, with or without a
// supervisor, whose pid file names it throughout: probing all along would
// load the old process while it starts the new one.
func (s *server) restartByStatus(ctx context.Context, target int) (time.Duration, error) {
	old := s.pid
	t0 := time.Now()
	if err := syscall.Kill(target, s.sig); err != nil {
		return 0, s.fail(err)
	}
	err := poll(ctx, readyLimit, "a new generation to serve", func() bool {
		st, err := daemonize.ReadStatus(s.pidFile)
		if err != nil || st.PID == 0 || st.PID == old {
			return false
		}
		got, err := probe(s.addr, s.tls)
		if err == nil && got == st.PID {
			s.pid = got
			return true
		}
		return false
	})
	if err != nil {
		return 0, s.fail(err)
	}
	ready := time.Since(t0)
	if _, err := waitGone(ctx, old, goneLimit); err != nil {
		return 0, s.fail(err)
	}
	return ready, nil
}

// cpuTime returns the user and system time pid has used, from
// /proc/<pid>/stat (in clock ticks of 10 ms), or 0.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// print prints the supervise part.
func (x *superviseResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nSupervise: the example restarted with and without -supervise, %d times each in turns, no load;\n", x.Restarts)
	fmt.Fprintf(w, "signal (to the supervisor, which passes it on) -> a new generation answers GET /, p50 / p95 / max:\n")
	fmt.Fprintf(w, "  without  %s / %s / %s\n", ms(x.Plain.P50), ms(x.Plain.P95), ms(x.Plain.Max))
	fmt.Fprintf(w, "  with     %s / %s / %s  (p50 %.2fx)\n", ms(x.Supervised.P50), ms(x.Supervised.P95), ms(x.Supervised.Max), ratio(x.Supervised.P50, x.Plain.P50))
	fmt.Fprintf(w, "  the supervisor: %.1f MiB resident at rest, %.1f MiB after the restarts; CPU %s over 1 s at rest, %s over the restarts\n",
		float64(x.RSSAtRest)/1024, float64(x.RSSAfter)/1024, x.CPUAtRest, x.CPURestart)
	if x.Error != "" {
		fmt.Fprintf(w, "  ERROR: %s\n", x.Error)
	}
}
