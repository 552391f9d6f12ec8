// Package load drives an HTTP server with clients that never retry, and
// counts every failed request by kind. It is shared by the integration tests
// and cmd/restartbench.
//
// The clients speak HTTP/1.1 on raw connections: Go's http.Transport retries
// an idempotent request when a reused connection turns out to be closed,
// which would hide the very races a zero-downtime restart must not have.
// curl, wrk and a browser's POST do not retry.
package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Config says how to load the server.
type Config struct {
	Addr        string        // host:port, loopback only
	KeepAlive   int           // clients that reuse one connection until the server closes it
	NewConn     int           // clients that open a connection per request
	Slow        int           // clients that request SlowPath, each on a new connection
	Path        string        // path of fast requests; "/" if empty
	SlowPath    string        // path of slow requests, such as "/sleep?d=300ms"
	MaxRequests int64         // stop after this many requests in all; 0: no limit
	MaxDuration time.Duration // stop after this long; required
	Timeout     time.Duration // per request; 0: 30s
	RecordEnds  bool          // keep the end time of each successful fast request in Result.Ends
	// IdleRace is the server's idle grace: a failed request sent this long
	// or more after its connection began to be opened, or after the
	// previous request on it was sent, counts in Result.IdleRaced too. 0:
	// none does.
	IdleRace time.Duration
}

// Result counts what happened.
type Result struct {
	Requests int64            // requests completed or failed
	Failed   int64            // requests that got no complete 200 response
	Failures map[string]int64 // failed requests by kind
	// IdleRaced counts the failed requests that may have met the race a
	// server's close of an idle connection always has with a client sending
	// on it. The server's idle time starts after the client began to open
	// the connection, or after it sent the previous request on it (the
	// server answered later), so a request sent less than Config.IdleRace
	// after that cannot have met it: only the others count. A new
	// connection that has carried nothing yet is idle to a server too.
	IdleRaced int64
	FirstErrs []string        // a few failures, for a message
	FailedAt  []time.Time     // when the first failures happened, up to maxFailedAt
	Latencies []time.Duration // of successful fast requests
	Ends      []time.Time     // when each successful fast request ended, with Config.RecordEnds; in no particular order
	Elapsed   time.Duration
}

// Failure kinds.
const (
	Refused     = "refused"
	Reset       = "reset"
	Closed      = "closed without response"
	Timeout     = "timeout"
	Status      = "non-200"
	Other       = "other"
	maxFirst    = 5
	maxFailedAt = 1000
)

// Run loads the server until ctx ends, MaxDuration passes or MaxRequests
// were made, and returns the counts.
func Run(ctx context.Context, c Config) *Result {
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	// Not context.WithTimeout: a dial with that context's deadline fails
	// with a timeout a moment before ctx.Err() says the run is over, and
	// would count as a failed request.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := time.AfterFunc(c.MaxDuration, cancel)
	defer stop.Stop()
	r := &Result{Failures: make(map[string]int64)}
	var mu sync.Mutex
	var budget = c.MaxRequests
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || c.MaxRequests > 0 && budget <= 0 {
			return false
		}
		budget--
		return true
	}
	record := func(err error, lat time.Duration, fast, idleRaced bool) {
		mu.Lock()
		defer mu.Unlock()
		r.Requests++
		if err == nil {
			if fast {
				r.Latencies = append(r.Latencies, lat)
				if c.RecordEnds {
					r.Ends = append(r.Ends, time.Now())
				}
			}
			return
		}
		r.Failed++
		r.Failures[Kind(err)]++
		if idleRaced {
			r.IdleRaced++
		}
		if len(r.FailedAt) < maxFailedAt {
			r.FailedAt = append(r.FailedAt, time.Now())
		}
		if len(r.FirstErrs) < maxFirst {
			r.FirstErrs = append(r.FirstErrs, err.Error())
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	client := func(path string, keepAlive, fast bool) {
		defer wg.Done()
		var cn *conn
		defer func() {
			if cn != nil {
				cn.Close()
			}
		}()
		for take() {
			t0 := time.Now()
			reused := cn != nil
			if cn == nil {
				var err error
				if cn, err = dial(ctx, c.Addr, t0); err != nil {
					if ctx.Err() == nil {
						record(err, 0, fast, false)
						time.Sleep(time.Millisecond) // a refused client does not spin
					}
					continue
				}
			}
			since := cn.since
			closeAfter, err := cn.get(path, c.Timeout)
			end := time.Now()
			idle := c.IdleRace > 0 && cn.sent.Sub(since) >= c.IdleRace
			if err != nil {
				// For the first errors: how the request met the server.
				how := "new"
				if reused {
					how = "reused"
				}
				err = fmt.Errorf("%w (%s connection, sent %s after it began to open or the previous request was sent, failed %s later)",
					err, how, cn.sent.Sub(since).Round(time.Millisecond), end.Sub(cn.sent).Round(time.Millisecond))
			}
			cn.since = cn.sent
			record(err, end.Sub(t0), fast, idle)
			if err != nil || closeAfter || !keepAlive {
				cn.Close()
				cn = nil
			}
		}
	}
	for range c.KeepAlive {
		wg.Add(1)
		go client(c.Path, true, true)
	}
	for range c.NewConn {
		wg.Add(1)
		go client(c.Path, false, true)
	}
	for range c.Slow {
		wg.Add(1)
		go client(c.SlowPath, false, false)
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	return r
}

// conn is one client connection.
type conn struct {
	net.Conn
	br    *bufio.Reader
	host  string
	since time.Time // when it began to be opened, or the previous request on it was sent
	sent  time.Time // when the last request was written, or failed to be
}

func dial(ctx context.Context, addr string, start time.Time) (*conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, br: bufio.NewReader(c), host: addr, since: start}, nil
}

// get sends one request and reads the whole response. It reports whether the
// server said it closes the connection.
func (c *conn) get(path string, timeout time.Duration) (closeAfter bool, err error) {
	c.SetDeadline(time.Now().Add(timeout))
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, c.host)
	c.sent = time.Now()
	if err != nil {
		return true, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return true, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return true, err
	}
	if resp.StatusCode != http.StatusOK {
		return true, &StatusError{resp.StatusCode}
	}
	return resp.Close, nil
}

// StatusError is a response that was not 200.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("status %d", e.Code) }

// Kind classifies a failed request.
func Kind(err error) string {
	var se *StatusError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Closed
	case errors.As(err, &se):
		return Status
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Other
}

// Percentile returns the p-th percentile (0 < p <= 100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (r *Result) String() string {
	s := fmt.Sprintf("%d requests, %d failed %v in %s", r.Requests, r.Failed, r.Failures, r.Elapsed.Round(time.Millisecond))
	if r.IdleRaced > 0 {
		s += fmt.Sprintf(" (%d sent on a connection left idle, see Config.IdleRace)", r.IdleRaced)
	}
	return s
}
