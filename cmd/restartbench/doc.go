// Command restartbench measures, in one run, how this library restarts a
// server under load compared with tableflip alone and with a naive stop and
// start, and what it costs when nothing restarts.
//
// It builds examples/httpserver and its own benchserver with go build into a
// scratch directory, runs them on 127.0.0.1 only, and measures four parts:
//
//   - restart: each server (-servers daemonize,tableflip,naive) is loaded
//     by clients that never retry (internal/load): keep-alive ones, ones
//     that open a connection per request, and ones whose /sleep requests
//     span restarts. First for -steady without restarts, then for -duration
//     with -restarts restarts spread evenly over it; each phase also stops
//     after -requests requests. daemonize is examples/httpserver started
//     with -detach and restarted with SIGUSR1; tableflip is benchserver
//     -mode=tableflip restarted with SIGHUP; naive is benchserver
//     -mode=plain, stopped with SIGTERM and started again once it exited.
//     The report gives the failed requests by kind, the time from the
//     signal until the pid file names a new process that answers GET /,
//     until the old process has exited, and request latencies with and
//     without restarts.
//   - lower: how long examples/httpserver takes from exec until it answers
//     GET /, on a fresh port each time: what any restart that execs a new
//     binary pays.
//   - overhead: requests per second through the library's Listen and Serve
//     against a plain net.Listen and http.Server with the same handler,
//     in alternating rounds with keep-alive clients.
//   - scale: the library's hand-off time with 1, 10, 100 and 1000
//     inherited listeners (-listeners).
//
// It prints a report, or JSON with -json, and the goals it measures against:
// no lost request for the library, signal to ready within 1.1x the exec
// lower bound and no slower than tableflip, and at least 0.99x the plain
// listener's throughput. Ratios mean more than absolute times on a busy
// machine. The exit status says whether the run worked, not whether the
// goals were met.
//
// Every process it starts runs in a process group of its own; detached
// daemons make a session of their own. The tool is a child subreaper, so
// generations orphaned by their parent generation come back to it, and at
// the end, on error or on Ctrl-C, it kills every group and reaps every
// child. It runs on Linux only.
//
// Run it from the repository. A smoke run of a few seconds:
//
//	go run ./cmd/restartbench -restarts 2 -clients 2 -slow 1 -sleep 200ms -steady 1s -duration 3s \
//		-lower-runs 3 -rounds 1 -round 500ms -listeners 1,100 -scale-restarts 1
//
// The full comparison with the defaults takes about three minutes on two
// cores:
//
//	go run ./cmd/restartbench
//
// A long run of the library alone, with at least 200 restarts and 500,000
// requests (the load, not a request budget, ends it):
//
//	go run ./cmd/restartbench -only restart -servers daemonize -restarts 200 -duration 4m -requests 10000000
package main
