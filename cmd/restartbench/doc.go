// Command restartbench measures, in one run, how this library restarts a
// server under load compared with tableflip alone and with a naive stop and
// start, and what it costs when nothing restarts.
//
// It builds examples/httpserver and its own benchserver with go build into a
// scratch directory, runs them on 127.0.0.1 only, and measures these parts:
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
//   - gap: each server is loaded by -gap-clients clients (half keep-alive,
//     half with a new connection per request) that record when each
//     request ended, and restarted -gap-restarts times. For each restart,
//     the longest time between two successful requests that overlaps the
//     span from the signal until the old process has exited: how long
//     every client waited at once. The same measure over windows as long
//     without restarts gives the machine's own floor.
//   - h2: h2load (Debian's nghttp2-client) with -h2-clients connections
//     of -h2-streams streams, over TLS (ALPN h2) and as h2c with prior
//     knowledge, against the library and tableflip alone, for -h2-duration
//     with -h2-restarts restarts: h2load's failed, errored and timed-out
//     requests, and the time until the old process is gone.
//   - idle: a client makes one request on a keep-alive connection and
//     leaves it idle; the server restarts, and restarts again as soon as
//     the new process serves. The second restart waits for the process
//     that holds the idle connection to exit.
//   - lower: how long examples/httpserver takes from exec until it answers
//     GET /, on a fresh port each time: what any restart that execs a new
//     binary pays.
//   - overhead: requests per second through the library's Listen and Serve
//     against a plain net.Listen and http.Server with the same handler,
//     in alternating rounds with keep-alive clients.
//   - scale: the library's hand-off time with 1, 10, 100 and 1000
//     inherited listeners (-listeners), first with an http.Server on each
//     listener, then with the listeners alone (the library's part); in
//     turns with each restart, a cold start of the same program with as
//     many listeners, from exec until it answers.
//   - supervise: examples/httpserver restarted -supervise-restarts times
//     with -supervise and as many without, in turns and without load, from
//     the signal until a new generation answers GET /; and the
//     supervisor's resident memory and CPU time at rest and over the
//     restarts.
//
// It prints a report, or JSON with -json (every figure of the report, for a
// job that keeps the trend), and the goals it measures against, each met or
// NOT MET: no lost request for the library, signal to ready within 1.1x the
// exec lower bound and no slower than tableflip, at least 0.99x the plain
// listener's throughput, the largest listener count handed off within 2x
// the smallest, a longest time without a successful request during a
// restart of 2 ms at most (p50), and no failed HTTP/2 request. Ratios mean more than absolute times on a busy
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
//		-gap-restarts 2 -gap-every 500ms -h2-duration 2s -h2-restarts 1 -idle-rounds 1 \
//		-lower-runs 3 -rounds 1 -round 500ms -listeners 1,100 -scale-restarts 1 -supervise-restarts 2
//
// The full comparison with the defaults takes about five minutes on two
// cores:
//
//	go run ./cmd/restartbench
//
// A long run of the library alone, with at least 200 restarts and 500,000
// requests (the load, not a request budget, ends it):
//
//	go run ./cmd/restartbench -only restart -servers daemonize -restarts 200 -duration 4m -requests 10000000
package main
