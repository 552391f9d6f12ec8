// Command httpserver is an HTTP server that runs as a daemon and restarts
// onto a new binary on SIGUSR1 without losing a request.
//
//	httpserver -addr 127.0.0.1:8080 -pidfile /tmp/httpserver.pid -detach
//	curl http://127.0.0.1:8080/            # pid=4242 generation=1 version=dev
//	kill -USR1 $(cat /tmp/httpserver.pid)  # hot restart
//	kill $(cat /tmp/httpserver.pid)        # drain and stop
//
// Endpoints: GET / answers "pid=<pid> generation=<n> version=<v>";
// GET /sleep?d=<duration> answers the same after sleeping that long.
package main

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/internal/demo"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`address` to listen on")
	pidFile := flag.String("pidfile", "", "pid file `path`")
	stdout := flag.String("stdout", "", "append standard output to this `file`")
	stderr := flag.String("stderr", "", "append standard error to this `file`")
	detach := flag.Bool("detach", false, "run as a daemon in the background")
	drain := flag.Duration("drain", daemonize.DefaultDrainTimeout, "how long in-flight requests get to finish on stop or restart")
	upgradeTimeout := flag.Duration("upgrade-timeout", daemonize.DefaultUpgradeTimeout, "how long a restarted process gets to become ready")
	accessLog := flag.Bool("access-log", false, "write a line per request to standard output")
	flag.Parse()

	d, err := daemonize.New(daemonize.Options{
		Detach:         *detach,
		Stdout:         *stdout,
		Stderr:         *stderr,
		PIDFile:        *pidFile,
		DrainTimeout:   *drain,
		UpgradeTimeout: *upgradeTimeout,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := d.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}

	// GET / and GET /sleep, shared with the tests and the benchmark.
	mux := demo.NewMux(d.Generation(), version)
	var h http.Handler = mux
	if *accessLog {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r)
			fmt.Fprintf(os.Stdout, "%s pid=%d %s %s\n", time.Now().Format(time.RFC3339Nano), os.Getpid(), r.Method, r.URL)
		})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.Serve(srv, ln); err != nil {
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
