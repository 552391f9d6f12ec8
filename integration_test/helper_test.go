//go:build linux

package integration_test

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/internal/demo"
)

// Faults the helper server injects, named by DAEMONIZE_TEST_FAULT. The
// variable passes from a server to the generations it restarts into, so a
// test starts the example with the fault set (the example ignores it) and
// then installs the helper over it to make the next generation faulty.
const (
	faultNone            = ""
	faultExit1           = "exit1"             // exit 1 before anything else
	faultHang            = "hang"              // never call Ready
	faultPanicInit       = "panic-init"        // panic before New
	faultPanicAfterReady = "panic-after-ready" // panic in a goroutine once ready
	faultGate            = "gate"              // call Ready only once the file DAEMONIZE_TEST_GATE exists
	faultHangIgnoreTERM  = "hang-ignore-term"  // never call Ready, and ignore SIGTERM
	faultExtraListen     = "extra-listen"      // also listen on DAEMONIZE_TEST_EXTRA_ADDR
	faultCrashAtGate     = "crash-at-gate"     // once ready, exit 3 when the gate file exists
)

// runHelper runs the test binary as a helper process instead of the tests.
func runHelper(role string) {
	switch role {
	case "server":
		helperServer(os.Getenv("DAEMONIZE_TEST_FAULT"))
	default:
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
		os.Exit(2)
	}
	os.Exit(0)
}

// helperServer is examples/httpserver (its endpoints, from internal/demo,
// and its flags, -tls-cert and -tls-key included) with faults, a GET
// /restart endpoint that calls Restart, a GET /env endpoint that runs env(1)
// as a child and returns what it printed (what a process the server starts
// inherits), and a GET /hijack endpoint (see hijackHandler). With
// -access-log it logs a line per request to descriptor 2, through package
// log, as a program's own logger does. A hook registered with
// RegisterOnShutdown logs "helper: shutdown hook ran pid=<pid>". With
// -listeners n it also serves on n listeners on 127.0.0.1:0, each with an
// http.Server of its own that answers GET /listener with its index; GET
// /listeners lists their addresses.
func helperServer(fault string) {
	switch fault {
	case faultExit1:
		fmt.Fprintln(os.Stderr, "helper: failing on purpose")
		os.Exit(1)
	case faultPanicInit:
		panic("helper: panic during init on purpose")
	}
	flags := flag.NewFlagSet("helper", flag.ExitOnError)
	addr := flags.String("addr", "", "")
	pidFile := flags.String("pidfile", "", "")
	stdout := flags.String("stdout", "", "")
	stderr := flags.String("stderr", "", "")
	detach := flags.Bool("detach", false, "")
	drain := flags.Duration("drain", 0, "")
	upgradeTimeout := flags.Duration("upgrade-timeout", 0, "")
	accessLog := flags.Bool("access-log", false, "")
	tlsCert := flags.String("tls-cert", "", "")
	tlsKey := flags.String("tls-key", "", "")
	startTimeout := flags.Duration("start-timeout", 0, "")
	dir := flags.String("dir", "", "")
	umask := flags.Uint("umask", 0, "")
	udp := flags.String("udp", "", "also answer datagrams on this UDP address")
	unixPath := flags.String("unix", "", "also serve HTTP on this unix socket")
	supervise := flags.Bool("supervise", false, "")
	listeners := flags.Int("listeners", 0, "also serve on this many listeners on 127.0.0.1:0")
	flags.Parse(os.Args[1:])

	d, err := daemonize.New(daemonize.Options{
		Detach: *detach, Stdout: *stdout, Stderr: *stderr, PIDFile: *pidFile,
		DrainTimeout: *drain, UpgradeTimeout: *upgradeTimeout, StartTimeout: *startTimeout,
		Dir: *dir, Umask: fs.FileMode(*umask), TakeBack: *udp == "", Supervise: *supervise,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	var ln net.Listener
	ln, err = d.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	hello := demo.Hello(d.Generation(), "helper")
	mux := demo.NewMux(d.Generation(), "helper")
	mux.HandleFunc("GET /restart", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Restart(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "restarted")
	})
	// GET /orphan?d=<duration> starts a sleep that outlives its parent, a
	// shell that exits at once: a grandchild the server abandons.
	mux.HandleFunc("GET /orphan", func(w http.ResponseWriter, r *http.Request) {
		cmd := exec.Command("/bin/sh", "-c", "sleep \"$0\" >/dev/null 2>&1 &", r.FormValue("d"))
		if err := cmd.Run(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "abandoned")
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		out, err := exec.Command("env").Output()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(out)
	})
	mux.Handle("GET /stream", demo.Stream(d.Draining))
	mux.HandleFunc("GET /hijack", hijackHandler(d))
	var handler http.Handler = mux
	if *accessLog {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r)
			log.Printf("helper: access pid=%d %s %s", os.Getpid(), r.Method, r.URL)
		})
	}
	srv := &http.Server{Handler: handler}
	srv.RegisterOnShutdown(func() {
		log.Printf("helper: shutdown hook ran pid=%d", os.Getpid())
		close(shutdownHookRan)
	})
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			log.Fatal(err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go d.Serve(srv, ln)
	if fault == faultExtraListen {
		eln, err := d.Listen("tcp", os.Getenv("DAEMONIZE_TEST_EXTRA_ADDR"))
		if err != nil {
			log.Fatal(err)
		}
		go d.Serve(&http.Server{Handler: mux}, eln)
	}
	var addrs []string
	for i := range *listeners {
		// Asked for as ":0", each keeps the port it first got.
		xln, err := d.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		addrs = append(addrs, xln.Addr().String())
		xmux := http.NewServeMux()
		xmux.HandleFunc("GET /listener", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, i) })
		xmux.Handle("/", mux)
		go d.Serve(&http.Server{Handler: xmux}, xln)
	}
	mux.HandleFunc("GET /listeners", func(w http.ResponseWriter, r *http.Request) {
		for _, a := range addrs {
			fmt.Fprintln(w, a)
		}
	})
	if *unixPath != "" {
		uln, err := d.Listen("unix", *unixPath)
		if err != nil {
			log.Fatal(err)
		}
		go d.Serve(&http.Server{Handler: mux}, uln)
	}
	if *udp != "" {
		pc, err := d.ListenPacket("udp", *udp)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte(hello), from)
			}
		}()
		go func() {
			<-d.Draining()
			pc.Close() // the socket lives on in the next generation
		}()
	}
	switch fault {
	case faultHangIgnoreTERM:
		signal.Ignore(syscall.SIGTERM)
		select {}
	case faultHang:
		select {}
	case faultGate:
		waitGate()
	}
	if err := d.Ready(); err != nil {
		log.Fatal(err)
	}
	if fault == faultCrashAtGate {
		go func() {
			waitGate()
			fmt.Fprintln(os.Stderr, "helper: crashing on purpose")
			os.Exit(3)
		}()
	}
	if fault == faultPanicAfterReady {
		go func() { panic("helper: panic after ready on purpose") }()
	}
	if err := d.Wait(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// waitGate says it waits, then waits until the test creates the file
// DAEMONIZE_TEST_GATE.
func waitGate() {
	gate := os.Getenv("DAEMONIZE_TEST_GATE")
	os.WriteFile(gate+".waiting", nil, 0o644)
	for {
		if _, err := os.Stat(gate); err == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// shutdownHookRan is closed by the helper's RegisterOnShutdown hook.
var shutdownHookRan = make(chan struct{})

// hijackHandler answers GET /hijack as a WebSocket server would: it
// hijacks the connection and writes "hello pid=<pid>\n". Then, with
// ?mode=polite (the default), it waits until the process drains, writes
// "draining\n", waits for a line from the client, writes "bye\n" and
// closes: a close handshake. With ?mode=deaf it ignores the drain and holds
// the connection until the client closes it. With ?mode=hook it waits for
// the server's RegisterOnShutdown hook, as a WebSocket library that knows
// only net/http does, then writes "bye\n" and closes. Either way it closes
// when the client does.
func hijackHandler(d *daemonize.Daemon) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mode := r.FormValue("mode")
		deaf := mode == "deaf"
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello pid=%d\n", os.Getpid())
		if rw.Flush() != nil {
			return
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				lines <- line
			}
		}()
		if deaf {
			for range lines {
			}
			return
		}
		if mode == "hook" {
			select {
			case <-shutdownHookRan:
				fmt.Fprintf(rw, "bye\n")
				rw.Flush()
			case <-lines:
			}
			return
		}
		for drained := false; !drained; {
			select {
			case <-d.Draining():
				drained = true
			case _, ok := <-lines:
				if !ok {
					return // the client went away
				}
			}
		}
		fmt.Fprintf(rw, "draining\n")
		if rw.Flush() != nil {
			return
		}
		if _, ok := <-lines; !ok {
			return
		}
		fmt.Fprintf(rw, "bye\n")
		rw.Flush()
	}
}
