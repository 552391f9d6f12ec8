//go:build linux

package realclient

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nginx is an nginx in front of one upstream server, as production puts it:
// an upstream block with a pool of idle keep-alive connections
// (keepalive 32; proxy_http_version 1.1; proxy_set_header Connection ""),
// and the default proxy_next_upstream. A request that fails on a pooled
// connection is retried once by nginx, so the client may not see it; the
// error log does ([Nginx.UpstreamErrors]).
type Nginx struct {
	t    testing.TB
	Dir  string // -p: the configuration, pid file, logs and temporary files
	Addr string // where it listens: 127.0.0.1:PORT
	p    *process
}

// StartNginx starts nginx proxying to upstream (host:port) on a free
// loopback port, waits until it answers, and stops it in t.Cleanup.
func StartNginx(t testing.TB, upstream string) *Nginx {
	t.Helper()
	path, err := lookPath("nginx")
	if err != nil {
		t.Fatal(err)
	}
	n := &Nginx{t: t, Dir: t.TempDir()}
	for attempt := 0; ; attempt++ {
		n.Addr = freeLoopbackAddr(t)
		if err := os.WriteFile(n.file("nginx.conf"), []byte(n.config(upstream)), 0o644); err != nil {
			t.Fatal(err)
		}
		// -e: without it nginx opens its compiled-in error log before
		// reading the configuration.
		cmd := exec.Command(path, "-p", n.Dir, "-c", n.file("nginx.conf"), "-e", n.file("error.log"))
		out, err := os.Create(n.file("stderr.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		n.p, err = start(cmd)
		out.Close()
		if err != nil {
			t.Fatal(err)
		}
		ok := poll(10*time.Second, func() bool {
			if n.p.exited() {
				return true
			}
			c, err := net.DialTimeout("tcp", n.Addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil && n.pid() == n.p.pid()
		})
		switch {
		case ok && !n.p.exited():
			t.Cleanup(n.Stop)
			return n
		case !ok:
			n.kill()
			t.Fatalf("nginx not serving on %s within 10s: %s", n.Addr, n.Log())
		case attempt < 3 && strings.Contains(n.Log(), "Address already in use"):
			continue // the port was taken since it was picked
		default:
			t.Fatalf("nginx exited %d: %s", n.p.exitCode(), n.Log())
		}
	}
}

func (n *Nginx) file(name string) string { return filepath.Join(n.Dir, name) }

func (n *Nginx) config(upstream string) string {
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
	worker_connections 1024;
}
http {
	log_format upstream '$status $upstream_status $upstream_addr $request_time';
	access_log %[1]s/access.log upstream;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	upstream backend {
		server %[2]s;
		keepalive 32;
	}
	server {
		listen %[3]s;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`, n.Dir, upstream, n.Addr)
}

// URL returns http://ADDR + path.
func (n *Nginx) URL(path string) string { return "http://" + n.Addr + path }

// pid reads nginx's pid file (0 if it has none).
func (n *Nginx) pid() int {
	b, _ := os.ReadFile(n.file("nginx.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Log returns nginx's error log and what it printed.
func (n *Nginx) Log() string {
	e, _ := os.ReadFile(n.file("error.log"))
	o, _ := os.ReadFile(n.file("stderr.log"))
	return string(e) + string(o)
}

// UpstreamErrors returns the error log's lines about the upstream at level
// error or worse: a connection the server closed or reset ("upstream
// prematurely closed connection", "recv() failed (104: Connection reset by
// peer) while reading response header from upstream"), a refused connect,
// "no live upstreams".
func (n *Nginx) UpstreamErrors() []string {
	b, _ := os.ReadFile(n.file("error.log"))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "upstream") && (strings.Contains(l, "[error]") || strings.Contains(l, "[crit]") || strings.Contains(l, "[alert]") || strings.Contains(l, "[emerg]")) {
			lines = append(lines, l)
		}
	}
	return lines
}

// Statuses counts the access log's responses by status: 502 is a request
// nginx could not get answered by the upstream.
func (n *Nginx) Statuses() map[int]int {
	b, _ := os.ReadFile(n.file("access.log"))
	counts := make(map[int]int)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			code, _ := strconv.Atoi(f[0])
			counts[code]++
		}
	}
	return counts
}

// Stop shuts nginx down gracefully (kill -QUIT on the pid in its pid file)
// and waits for it; after 10 s it kills the master and its workers. Stop
// may be called more than once.
func (n *Nginx) Stop() {
	if n.p.exited() {
		return
	}
	pid := n.pid()
	if pid != n.p.pid() {
		n.t.Errorf("nginx pid file says %d, started %d", pid, n.p.pid())
		pid = n.p.pid()
	}
	syscall.Kill(pid, syscall.SIGQUIT)
	if n.p.wait(10 * time.Second) {
		return
	}
	n.t.Errorf("nginx (pid %d) still running 10s after SIGQUIT; killing it", pid)
	n.kill()
}

// kill kills the workers, then the master, by pid, and reaps them.
func (n *Nginx) kill() {
	workers := ChildrenOf(n.p.pid())
	for _, w := range workers {
		syscall.Kill(w, syscall.SIGKILL)
	}
	n.p.stop(syscall.SIGKILL, 10*time.Second)
	for _, w := range workers {
		if !WaitGone(w, 10*time.Second) {
			n.t.Errorf("nginx worker %d still running 10s after SIGKILL", w)
		}
	}
}

// freeLoopbackAddr returns a loopback address with a port nobody listens
// on, below the kernel's ephemeral range so that no client connection takes
// it before the server binds it.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port")
	return ""
}
