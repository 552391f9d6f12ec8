//go:build unix

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/internal/atomicfile"
	"github.com/daemonize-dev/daemonize/internal/demo"
)

func main() {
	mode := flag.String("mode", "plain", "`mode`: tableflip, plain or daemonize")
	addr := flag.String("addr", "127.0.0.1:8080", "`address` to listen on")
	pidFile := flag.String("pidfile", "", "pid file `path`")
	drain := flag.Duration("drain", 30*time.Second, "how long in-flight requests get to finish on stop or restart")
	upgradeTimeout := flag.Duration("upgrade-timeout", 30*time.Second, "how long a restarted process gets to become ready")
	extra := flag.Int("extra-listeners", 0, "with -mode=daemonize, also serve on this many listeners on 127.0.0.1:0")
	serveExtra := flag.Bool("serve-extra", true, "serve each of -extra-listeners with an http.Server of its own; with false, only listen on them")
	flag.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate `file` (PEM), as examples/httpserver does; needs -tls-key")
	flag.StringVar(&tlsKey, "tls-key", "", "the private key `file` (PEM) of -tls-cert")
	flag.BoolVar(&h2c, "h2c", false, "also accept cleartext HTTP/2 with prior knowledge, as examples/httpserver does")
	flag.Parse()
	if (tlsCert == "") != (tlsKey == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}
	log.SetPrefix(fmt.Sprintf("benchserver %s pid %d: ", *mode, os.Getpid()))

	var err error
	switch *mode {
	case "tableflip":
		err = runTableflip(*addr, *pidFile, *drain, *upgradeTimeout)
	case "plain":
		err = runPlain(*addr, *pidFile, *drain)
	case "daemonize":
		err = runDaemonize(*addr, *pidFile, *drain, *upgradeTimeout, *extra, *serveExtra)
	default:
		err = fmt.Errorf("unknown -mode %q; want tableflip, plain or daemonize", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// The protocol options every mode shares, as examples/httpserver has them.
var (
	tlsCert, tlsKey string
	h2c             bool
)

// version is what GET / reports as the version, the same in every mode so
// that every mode's answer has the same length.
const version = "bench"

// newServer returns the server every mode runs: the endpoints of
// examples/httpserver, with its -h2c option. generation is what GET /
// reports: 0 where the mode does not count generations.
func newServer(generation int) *http.Server {
	return newServerFor(demo.NewMux(generation, version))
}

// newServerFor returns a server of h, so that many listeners can share one
// handler, as a program with many listeners would.
func newServerFor(h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// withTLS wraps ln in TLS with -tls-cert, offering HTTP/2 and HTTP/1.1 as
// examples/httpserver does; without -tls-cert it returns ln.
func withTLS(srv *http.Server, ln net.Listener) (net.Listener, error) {
	if tlsCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
	if err != nil {
		return nil, err
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	return tls.NewListener(ln, srv.TLSConfig), nil
}

// runTableflip serves with tableflip alone: listen through the Upgrader,
// serve, declare readiness, wait for Exit (a successor is ready, or a stop
// signal), then shut the server down within the drain deadline.
func runTableflip(addr, pidFile string, drain, upgradeTimeout time.Duration) error {
	upg, err := tableflip.New(tableflip.Options{PIDFile: pidFile, UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return err
	}
	defer upg.Stop()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				upg.Stop()
				continue
			}
			// tableflip refuses an upgrade until the previous process
			// has exited: wait for it, as a careful program must, so that
			// a second restart right after a first one happens too.
			ctx, cancel := context.WithTimeout(context.Background(), upgradeTimeout)
			upg.WaitForParent(ctx)
			cancel()
			if err := upgradeWhenReady(upg); err != nil {
				log.Print("upgrade failed: ", err)
			}
		}
	}()

	ln, err := upg.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(0)
	if ln, err = withTLS(srv, ln); err != nil {
		return err
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Print("serve: ", err)
		}
	}()
	if err := upg.Ready(); err != nil {
		return err
	}
	<-upg.Exit()

	// Exit is closed: the new process serves, or this one must stop.
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	return srv.Shutdown(ctx)
}

// runPlain serves from a plain listener and shuts down on SIGTERM or SIGINT.
func runPlain(addr, pidFile string, drain time.Duration) error {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(1) // a restart is a stop and a start: always the first
	if ln, err = withTLS(srv, ln); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if err := writePIDFile(pidFile); err != nil {
		return err
	}
	select {
	case err := <-served:
		return err
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	return srv.Shutdown(ctx)
}

// runDaemonize serves through the library in the foreground, on the main
// listener and on extra ones.
func runDaemonize(addr, pidFile string, drain, upgradeTimeout time.Duration, extra int, serveExtra bool) error {
	d, err := daemonize.New(daemonize.Options{
		PIDFile:        pidFile,
		DrainTimeout:   drain,
		UpgradeTimeout: upgradeTimeout,
	})
	if err != nil {
		return err
	}
	ln, err := d.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(d.Generation())
	if ln, err = withTLS(srv, ln); err != nil {
		return err
	}
	go func() {
		if err := d.Serve(srv, ln); err != nil {
			log.Fatal("serve: ", err)
		}
	}()
	// The extra listeners share a handler, as one program's would: what
	// the scale part measures is the hand-off, not building muxes.
	mux := demo.NewMux(d.Generation(), version)
	var lns []net.Listener
	for range extra {
		// Asked for as ":0", each keeps the port it first got.
		ln, err := d.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		if !serveExtra {
			break
		}
		go func() {
			if err := d.Serve(newServerFor(mux), ln); err != nil {
				log.Fatal("serve: ", err)
			}
		}()
	}
	if err := d.Ready(); err != nil {
		return err
	}
	return d.Wait()
}

// upgradeWhenReady calls Upgrade, retrying for a second while tableflip
// has not yet seen this process ready.
func upgradeWhenReady(upg *tableflip.Upgrader) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := upg.Upgrade()
		if err == nil || err.Error() != "process is not ready yet" || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// writePIDFile replaces the file at path with one naming this process, so
// that a reader never sees it half written.
func writePIDFile(path string) error {
	if path == "" {
		return nil
	}
	return atomicfile.Write(path, []byte(strconv.Itoa(os.Getpid())+"\n"))
}
