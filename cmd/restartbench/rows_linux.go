//go:build linux

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/daemonize-dev/daemonize/internal/load"
	"github.com/daemonize-dev/daemonize/internal/realclient"
)

// This file has the parts that compare the servers on one question each:
// the longest time without a successful request during a restart (gap),
// HTTP/2 clients across restarts (h2), and two restarts in a row with an
// idle keep-alive client (idle).

// gapResult is the longest time without a successful request, per restart,
// for one server under many clients.
type gapResult struct {
	Server   string       `json:"server"`
	Clients  int          `json:"clients"`
	Restarts int          `json:"restarts_done"`
	Floor    stats        `json:"longest_gap_no_restarts"`         // the same measure over windows as long, without restarts
	Gap      stats        `json:"longest_gap_per_restart"`         // from the signal until the old process has exited
	GapAt    stats        `json:"longest_gap_starts_after_signal"` // where in the restart each longest gap began
	Ready    stats        `json:"signal_to_ready"`
	Gone     stats        `json:"signal_to_old_gone"`
	Load     *phaseResult `json:"load"`
	Error    string       `json:"error,omitempty"`
}

// gapPart loads one server with -gap-clients clients, first without
// restarts, then while restarting it -gap-restarts times, and finds for
// each restart the longest time in which no request succeeded: the time
// during which clients, all of them, waited.
func (b *bench) gapPart(ctx context.Context, name string) *gapResult {
	r := &gapResult{Server: name, Clients: b.cfg.GapClients}
	defer b.stopAll(&r.Error)
	s, err := b.serverFor(name, "")
	if err == nil {
		b.logf("gap: %s, %d clients, %d restarts", name, b.cfg.GapClients, b.cfg.GapRestarts)
		err = s.start(ctx)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	every := b.cfg.GapEvery
	c := load.Config{
		Addr:        s.addr,
		KeepAlive:   (b.cfg.GapClients + 1) / 2,
		NewConn:     b.cfg.GapClients / 2,
		MaxRequests: 1 << 40,
		Timeout:     b.cfg.Timeout,
		RecordEnds:  true,
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res *load.Result
	loaded := make(chan struct{})
	// Half a second to settle, the floor's windows, then the restarts.
	floorWindows := b.cfg.GapRestarts
	total := time.Second/2 + time.Duration(floorWindows+b.cfg.GapRestarts+1)*every
	start := time.Now()
	go func() {
		defer close(loaded)
		res = runLoad(lctx, c, total+goneLimit)
	}()
	var windows []windowT
	var ready, gone []time.Duration
	for i := range b.cfg.GapRestarts {
		if !pace(ctx, loaded, start.Add(time.Second/2+time.Duration(floorWindows+i)*every)) {
			break
		}
		t0 := time.Now()
		rd, ex, err := s.restart(ctx)
		if err != nil {
			r.Error = err.Error()
			break
		}
		windows = append(windows, windowT{t0, t0.Add(ex)})
		ready, gone = append(ready, rd), append(gone, ex)
	}
	cancel()
	<-loaded
	// The floor's windows are as long as the restarts', one each, in the
	// first part of the load, when nothing restarts.
	var floors []windowT
	for i, w := range windows {
		t0 := start.Add(time.Second/2 + time.Duration(i)*every)
		floors = append(floors, windowT{t0, t0.Add(w.to.Sub(w.from))})
	}
	ends := slices.SortedFunc(slices.Values(res.Ends), func(a, b time.Time) int { return a.Compare(b) })
	r.Restarts = len(windows)
	gaps, at := longestGaps(ends, windows)
	r.Gap, r.GapAt = summarize(gaps), summarize(at)
	floor, _ := longestGaps(ends, floors)
	r.Floor = summarize(floor)
	r.Ready, r.Gone = summarize(ready), summarize(gone)
	res.Ends = nil
	r.Load = newPhase(res)
	return r
}

// windowT is a span of time.
type windowT struct{ from, to time.Time }

// longestGaps returns, for each window, the longest time between two
// successive successful requests (ends sorted) that overlaps the window,
// and when it began after the window's start (0 if before).
func longestGaps(ends []time.Time, windows []windowT) (gaps, at []time.Duration) {
	for _, w := range windows {
		// The last end before the window, and the first after it, bound
		// the gaps that overlap it.
		i, _ := slices.BinarySearchFunc(ends, w.from, func(a, b time.Time) int { return a.Compare(b) })
		j, _ := slices.BinarySearchFunc(ends, w.to, func(a, b time.Time) int { return a.Compare(b) })
		i = max(i-1, 0)
		j = min(j+1, len(ends)-1)
		var longest, began time.Duration
		for k := i; k < j; k++ {
			if d := ends[k+1].Sub(ends[k]); d > longest {
				longest, began = d, max(0, ends[k].Sub(w.from))
			}
		}
		gaps, at = append(gaps, longest), append(at, began)
	}
	return gaps, at
}

// serverFor returns the server of the restart part by name, with extra
// arguments for the protocol: "" (HTTP/1.1), "tls" or "h2c".
func (b *bench) serverFor(name, proto string) (*server, error) {
	var extra []string
	switch proto {
	case "tls":
		cert, key, err := b.certificate()
		if err != nil {
			return nil, err
		}
		extra = []string{"-tls-cert", cert, "-tls-key", key}
	case "h2c":
		extra = []string{"-h2c"}
	}
	var s *server
	var err error
	switch name {
	case serverLibrary:
		s, err = b.libraryServer(name + proto)
		if err == nil {
			s.cmd = append(s.cmd, extra...)
		}
	case serverTableflip:
		if s, err = b.benchServer(name+proto, "tableflip", extra...); err == nil {
			s.sig = syscall.SIGHUP
		}
	case serverNaive:
		s, err = b.benchServer(name+proto, "plain", extra...)
	default:
		err = fmt.Errorf("unknown server %q", name)
	}
	if s != nil {
		s.tls = proto == "tls"
	}
	return s, err
}

// certificate writes a throw-away self-signed certificate for 127.0.0.1
// into the scratch directory, once, and returns its files.
func (b *bench) certificate() (cert, key string, err error) {
	cert, key = filepath.Join(b.dir, "cert.pem"), filepath.Join(b.dir, "key.pem")
	if _, err := os.Stat(cert); err == nil {
		return cert, key, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	return cert, key, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// h2Result is h2load's count across restarts of one server.
type h2Result struct {
	Server    string        `json:"server"`
	Protocol  string        `json:"protocol"` // "h2 over TLS" or "h2c"
	Clients   int           `json:"connections"`
	Streams   int           `json:"streams_per_connection"`
	Duration  time.Duration `json:"duration"`
	Restarts  int           `json:"restarts_done"`
	Total     int64         `json:"requests"`
	Succeeded int64         `json:"succeeded"`
	Failed    int64         `json:"failed"`
	Errored   int64         `json:"errored"`
	Timeout   int64         `json:"timeout"`
	Non2xx    int64         `json:"non_2xx"`
	Ready     stats         `json:"signal_to_ready"`
	Gone      stats         `json:"signal_to_old_gone"`
	Error     string        `json:"error,omitempty"`
}

// h2Part runs h2load (-h2-clients connections x -h2-streams streams) on
// one server for -h2-duration while it restarts -h2-restarts times.
func (b *bench) h2Part(ctx context.Context, name, proto string) *h2Result {
	r := &h2Result{Server: name, Protocol: map[string]string{"tls": "h2 over TLS", "h2c": "h2c"}[proto],
		Clients: b.cfg.H2Clients, Streams: b.cfg.H2Streams, Duration: b.cfg.H2Duration}
	defer b.stopAll(&r.Error)
	s, err := b.serverFor(name, proto)
	if err == nil {
		b.logf("h2: %s, %s, h2load -c %d -m %d for %s, %d restarts", name, r.Protocol, r.Clients, r.Streams, r.Duration, b.cfg.H2Restarts)
		err = s.start(ctx)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	url := "http://" + s.addr + "/"
	if proto == "tls" {
		url = "https://" + s.addr + "/"
	}
	type h2out struct {
		res *realclient.H2loadResult
		err error
	}
	done := make(chan h2out, 1)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		res, err := realclient.RunH2load(ctx, realclient.H2loadConfig{URL: url, Clients: r.Clients, Streams: r.Streams, Duration: r.Duration})
		done <- h2out{res, err}
	}()
	start := time.Now()
	every := r.Duration / time.Duration(b.cfg.H2Restarts+1)
	var ready, gone []time.Duration
	for i := 1; i <= b.cfg.H2Restarts; i++ {
		if !pace(ctx, loaded, start.Add(time.Duration(i)*every)) {
			break
		}
		rd, ex, err := s.restart(ctx)
		if err != nil {
			r.Error = err.Error()
			break
		}
		ready, gone = append(ready, rd), append(gone, ex)
	}
	out := <-done
	r.Restarts = len(ready)
	r.Ready, r.Gone = summarize(ready), summarize(gone)
	if out.err != nil && r.Error == "" {
		r.Error = out.err.Error()
	}
	if res := out.res; res != nil {
		r.Total, r.Succeeded, r.Failed, r.Errored, r.Timeout = res.Total, res.Succeeded, res.Failed, res.Errored, res.Timeout
		r.Non2xx = res.Status3xx + res.Status4xx + res.Status5xx
	}
	return r
}

// idleResult is how long two restarts in a row take while one keep-alive
// client holds an idle connection to the old process.
type idleResult struct {
	Server string `json:"server"`
	Rounds int    `json:"rounds"`
	First  stats  `json:"first_signal_to_ready"`
	Second stats  `json:"second_signal_to_ready"` // signalled as soon as the first was ready
	Gone   stats  `json:"second_signal_to_first_old_gone"`
	Error  string `json:"error,omitempty"`
}

// idlePart opens one keep-alive connection, makes a request on it and
// leaves it idle, restarts, and restarts again at once: the second restart
// waits for the process that holds the idle connection to exit.
func (b *bench) idlePart(ctx context.Context, name string) *idleResult {
	r := &idleResult{Server: name, Rounds: b.cfg.IdleRounds}
	defer b.stopAll(&r.Error)
	s, err := b.serverFor(name, "")
	if err == nil {
		b.logf("idle: %s, %d rounds of two restarts with an idle keep-alive client", name, r.Rounds)
		err = s.start(ctx)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var first, second, gone []time.Duration
	for range r.Rounds {
		c, err := idleClient(s.addr)
		if err != nil {
			r.Error = err.Error()
			break
		}
		held := s.pid
		rd1, err := s.restartNoWait(ctx)
		if err == nil {
			var rd2 time.Duration
			t0 := time.Now()
			rd2, _, err = s.restart(ctx)
			if err == nil {
				second = append(second, rd2)
				first = append(first, rd1)
				// The first old process is gone by the time the second
				// restart is done: a generation restarts only after.
				if st, e := waitGone(ctx, held, goneLimit); e == nil && !clean(st) {
					s.unclean = append(s.unclean, fmt.Sprintf("pid %d: %v", held, st))
				}
				gone = append(gone, time.Since(t0))
			}
		}
		c.Close()
		if err != nil {
			r.Error = err.Error()
			break
		}
	}
	r.First, r.Second, r.Gone = summarize(first), summarize(second), summarize(gone)
	return r
}

// restartNoWait restarts the server and returns once a new process serves,
// without waiting for the old one to exit.
func (s *server) restartNoWait(ctx context.Context) (time.Duration, error) {
	old := s.pid
	t0 := time.Now()
	if err := syscall.Kill(old, s.sig); err != nil {
		return 0, s.fail(err)
	}
	if err := s.waitNew(ctx, old); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// idleClient opens a keep-alive connection, makes one request and leaves
// the connection open and idle.
func idleClient(addr string) (interface{ Close() error }, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		c.Close()
		return nil, err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		c.Close()
		return nil, fmt.Errorf("idle client: first request: %q, %v", buf[:n], err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// rssKiB returns the resident set size of pid in KiB, or 0.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
