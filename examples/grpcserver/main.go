// Command grpcserver is a gRPC server that runs as a daemon and restarts onto
// a new binary on SIGUSR1 without failing an RPC. It serves the standard
// health service, grpc.health.v1.Health (Check, and the server-streaming
// Watch), so that any gRPC client can talk to it with no .proto of ours.
//
//	grpcserver -addr 127.0.0.1:8080 -pidfile /tmp/grpcserver.pid -detach
//	grpc-health-probe -addr 127.0.0.1:8080  # status: SERVING
//	kill -USR1 $(cat /tmp/grpcserver.pid)   # hot restart
//	kill $(cat /tmp/grpcserver.pid)         # drain and stop
//
// grpc-health-probe is github.com/grpc-ecosystem/grpc-health-probe; any
// client of grpc.health.v1 will do.
//
// What a client sees during a restart: nothing fails, and Check answers
// SERVING throughout (unless a connection stuck in its handshake holds the
// GOAWAY back; see drain.go). The new process accepts on the same listening socket
// once it is ready; then the old one drains (drain.go). It sends GOAWAY on
// each of its connections, so the client sends its next RPCs over a new
// connection, to the new process; RPCs that crossed the GOAWAY finish on the
// old process, or, if it refused them unprocessed, the client library
// retries them on the new one. A moment later the old process's health
// service says NOT_SERVING and each Watch stream on it ends with status OK
// after a last NOT_SERVING message; a client that keeps a Watch open opens
// it again and gets SERVING from the new process. After SIGTERM the same
// drain runs and the program exits 0 once the RPCs in flight have finished,
// or 1 if -drain passed first and it cancelled those still running.
//
// Flags are those of examples/httpserver; -addr, -pidfile, -detach, -stdout,
// -stderr, -drain and -upgrade-timeout mean the same.
package main

import (
	"errors"
	"flag"
	"log"
	"log/slog"
	"net"
	"os"

	"github.com/daemonize-dev/daemonize"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`address` to listen on")
	pidFile := flag.String("pidfile", "", "pid file `path`")
	stdout := flag.String("stdout", "", "append standard output to this `file`")
	stderr := flag.String("stderr", "", "append standard error to this `file`")
	detach := flag.Bool("detach", false, "run as a daemon in the background")
	drain := flag.Duration("drain", daemonize.DefaultDrainTimeout, "how long in-flight RPCs get to finish on stop or restart")
	upgradeTimeout := flag.Duration("upgrade-timeout", daemonize.DefaultUpgradeTimeout, "how long a restarted process gets to become ready")
	supervise := flag.Bool("supervise", false, "keep the first process as a supervisor with a stable pid (containers' PID 1, supervisord, runit)")
	flag.Parse()

	d, err := daemonize.New(daemonize.Options{
		Detach:         *detach,
		Stdout:         *stdout,
		Stderr:         *stderr,
		PIDFile:        *pidFile,
		DrainTimeout:   *drain,
		UpgradeTimeout: *upgradeTimeout,
		Supervise:      *supervise,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := d.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := newServer(*drain)
	d.OnDrain(srv.drain)
	go func() {
		// At a hand-over the library closes the listener (the socket lives
		// on in the new process) before the drain begins, and Serve returns
		// that: net.ErrClosed is the end of accepting, not a failure. The
		// drain that follows finishes the RPCs in flight.
		if err := srv.grpc.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Fatal(err)
		}
	}()

	if err := d.Ready(); err != nil {
		log.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}
