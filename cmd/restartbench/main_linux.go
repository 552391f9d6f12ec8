//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

// The parts of a run, and the servers of the restart part.
const (
	partRestart   = "restart"
	partLower     = "lower"
	partOverhead  = "overhead"
	partScale     = "scale"
	partGap       = "gap"
	partH2        = "h2"
	partIdle      = "idle"
	partSupervise = "supervise"

	serverLibrary   = "daemonize"
	serverTableflip = "tableflip"
	serverNaive     = "naive"
)

var (
	allParts   = []string{partRestart, partGap, partH2, partIdle, partLower, partOverhead, partScale, partSupervise}
	allServers = []string{serverLibrary, serverTableflip, serverNaive}
)

// config is what the flags set.
type config struct {
	Parts             []string      `json:"parts"`
	Servers           []string      `json:"servers"`
	Clients           int           `json:"clients"`
	Slow              int           `json:"slow_clients"`
	Sleep             time.Duration `json:"sleep"`
	Restarts          int           `json:"restarts"`
	Requests          int64         `json:"max_requests"`
	Duration          time.Duration `json:"duration"`
	Steady            time.Duration `json:"steady"`
	Timeout           time.Duration `json:"timeout"`
	LowerRuns         int           `json:"lower_runs"`
	Rounds            int           `json:"rounds"`
	Round             time.Duration `json:"round"`
	Listeners         []int         `json:"listeners"`
	ScaleRestarts     int           `json:"scale_restarts"`
	SuperviseRestarts int           `json:"supervise_restarts"`
	GapClients        int           `json:"gap_clients"`
	GapRestarts       int           `json:"gap_restarts"`
	GapEvery          time.Duration `json:"gap_every"`
	H2Clients         int           `json:"h2_connections"`
	H2Streams         int           `json:"h2_streams"`
	H2Duration        time.Duration `json:"h2_duration"`
	H2Restarts        int           `json:"h2_restarts"`
	IdleRounds        int           `json:"idle_rounds"`

	JSON bool   `json:"-"`
	Src  string `json:"-"`
	Keep bool   `json:"-"`
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("restartbench", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: restartbench [flags]\n\nMeasures restarts under load, the exec lower bound, steady-state overhead and hand-off scaling (see go doc ./cmd/restartbench).\n\n")
		fs.PrintDefaults()
	}
	only := fs.String("only", strings.Join(allParts, ","), "`parts` to run, comma-separated: "+strings.Join(allParts, ", "))
	servers := fs.String("servers", strings.Join(allServers, ","), "`servers` of the restart part, comma-separated: "+strings.Join(allServers, ", "))
	listeners := fs.String("listeners", "1,10,100,1000", "inherited listener `counts` of the scale part, comma-separated")
	fs.IntVar(&c.Clients, "clients", 6, "`n` fast clients: half keep-alive, half with a new connection per request (all keep-alive in the overhead part)")
	fs.IntVar(&c.Slow, "slow", 2, "`n` clients that request /sleep in the restart part, each on a new connection")
	fs.DurationVar(&c.Sleep, "sleep", 500*time.Millisecond, "how long a /sleep request takes")
	fs.IntVar(&c.Restarts, "restarts", 30, "restart each server `k` times in the restart part")
	fs.Int64Var(&c.Requests, "requests", 2_000_000, "end each load phase or round after `n` requests at most")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "load each server this long while it restarts; the restarts are spread evenly over it")
	fs.DurationVar(&c.Steady, "steady", 3*time.Second, "first load each server this long without restarts; 0 skips it")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "a request that takes longer counts as failed")
	fs.IntVar(&c.LowerRuns, "lower-runs", 30, "measure the exec lower bound `n` times")
	fs.IntVar(&c.Rounds, "rounds", 8, "`n` rounds on each server in the overhead part")
	fs.DurationVar(&c.Round, "round", 2*time.Second, "length of a round in the overhead part")
	fs.IntVar(&c.ScaleRestarts, "scale-restarts", 5, "restart `n` times for each listener count in the scale part")
	fs.IntVar(&c.SuperviseRestarts, "supervise-restarts", 10, "restart `n` times with and n times without -supervise in the supervise part")
	fs.IntVar(&c.GapClients, "gap-clients", 32, "`n` clients in the gap part, half keep-alive, half with a new connection per request")
	fs.IntVar(&c.GapRestarts, "gap-restarts", 10, "restart each server `k` times in the gap part")
	fs.DurationVar(&c.GapEvery, "gap-every", time.Second, "time between restarts in the gap part")
	fs.IntVar(&c.H2Clients, "h2-clients", 32, "h2load connections (-c) in the h2 part")
	fs.IntVar(&c.H2Streams, "h2-streams", 16, "h2load concurrent streams per connection (-m) in the h2 part")
	fs.DurationVar(&c.H2Duration, "h2-duration", 10*time.Second, "h2load run (-D, whole seconds) per server and protocol in the h2 part")
	fs.IntVar(&c.H2Restarts, "h2-restarts", 5, "restarts during each h2load run")
	fs.IntVar(&c.IdleRounds, "idle-rounds", 3, "rounds of two restarts in a row in the idle part")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON (durations in nanoseconds)")
	fs.StringVar(&c.Src, "src", ".", "`directory` inside the daemonize module, to build the servers from")
	fs.BoolVar(&c.Keep, "keep", false, "keep the scratch directory with the binaries, pid files and server logs")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var err error
	if c.Parts, err = names("-only", *only, allParts); err != nil {
		return c, err
	}
	if c.Servers, err = names("-servers", *servers, allServers); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*listeners, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-listeners %q: want positive counts such as 1,10,100", *listeners)
		}
		c.Listeners = append(c.Listeners, n)
	}
	for _, v := range []struct {
		name string
		ok   bool
	}{
		{"-clients must be at least 1", c.Clients >= 1},
		{"-slow must not be negative", c.Slow >= 0},
		{"-sleep must not be negative", c.Sleep >= 0},
		{"-restarts must not be negative", c.Restarts >= 0},
		{"-requests must be at least 1", c.Requests >= 1},
		{"-duration must be positive", c.Duration > 0},
		{"-steady must not be negative", c.Steady >= 0},
		{"-timeout must be positive", c.Timeout > 0},
		{"-lower-runs must be at least 1", c.LowerRuns >= 1},
		{"-rounds must be at least 1", c.Rounds >= 1},
		{"-round must be positive", c.Round > 0},
		{"-scale-restarts must be at least 1", c.ScaleRestarts >= 1},
		{"-supervise-restarts must be at least 1", c.SuperviseRestarts >= 1},
		{"-gap-clients must be at least 2", c.GapClients >= 2},
		{"-gap-restarts must be at least 1", c.GapRestarts >= 1},
		{"-gap-every must be positive", c.GapEvery > 0},
		{"-h2-clients must be at least 1", c.H2Clients >= 1},
		{"-h2-streams must be at least 1", c.H2Streams >= 1},
		{"-h2-duration must be at least 1s", c.H2Duration >= time.Second},
		{"-h2-restarts must not be negative", c.H2Restarts >= 0},
		{"-idle-rounds must be at least 1", c.IdleRounds >= 1},
	} {
		if !v.ok {
			return c, errors.New(v.name)
		}
	}
	return c, nil
}

// names splits a comma-separated list and checks each name against known.
func names(flagName, list string, known []string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("%s: unknown %q; want some of %s", flagName, s, strings.Join(known, ","))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func main() { os.Exit(run()) }

func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "restartbench:", err)
		return 2
	}
	if err := proc.BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "restartbench:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "restartbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "restartbench:", err)
		return 1
	}
	b := &bench{cfg: cfg, dir: dir, procs: newProcs()}
	if cfg.Keep {
		defer b.logf("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// Deferred after the directory's removal, so it runs before it.
	defer func() {
		if err := b.procs.close(); err != nil {
			b.logf("%v", err)
		}
	}()
	ctx, stop := b.handleSignals()
	defer stop()

	if err := b.build(ctx); err != nil {
		b.logf("%v", err)
		return 1
	}
	rep := newReport(cfg)
	for _, p := range cfg.Parts {
		if ctx.Err() != nil {
			break
		}
		switch p {
		case partRestart:
			for _, s := range cfg.Servers {
				if ctx.Err() == nil {
					rep.Restart = append(rep.Restart, b.restartPart(ctx, s))
				}
			}
		case partGap:
			for _, s := range cfg.Servers {
				if ctx.Err() == nil {
					rep.Gap = append(rep.Gap, b.gapPart(ctx, s))
				}
			}
		case partH2:
			// HTTP/2 has no naive row: it would show what the restart part shows.
			for _, s := range []string{serverLibrary, serverTableflip} {
				for _, proto := range []string{"tls", "h2c"} {
					if ctx.Err() == nil && slices.Contains(cfg.Servers, s) {
						rep.H2 = append(rep.H2, b.h2Part(ctx, s, proto))
					}
				}
			}
		case partIdle:
			for _, s := range []string{serverLibrary, serverTableflip} {
				if ctx.Err() == nil && slices.Contains(cfg.Servers, s) {
					rep.Idle = append(rep.Idle, b.idlePart(ctx, s))
				}
			}
		case partLower:
			rep.Lower = b.lowerPart(ctx)
		case partOverhead:
			rep.Overhead = []*overheadResult{b.overheadPart(ctx, false), b.overheadPart(ctx, true)}
		case partScale:
			rep.Scale = b.scalePart(ctx)
		case partSupervise:
			rep.Supervise = b.supervisePart(ctx)
		}
	}
	rep.Interrupted = ctx.Err() != nil
	rep.setScale()
	rep.setGoals()
	if cfg.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.print(os.Stdout)
	}
	if ctx.Err() != nil {
		return 130
	}
	return 0
}

// handleSignals returns a context that ends on the first SIGINT, SIGTERM or
// SIGHUP, so that the run stops and cleans up; a second signal kills the
// servers and exits at once.
func (b *bench) handleSignals() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		b.logf("interrupted: stopping the servers (again to quit at once)")
		cancel()
		select {
		case <-sigs:
		case <-done:
			return
		}
		b.procs.close()
		os.Exit(130)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
