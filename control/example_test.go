//go:build unix

package control_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
	"github.com/daemonize-dev/daemonize/control"
)

// envServer makes the test binary a daemon with the pid file it names: the
// examples drive it.
const envServer = "DAEMONIZE_CONTROL_EXAMPLE_PIDFILE"

func TestMain(m *testing.M) {
	if pidFile := os.Getenv(envServer); pidFile != "" {
		serve(pidFile)
		return
	}
	os.Exit(m.Run())
}

// serve is the daemon the examples restart and stop.
func serve(pidFile string) {
	d, err := daemonize.New(daemonize.Options{PIDFile: pidFile, DrainTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go d.Serve(&http.Server{Handler: http.NotFoundHandler()}, ln)
	if err := d.Ready(); err != nil {
		log.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		log.Fatal(err)
	}
}

// startDaemon starts the example's daemon and waits until it is ready.
func startDaemon(pidFile string) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envServer+"="+pidFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	go cmd.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := control.Find(pidFile); err == nil {
			return
		} else if time.Now().After(deadline) {
			log.Fatal(err)
		}
	}
}

// A deploy script's life: find the daemon, restart it onto the binary at its
// path and wait for the outcome, then stop it.
func Example() {
	dir, err := os.MkdirTemp("", "control-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "app.pid")
	startDaemon(pidFile)

	p, err := control.Find(pidFile)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("running:", p.Status.State, "generation", p.Status.Generation)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := control.Restart(ctx, pidFile)
	var failed *control.RestartFailedError
	switch {
	case errors.As(err, &failed):
		log.Fatalf("the restart failed, the old process serves on: %s\n%s", failed.Reason, failed.Stderr)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("restarted: generation", r.Generation, "serves; the old process has exited:", r.OldPID == p.PID)

	s, err := control.Stop(ctx, pidFile)
	if err != nil {
		log.Fatal(err)
	}
	_, err = control.Find(pidFile)
	fmt.Println("stopped:", s.Running, errors.Is(err, control.ErrNotRunning))
	// Output:
	// running: ready generation 1
	// restarted: generation 2 serves; the old process has exited: true
	// stopped: true true
}
