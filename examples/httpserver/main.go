// Command httpserver is an HTTP server that runs as a daemon and restarts
// onto a new binary on SIGUSR1 without losing a request.
//
//	httpserver -addr 127.0.0.1:8080 -pidfile /tmp/httpserver.pid -detach
//	curl http://127.0.0.1:8080/            # pid=4242 generation=1 version=dev
//	kill -USR1 $(cat /tmp/httpserver.pid)  # hot restart
//	kill $(cat /tmp/httpserver.pid)        # drain and stop
//
// Endpoints: GET / answers "pid=<pid> generation=<n> version=<v>";
// GET /sleep?d=<duration> answers the same after sleeping that long;
// GET /stream answers server-sent events, one "data: pid=<pid> n=<k>" every
// 100 ms, until the process drains, when the stream ends after a whole
// event.
//
// With -tls-cert and -tls-key it serves HTTPS, HTTP/2 and HTTP/1.1 by ALPN;
// with -h2c it also accepts cleartext HTTP/2 with prior knowledge.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
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
	supervise := flag.Bool("supervise", false, "keep the first process as a supervisor with a stable pid (containers' PID 1, supervisord, runit)")
	accessLog := flag.Bool("access-log", false, "write a line per request to standard output")
	tlsCert := flag.String("tls-cert", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate `file` (PEM); needs -tls-key")
	tlsKey := flag.String("tls-key", "", "the private key `file` (PEM) of -tls-cert")
	h2c := flag.Bool("h2c", false, "also accept cleartext HTTP/2 with prior knowledge")
	flag.Parse()
	if (*tlsCert == "") != (*tlsKey == "") {
		log.Fatal("httpserver: -tls-cert and -tls-key go together")
	}

	d, err := daemonize.New(daemonize.Options{
		Detach:         *detach,
		Stdout:         *stdout,
		Stderr:         *stderr,
		PIDFile:        *pidFile,
		DrainTimeout:   *drain,
		UpgradeTimeout: *upgradeTimeout,
		Supervise:      *supervise,
		TakeBack:       true, // every listener runs under Serve
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	var ln net.Listener
	ln, err = d.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: handler(d, *accessLog), ReadHeaderTimeout: 10 * time.Second}
	if *h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			log.Fatal(err)
		}
		// Serve wraps the listener from Listen; http.Server speaks
		// HTTP/2 to clients that ask for it by ALPN.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
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

// handler serves the example's endpoints: GET / and GET /sleep, shared
// with the tests and the benchmark, and GET /stream.
func handler(d *daemonize.Daemon, accessLog bool) http.Handler {
	mux := demo.NewMux(d.Generation(), version)
	mux.Handle("GET /stream", demo.Stream(d.Draining))
	if !accessLog {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		fmt.Fprintf(os.Stdout, "%s pid=%d %s %s\n", time.Now().Format(time.RFC3339Nano), os.Getpid(), r.Method, r.URL)
	})
}
