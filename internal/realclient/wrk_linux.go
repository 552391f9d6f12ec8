//go:build linux

package realclient

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// WrkConfig says how to run wrk: HTTP/1.1 keep-alive connections, each
// sending its next request as soon as the last response is complete, and
// never retrying one.
type WrkConfig struct {
	URL         string        // http://127.0.0.1:PORT/path
	Connections int           // -c; 0 means 4
	Threads     int           // -t; 0 means 1 (at most Connections)
	Duration    time.Duration // -d, whole seconds, at least 1 s: the longest the run lasts
	Timeout     time.Duration // --timeout per request; 0 means 10 s
}

// RunWrk runs wrk until Duration has passed or ctx is done, whichever comes
// first; in the second case it stops wrk with SIGINT, on which wrk prints
// its summary as at the end of the run. It returns the parsed summary; the
// error says why there is none.
func RunWrk(ctx context.Context, c WrkConfig) (*WrkResult, error) {
	path, err := lookPath("wrk")
	if err != nil {
		return nil, err
	}
	if c.Connections <= 0 {
		c.Connections = 4
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	c.Threads = min(c.Threads, c.Connections)
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	secs := max(1, int((c.Duration+time.Second-1)/time.Second))
	cmd := exec.Command(path, "-t", strconv.Itoa(c.Threads), "-c", strconv.Itoa(c.Connections),
		"-d", fmt.Sprintf("%ds", secs), "--timeout", fmt.Sprintf("%ds", max(1, int(c.Timeout/time.Second))), c.URL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return runSummary(ctx, cmd, &out, time.Duration(secs)*time.Second, ParseWrk)
}

// runSummary runs a load generator that prints a summary when it ends or
// gets SIGINT, and parses it. The run is bounded by limit plus 30 s.
func runSummary[R any](ctx context.Context, cmd *exec.Cmd, out *bytes.Buffer, limit time.Duration, parse func(string) (R, error)) (R, error) {
	var zero R
	p, err := start(cmd)
	if err != nil {
		return zero, err
	}
	hard := time.NewTimer(limit + 30*time.Second)
	defer hard.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(syscall.SIGINT, 10*time.Second)
	case <-hard.C:
		p.stop(syscall.SIGINT, 10*time.Second)
		return zero, fmt.Errorf("%s ran past its duration (%s) by 30s and was stopped: %s", cmd.Path, limit, tail(out.String(), 500))
	}
	<-p.done
	r, err := parse(out.String())
	if err != nil && p.err != nil {
		err = fmt.Errorf("%s: %v; %w", cmd.Path, p.err, err)
	}
	return r, err
}
