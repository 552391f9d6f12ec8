package realclient

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WrkResult is wrk's summary.
type WrkResult struct {
	Requests int64         // "N requests in D"
	Elapsed  time.Duration // D
	// Socket errors: wrk never retries, so a connection the server drops
	// shows up here (read: closed or reset before a complete response).
	Connect, Read, Write, Timeout int64
	// Responses with a status of 400 or more ("Non-2xx or 3xx responses").
	Non2xx int64
	Output string // everything wrk printed
}

// SocketErrors adds up the four kinds of socket error.
func (r *WrkResult) SocketErrors() int64 { return r.Connect + r.Read + r.Write + r.Timeout }

func (r *WrkResult) String() string {
	return fmt.Sprintf("%d requests in %s, socket errors: connect %d, read %d, write %d, timeout %d; non-2xx or 3xx: %d",
		r.Requests, r.Elapsed, r.Connect, r.Read, r.Write, r.Timeout, r.Non2xx)
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)\b`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
)

// ParseWrk reads wrk's summary. wrk prints the socket errors and the
// non-2xx count only when they are not zero.
func ParseWrk(out string) (*WrkResult, error) {
	r := &WrkResult{Output: out}
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no \"N requests in\" line in wrk's output: %q", tail(out, 500))
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.Elapsed, _ = time.ParseDuration(m[2] + m[3])
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		r.Connect, _ = strconv.ParseInt(m[1], 10, 64)
		r.Read, _ = strconv.ParseInt(m[2], 10, 64)
		r.Write, _ = strconv.ParseInt(m[3], 10, 64)
		r.Timeout, _ = strconv.ParseInt(m[4], 10, 64)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// H2loadResult is h2load's summary.
type H2loadResult struct {
	// "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
	Total, Started, Done, Succeeded, Failed, Errored, Timeout int64
	// "status codes: N 2xx, N 3xx, N 4xx, N 5xx"
	Status2xx, Status3xx, Status4xx, Status5xx int64
	Output                                     string // everything h2load printed
}

func (r *H2loadResult) String() string {
	return fmt.Sprintf("%d total, %d succeeded, %d failed, %d errored, %d timeout; status 2xx %d, 3xx %d, 4xx %d, 5xx %d",
		r.Total, r.Succeeded, r.Failed, r.Errored, r.Timeout, r.Status2xx, r.Status3xx, r.Status4xx, r.Status5xx)
}

var (
	h2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// ParseH2load reads h2load's summary.
func ParseH2load(out string) (*H2loadResult, error) {
	r := &H2loadResult{Output: out}
	m := h2Requests.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no \"requests:\" line in h2load's output: %q", tail(out, 500))
	}
	for i, p := range []*int64{&r.Total, &r.Started, &r.Done, &r.Succeeded, &r.Failed, &r.Errored, &r.Timeout} {
		*p, _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	if m := h2Status.FindStringSubmatch(out); m != nil {
		for i, p := range []*int64{&r.Status2xx, &r.Status3xx, &r.Status4xx, &r.Status5xx} {
			*p, _ = strconv.ParseInt(m[i+1], 10, 64)
		}
	}
	return r, nil
}

// tail returns the last n bytes of s, for messages.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
