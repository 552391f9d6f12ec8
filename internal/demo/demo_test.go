package demo_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/demo"
)

func TestNewMux(t *testing.T) {
	srv := httptest.NewServer(demo.NewMux(3, "v2"))
	defer srv.Close()
	hello := fmt.Sprintf("pid=%d generation=3 version=v2\n", os.Getpid())
	for _, tt := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/", 200, hello},
		{"GET", "/sleep?d=10ms", 200, hello},
		{"GET", "/sleep?d=0", 200, hello},
		{"GET", "/sleep", 400, "want ?d=<duration>, such as 1.5s\n"},
		{"GET", "/sleep?d=-1s", 400, "want ?d=<duration>, such as 1.5s\n"},
		{"GET", "/sleep?d=soon", 400, "want ?d=<duration>, such as 1.5s\n"},
		{"GET", "/other", 404, "404 page not found\n"},
		{"POST", "/", 405, "Method Not Allowed\n"},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || string(b) != tt.body {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, b, tt.code, tt.body)
		}
		if tt.path == "/sleep?d=10ms" && time.Since(start) < 10*time.Millisecond {
			t.Errorf("GET %s answered after %s, before sleeping 10ms", tt.path, time.Since(start))
		}
	}
	if got := demo.Hello(3, "v2"); got != hello {
		t.Errorf("Hello = %q, want %q", got, hello)
	}
}
