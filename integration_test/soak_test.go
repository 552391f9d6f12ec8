//go:build linux

package integration_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/load"
)

// TestSoak restarts the example DAEMONIZE_SOAK times (1000 or more for the
// figures the project publishes) under load, and reports lost requests, open
// descriptors and resident memory at generations 1, 500 and 1000. It is not
// in the default suite:
//
//	DAEMONIZE_SOAK=1000 go test -run TestSoak -v -timeout 1h ./integration_test/
func TestSoak(t *testing.T) {
	restarts, _ := strconv.Atoi(os.Getenv("DAEMONIZE_SOAK"))
	if restarts <= 0 {
		t.Skip("set DAEMONIZE_SOAK to the number of restarts (1000 or more) to run the soak test")
	}
	s := newServer(t, exampleBin)
	pid := s.start()
	bg := startLoad(t, load.Config{
		Addr: s.addr, KeepAlive: 2, NewConn: 2, Slow: 1, SlowPath: "/sleep?d=50ms",
		MaxDuration: scale(2 * time.Hour),
	})
	reader := s.readPIDFileContinuously()
	type sample struct{ gen, fds, rssKB int }
	var samples []sample
	measure := func(gen int) {
		samples = append(samples, sample{gen, openFDs(t, pid), rss(t, pid)})
	}
	for range 1000 { // let generation 1 serve a while before it is measured
		s.get("/")
	}
	measure(1)
	var ready []time.Duration
	for gen := 2; gen <= restarts+1; gen++ {
		var r time.Duration
		pid, r, _ = s.restart(pid)
		ready = append(ready, r)
		if gen == 500 || gen == 1000 || gen == restarts+1 {
			measure(gen)
		}
	}
	res := bg.stop()
	reader.check(t)
	if res.Failed != 0 {
		t.Errorf("%v; first errors %q", res, res.FirstErrs)
	}
	// Descriptors of connections come and go with the load: compare the
	// rest once it has stopped.
	first := samples[0].fds
	if !poll(scale(10*time.Second), func() bool { return openFDs(t, pid) == first }) {
		t.Errorf("generation %d has %d descriptors, generation 1 had %d", restarts+1, openFDs(t, pid), first)
	}
	t.Logf("soak: %d restarts, %v; signal to ready p50 %s p95 %s", restarts, res, load.Percentile(ready, 50), load.Percentile(ready, 95))
	for _, x := range samples {
		t.Logf("generation %4d: %d open descriptors (TCP connections left out), RSS %d KiB", x.gen, x.fds, x.rssKB)
	}
}

// rss returns the resident set size of pid in KiB.
func rss(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
