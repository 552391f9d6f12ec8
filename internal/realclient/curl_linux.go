//go:build linux

package realclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// CurlResult is one run of curl.
type CurlResult struct {
	Exit   int    // curl's exit code: 0 ok, 7 connection refused, 28 timeout, 52 empty reply, 56 reset
	Status int    // HTTP status (%{http_code}); 0 without a response
	Body   string // the response body
	Stderr string // curl's message when it failed
}

// OK reports whether curl got a complete 2xx response.
func (r CurlResult) OK() bool { return r.Exit == 0 && r.Status >= 200 && r.Status < 300 }

func (r CurlResult) String() string {
	if r.Exit != 0 {
		return fmt.Sprintf("curl exit %d: %s", r.Exit, strings.TrimSpace(r.Stderr))
	}
	return fmt.Sprintf("HTTP %d: %q", r.Status, tail(r.Body, 200))
}

// Curl runs `curl -sS --max-time 30 -w '\n%{http_code}' ARGS... URL`, with a
// new connection every time. The error is for curl not running at all.
func Curl(ctx context.Context, url string, args ...string) (CurlResult, error) {
	path, err := lookPath("curl")
	if err != nil {
		return CurlResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	argv := append([]string{"-sS", "--max-time", "30", "-w", `\n%{http_code}`}, args...)
	cmd := exec.CommandContext(ctx, path, append(argv, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return CurlResult{}, fmt.Errorf("curl %s: %w", url, err)
	}
	r := CurlResult{Exit: cmd.ProcessState.ExitCode(), Stderr: stderr.String()}
	out := stdout.String()
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		r.Body = out[:i]
		r.Status, _ = strconv.Atoi(strings.TrimSpace(out[i+1:]))
	}
	return r, nil
}

// CurlTally counts the runs of [CurlLoop].
type CurlTally struct {
	Requests int
	Failed   int
	ByExit   map[int]int // failed runs by curl's exit code (0: a non-2xx status)
	First    []string    // the first few failures
	Bodies   map[string]int
}

func (t *CurlTally) String() string {
	return fmt.Sprintf("%d requests, %d failed %v %q", t.Requests, t.Failed, t.ByExit, t.First)
}

// CurlLoop runs curl against url one run after another, every interval
// at most, until ctx is done; it returns the tally. Each run is a new
// process and a new connection, as a health check or a script makes them.
func CurlLoop(ctx context.Context, url string, interval time.Duration, args ...string) *CurlTally {
	t := &CurlTally{ByExit: make(map[int]int), Bodies: make(map[string]int)}
	for ctx.Err() == nil {
		next := time.Now().Add(interval)
		r, err := Curl(context.Background(), url, args...)
		t.Requests++
		switch {
		case err != nil:
			t.Failed++
			t.ByExit[-1]++
			if len(t.First) < 5 {
				t.First = append(t.First, err.Error())
			}
		case !r.OK():
			t.Failed++
			t.ByExit[r.Exit]++
			if len(t.First) < 5 {
				t.First = append(t.First, r.String())
			}
		default:
			t.Bodies[strings.TrimSpace(r.Body)]++
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(next)):
		}
	}
	return t
}
