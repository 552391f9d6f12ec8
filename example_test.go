//go:build unix

package daemonize_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// The whole life of a foreground daemon in one process: New, Listen, Serve,
// Ready, then a stop and the drain.
func Example() {
	dir, err := os.MkdirTemp("", "daemonize-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "app.pid")

	d, err := daemonize.New(daemonize.Options{PIDFile: pidFile, DrainTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from generation", d.Generation())
	})}
	go d.Serve(srv, ln)
	if err := d.Ready(); err != nil {
		log.Fatal(err)
	}

	pid, _ := daemonize.ReadPIDFile(pidFile)
	fmt.Println("pid file names this process:", pid == os.Getpid())
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))

	d.Stop() // as SIGTERM does
	fmt.Println("drained:", d.Wait())
	_, err = os.Stat(pidFile)
	fmt.Println("pid file removed:", os.IsNotExist(err))
	// Output:
	// pid file names this process: true
	// hello from generation 1
	// drained: <nil>
	// pid file removed: true
}
