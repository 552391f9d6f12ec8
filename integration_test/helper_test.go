//go:build linux

package integration_test

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
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

// helperServer is examples/httpserver (its endpoints, from internal/demo)
// with faults, a GET /restart endpoint that calls Restart, and a GET /env
// endpoint that runs env(1) as a child and returns what it printed: what a
// process the server starts inherits.
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
	flags.Bool("access-log", false, "")
	startTimeout := flags.Duration("start-timeout", 0, "")
	dir := flags.String("dir", "", "")
	umask := flags.Uint("umask", 0, "")
	udp := flags.String("udp", "", "also answer datagrams on this UDP address")
	unixPath := flags.String("unix", "", "also serve HTTP on this unix socket")
	supervise := flags.Bool("supervise", false, "")
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
	ln, err := d.Listen("tcp", *addr)
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
	go d.Serve(&http.Server{Handler: mux}, ln)
	if fault == faultExtraListen {
		eln, err := d.Listen("tcp", os.Getenv("DAEMONIZE_TEST_EXTRA_ADDR"))
		if err != nil {
			log.Fatal(err)
		}
		go d.Serve(&http.Server{Handler: mux}, eln)
	}
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
