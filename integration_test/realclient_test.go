//go:build linux

package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// The real-client tests load the example with programs nobody on the team
// wrote (wrk, nginx), restart it by the pid in its pid file, and count what
// those programs saw. They are not parallel: one load at a time.

// restartRounds restarts the server n times by the pid in its pid file, a
// pause between two, and returns each old generation's time from the signal
// to its exit.
func restartRounds(t *testing.T, s *server, n int, pause time.Duration) (gone []time.Duration) {
	t.Helper()
	for range n {
		_, _, g := s.restart(s.mustPID())
		gone = append(gone, g)
		time.Sleep(pause)
	}
	return gone
}

// runWrk starts wrk against url in the background; the function it returns
// stops wrk (SIGINT: wrk prints its summary) and returns the summary.
func runWrk(t *testing.T, url string, connections int) func() *realclient.WrkResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		r   *realclient.WrkResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := realclient.RunWrk(ctx, realclient.WrkConfig{URL: url, Connections: connections, Duration: scale(2 * time.Minute)})
		done <- outcome{r, err}
	}()
	t.Cleanup(cancel)
	// Let wrk connect, so that the first restart happens under load.
	time.Sleep(300 * time.Millisecond)
	return func() *realclient.WrkResult {
		t.Helper()
		cancel()
		o := <-done
		if o.err != nil {
			t.Fatalf("wrk: %v", o.err)
		}
		return o.r
	}
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(time.Millisecond).String()
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return fmt.Sprintf("[%s] (median %s, max %s)", strings.Join(parts, " "), sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
}

// TestWrkAcrossRestarts: wrk's keep-alive connections never retry, so a
// connection the old generation drops, resets or closes without a response
// is a socket error.
func TestWrkAcrossRestarts(t *testing.T) {
	const restarts = 10
	s := newServer(t, exampleBin)
	s.start()
	stop := runWrk(t, "http://"+s.addr+"/", 4)
	gone := restartRounds(t, s, restarts, 200*time.Millisecond)
	r := stop()
	t.Logf("wrk, 4 keep-alive connections, %d restarts: %v", restarts, r)
	t.Logf("signal -> old generation gone: %s", durations(gone))
	if r.Requests == 0 || r.SocketErrors() != 0 || r.Non2xx != 0 {
		t.Errorf("wrk across %d restarts: %v\n%s", restarts, r, r.Output)
	}
	if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("generation=%d ", restarts+1)) {
		t.Errorf("after %d restarts GET / says %q", restarts, body)
	}
}

// TestNginxAcrossRestarts puts nginx in front, with its pool of idle
// keep-alive connections to the upstream, and loads nginx with wrk: a
// connection of the pool that the old generation drops is an upstream error
// in nginx's log (and a 502 unless nginx's retry hides it). The pool's idle
// connections must not hold the old generation until the drain deadline.
func TestNginxAcrossRestarts(t *testing.T) {
	const restarts, connections = 10, 4
	s := newServer(t, exampleBin)
	s.start()
	ng := realclient.StartNginx(t, s.addr)
	if r, err := realclient.Curl(context.Background(), ng.URL("/")); err != nil || !r.OK() || !strings.Contains(r.Body, "generation=1 ") {
		t.Fatalf("GET / through nginx: %v, %v\n%s", r, err, ng.Log())
	}
	stop := runWrk(t, ng.URL("/"), connections)
	gone := restartRounds(t, s, restarts, 200*time.Millisecond)
	r := stop()
	ng.Stop()
	statuses := ng.Statuses()
	upstreamErrors := ng.UpstreamErrors()
	t.Logf("wrk -> nginx (upstream keepalive 32) -> example, %d connections, %d restarts: %v", connections, restarts, r)
	t.Logf("nginx access log by status: %v; upstream errors in its error log: %d", statuses, len(upstreamErrors))
	t.Logf("signal -> old generation gone: %s", durations(gone))
	if r.Requests == 0 || r.SocketErrors() != 0 || r.Non2xx != 0 {
		t.Errorf("wrk through nginx across %d restarts: %v\n%s", restarts, r, r.Output)
	}
	for code, n := range statuses {
		// 499 is nginx's "client closed the request": wrk's connections
		// with a request in flight when wrk was stopped, at most one each.
		if code != http.StatusOK && !(code == 499 && n <= connections) {
			t.Errorf("nginx answered %d %d times", code, n)
		}
	}
	if len(upstreamErrors) > 0 {
		t.Errorf("%d upstream errors in nginx's error log; the first ones:\n%s", len(upstreamErrors), strings.Join(upstreamErrors[:min(5, len(upstreamErrors))], "\n"))
	}
	// nginx keeps up to 32 idle connections to the old generation, and
	// none of its requests lasts: the drain closes the idle ones within
	// about 250 ms, so the old generation is gone long before the drain's
	// deadline (10 s here).
	if bound := scale(5 * time.Second); slices.Max(gone) > bound {
		t.Errorf("an old generation took %s from the signal to its exit, want within %s: %s", slices.Max(gone).Round(time.Millisecond), bound, durations(gone))
	}
}

// TestIdleKeepAliveClientTwoRestarts holds one keep-alive connection idle
// after a request, and restarts twice in a row, the second as soon as the
// first's new process is ready, with -drain 30s. The drain closes an idle
// keep-alive connection once it has been idle 250 ms, at once when a
// restart waits: neither old generation may wait for the drain deadline
// (a passive drain took the whole 30 s and held the second restart as
// long).
func TestIdleKeepAliveClientTwoRestarts(t *testing.T) {
	const drain = 30 * time.Second
	bound := scale(5 * time.Second)
	s := newServer(t, exampleBin)
	gen1 := s.start("-drain", drain.String())

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", s.addr)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, resp.ContentLength)
	if _, err := br.Read(body); err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request on the idle connection: %s %q close=%v %v", resp.Status, body, resp.Close, err)
	}
	// The client now sits idle; note when and how the server ends it.
	t0 := time.Now()
	idleEnd := make(chan string, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(scale(time.Minute)))
		n, err := br.Read(make([]byte, 1))
		idleEnd <- fmt.Sprintf("after %s: read %d bytes, %v", time.Since(t0).Round(time.Millisecond), n, err)
	}()

	s.signal(gen1, syscall.SIGUSR1)
	gen2 := s.waitPIDChange(gen1)
	ready1 := time.Since(t0)
	t1 := time.Now()
	s.signal(gen2, syscall.SIGUSR1)
	gen3 := s.waitPIDChange(gen2)
	ready2 := time.Since(t1)
	var gone1, gone2 time.Duration
	waitFor(t, drain+15*time.Second, "both old generations to exit", func() bool {
		if gone1 == 0 && !alive(gen1) {
			gone1 = time.Since(t0)
		}
		if gone2 == 0 && !alive(gen2) {
			gone2 = time.Since(t1)
		}
		return gone1 != 0 && gone2 != 0
	})
	for _, pid := range []int{gen1, gen2} {
		if code := mustExit(t, pid, 10*time.Second); code != 0 {
			t.Errorf("generation %d exited %d", pid, code)
		}
	}
	t.Logf("-drain %s, one idle keep-alive connection on generation 1 (pid %d):", drain, gen1)
	t.Logf("restart 1: signal -> generation 2 ready %s, -> generation 1 gone %s", ready1.Round(time.Millisecond), gone1.Round(time.Millisecond))
	t.Logf("restart 2, asked for as soon as generation 2 was ready: signal -> generation 3 (pid %d) ready %s, -> generation 2 gone %s", gen3, ready2.Round(time.Millisecond), gone2.Round(time.Millisecond))
	t.Logf("the idle connection ended %s", <-idleEnd)
	if gone1 > bound || gone2 > bound {
		t.Errorf("old generations gone %s and %s after their restarts' signals, want within %s: the drain waited for an idle connection", gone1.Round(time.Millisecond), gone2.Round(time.Millisecond), bound)
	}
	if body := s.get("/"); !strings.Contains(body, fmt.Sprintf("pid=%d generation=3 ", gen3)) {
		t.Errorf("after two restarts GET / says %q", body)
	}
}

// TestH2loadHTTP1AcrossRestarts loads the example with h2load in HTTP/1.1
// mode (the example speaks no h2c): more connections than wrk's, each
// reconnecting when the old generation answers Connection: close. h2load
// prints no summary when interrupted, so it runs for a fixed time that the
// restarts fit in.
func TestH2loadHTTP1AcrossRestarts(t *testing.T) {
	const restarts = 5
	const duration = 8 * time.Second
	s := newServer(t, exampleBin)
	s.start()
	type outcome struct {
		r   *realclient.H2loadResult
		err error
	}
	done := make(chan outcome, 1)
	t0 := time.Now()
	go func() {
		r, err := realclient.RunH2load(context.Background(), realclient.H2loadConfig{URL: "http://" + s.addr + "/", H1: true, Clients: 8, Duration: duration})
		done <- outcome{r, err}
	}()
	time.Sleep(300 * time.Millisecond)
	gone := restartRounds(t, s, restarts, 200*time.Millisecond)
	restarted := time.Since(t0)
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if restarted > duration {
		t.Errorf("the restarts took %s, longer than the load (%s)", restarted, duration)
	}
	t.Logf("h2load --h1, 8 connections, %s, %d restarts within the first %s: %v", duration, restarts, restarted.Round(time.Millisecond), o.r)
	t.Logf("signal -> old generation gone: %s", durations(gone))
	if o.r.Succeeded == 0 || o.r.Failed != 0 || o.r.Errored != 0 || o.r.Timeout != 0 || o.r.Succeeded != o.r.Status2xx {
		t.Errorf("h2load across %d restarts: %v\n%s", restarts, o.r, o.r.Output)
	}
}
