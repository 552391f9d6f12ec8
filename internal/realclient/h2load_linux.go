//go:build linux

package realclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// H2loadConfig says how to run h2load: Clients connections with up to
// Streams requests in flight on each, for Duration or for Requests in all.
type H2loadConfig struct {
	URL      string        // https:// for h2 over TLS (ALPN), http:// for h2c with prior knowledge
	Clients  int           // -c; 0 means 4
	Streams  int           // -m, concurrent streams per client; 0 means 1
	Threads  int           // -t; 0 means 1
	Duration time.Duration // -D, whole seconds; or
	Requests int           // -n when Duration is 0
	H1       bool          // --h1: HTTP/1.1 instead of HTTP/2
	Extra    []string      // more arguments, before the URL
}

// RunH2load runs h2load and returns its parsed summary. h2load prints
// none when interrupted: give it the Duration the measurement needs, and
// cancel ctx only to give up (it is then stopped and an error returned).
func RunH2load(ctx context.Context, c H2loadConfig) (*H2loadResult, error) {
	path, err := lookPath("h2load")
	if err != nil {
		return nil, err
	}
	if c.Clients <= 0 {
		c.Clients = 4
	}
	if c.Streams <= 0 {
		c.Streams = 1
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	args := []string{"-c", strconv.Itoa(c.Clients), "-m", strconv.Itoa(c.Streams), "-t", strconv.Itoa(c.Threads)}
	limit := 5 * time.Minute
	switch {
	case c.Duration > 0:
		secs := max(1, int((c.Duration+time.Second-1)/time.Second))
		args = append(args, "-D", strconv.Itoa(secs))
		limit = time.Duration(secs) * time.Second
	case c.Requests > 0:
		args = append(args, "-n", strconv.Itoa(c.Requests))
	default:
		return nil, errors.New("realclient: H2loadConfig needs Duration or Requests")
	}
	if c.H1 {
		args = append(args, "--h1")
	}
	args = append(append(args, c.Extra...), c.URL)
	cmd := exec.Command(path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r, err := runSummary(ctx, cmd, &out, limit, ParseH2load)
	if err != nil {
		return r, fmt.Errorf("h2load %v: %w", args, err)
	}
	return r, nil
}
