//go:build linux

package integration_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// TestH2loadAcrossRestarts loads the example with h2load, HTTP/2 over TLS
// (ALPN) and cleartext h2c with prior knowledge, 16 connections of 8
// concurrent streams each, across 10 restarts 0.5 s apart. The old
// generation sends GOAWAY and closes its connections once their streams
// are done. h2load (1.52) does not reconnect after a GOAWAY (it does after
// an HTTP/1 "Connection: close"): a client that gets one stops for the rest
// of the run. So each restart gets a run of its own, of 3 s, with the
// restart 0.5 s into it.
//
// No request may fail, be lost with its connection (h2load counts it
// started but not done), time out or get anything but a 2xx. h2load does
// not send a request it queued once a GOAWAY has arrived
// (nghttp2_session_check_request_allowed) and counts it failed: the drain's
// PING before its first GOAWAY, and the wait for the ACK, keep the GOAWAY
// from reaching it behind a response that made it queue one.
func TestH2loadAcrossRestarts(t *testing.T) {
	const restarts, pause, run = 10, 500 * time.Millisecond, 3 * time.Second
	for _, tc := range []struct {
		name, scheme string
		setup        func(t *testing.T, s *server) int
	}{
		{"TLS", "https", func(t *testing.T, s *server) int { return s.startTLS(useTLS(t, s)) }},
		{"h2c", "http", func(t *testing.T, s *server) int { return s.start("-h2c") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, exampleBin)
			tc.setup(t, s)
			var all realclient.H2loadResult
			var gone []time.Duration
			var perRestart []string
			voids := 0 // restarts that h2load's run did not outlast
			for i := range restarts {
				type outcome struct {
					r   *realclient.H2loadResult
					err error
				}
				done := make(chan outcome, 1)
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				began := time.Now()
				go func() {
					r, err := realclient.RunH2load(ctx, realclient.H2loadConfig{URL: tc.scheme + "://" + s.addr + "/", Clients: 16, Streams: 8, Duration: run})
					done <- outcome{r, err}
				}()
				time.Sleep(pause)
				_, _, g := s.restart(s.mustPID())
				gone = append(gone, g)
				// h2load's run ends at least run after it began. If the
				// old generation was gone by then, every connection had
				// its GOAWAY and ended, and nothing can be in flight at
				// the end; if not (a very busy machine), the streams in
				// flight when h2load stops count started, not done.
				drained := time.Since(began) < run
				o := <-done
				if o.err != nil {
					t.Fatalf("restart %d: %v", i+1, o.err)
				}
				for _, p := range []struct{ sum, one *int64 }{
					{&all.Total, &o.r.Total}, {&all.Started, &o.r.Started}, {&all.Done, &o.r.Done}, {&all.Succeeded, &o.r.Succeeded}, {&all.Failed, &o.r.Failed},
					{&all.Errored, &o.r.Errored}, {&all.Timeout, &o.r.Timeout}, {&all.Status2xx, &o.r.Status2xx},
				} {
					*p.sum += *p.one
				}
				perRestart = append(perRestart, fmt.Sprintf("%d/%d", o.r.Failed, o.r.Total))
				if !drained {
					t.Logf("restart %d: the old generation was gone %s after the signal, after h2load's run had ended: %d started, %d done", i+1, g, o.r.Started, o.r.Done)
					voids++
				}
				if o.r.Failed != 0 || drained && o.r.Started != o.r.Done {
					t.Errorf("restart %d: %d failed; %d started, %d done", i+1, o.r.Failed, o.r.Started, o.r.Done)
					all.Output += fmt.Sprintf("restart %d:\n%s\n", i+1, o.r.Output)
				}
			}
			t.Logf("h2load %s, 16 connections x 8 streams, a %s run per restart, %d restarts: %v; %d started, %d done", tc.name, run, restarts, &all, all.Started, all.Done)
			t.Logf("failed/total per restart: %v", perRestart)
			t.Logf("signal -> old generation gone: %s", durations(gone))
			// h2load counts a stream lost with its connection as started
			// but not done, and leaves it out of "failed": each restart
			// above checks that.
			if all.Succeeded == 0 || all.Failed != 0 || all.Errored != 0 || all.Timeout != 0 || all.Succeeded != all.Status2xx {
				t.Errorf("h2load across %d restarts: %v\n%s", restarts, &all, all.Output)
			}
			if voids == restarts {
				t.Errorf("no restart ended within h2load's run of %s: nothing shows that no stream was lost with its connection", run)
			}
			if body := s.get2(tc.scheme); !strings.Contains(body, fmt.Sprintf("generation=%d ", restarts+1)) {
				t.Errorf("after %d restarts GET / says %q", restarts, body)
			}
		})
	}
}

// get2 fetches / with curl over HTTP/2 (h2c with prior knowledge for
// http), as one more client that is not Go's.
func (s *server) get2(scheme string) string {
	s.t.Helper()
	args := []string{"--http2-prior-knowledge"}
	if scheme == "https" {
		args = []string{"--http2", "-k"}
	}
	r, err := realclient.Curl(context.Background(), scheme+"://"+s.addr+"/", args...)
	if err != nil || !r.OK() {
		s.t.Fatalf("curl %v: %v %v", args, r, err)
	}
	return r.Body
}
