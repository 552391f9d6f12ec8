// Package demo is the HTTP handler of examples/httpserver, shared with
// restartbench's benchserver and the integration tests' helper server so
// that they answer alike: a client (or a load generator) cannot tell them
// apart but by the version they report.
package demo

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Hello returns the body of GET /, which names the process that answers:
// "pid=<pid> generation=<n> version=<v>\n".
func Hello(generation int, version string) string {
	return fmt.Sprintf("pid=%d generation=%d version=%s\n", os.Getpid(), generation, version)
}

// NewMux returns a ServeMux with the demo endpoints, to which a caller may
// add its own:
//
//   - GET / answers [Hello].
//   - GET /sleep?d=<duration> answers the same after sleeping that long, or
//     nothing if the client goes away first; 400 if d is not a duration of
//     0 or more, such as 1.5s. A request that spans a restart shows whether
//     the old process lets it finish.
func NewMux(generation int, version string) *http.ServeMux {
	hello := Hello(generation, version)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, hello)
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		t, err := time.ParseDuration(r.FormValue("d"))
		if err != nil || t < 0 {
			http.Error(w, "want ?d=<duration>, such as 1.5s", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(t):
			io.WriteString(w, hello)
		case <-r.Context().Done():
		}
	})
	return mux
}

// Stream answers GET /stream with server-sent events, one "data: pid=<pid>
// n=<k>" every 100 ms, until the channel draining returns is closed (the
// process drains) or the client goes away. The stream ends after a whole
// event, so a client reconnects, to the new process, without having lost
// one.
func Stream(draining func() <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		drain := draining()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			if _, err := fmt.Fprintf(w, "data: pid=%d n=%d\n\n", os.Getpid(), n); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-drain:
				return
			case <-r.Context().Done():
				return
			}
		}
	}
}
