//go:build linux

package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/daemonize-dev/daemonize/internal/load"
)

// report is everything one run measured. In JSON, durations are in
// nanoseconds and rates in requests per second.
type report struct {
	Go        string            `json:"go"`
	CPUs      int               `json:"cpus"`
	Config    config            `json:"config"`
	Restart   []*restartResult  `json:"restart,omitempty"`
	Gap       []*gapResult      `json:"gap,omitempty"`
	H2        []*h2Result       `json:"h2,omitempty"`
	Idle      []*idleResult     `json:"idle,omitempty"`
	Lower     *lowerResult      `json:"lower_bound,omitempty"`
	Overhead  []*overheadResult `json:"overhead,omitempty"`
	Scale     []*scaleResult    `json:"scale,omitempty"`
	Supervise *superviseResult  `json:"supervise,omitempty"`
	Goals     []goal            `json:"goals"`

	Interrupted bool `json:"interrupted,omitempty"`
}

// restartResult is what one server did in the restart part.
type restartResult struct {
	Server  string       `json:"server"`
	Steady  *phaseResult `json:"steady,omitempty"`  // load without restarts
	Restart *phaseResult `json:"restart,omitempty"` // load while restarting
	Asked   int          `json:"restarts_asked"`
	Done    int          `json:"restarts_done"`
	Ready   stats        `json:"signal_to_ready"`    // until a new process serves
	Gone    stats        `json:"signal_to_old_gone"` // until the old process has exited
	Unclean []string     `json:"unclean_exits,omitempty"`
	// Resident memory of the serving process, KiB: the first generation
	// after the load without restarts, and the last one at the end.
	RSSFirst int64  `json:"rss_first_kib"`
	RSSLast  int64  `json:"rss_last_kib"`
	Error    string `json:"error,omitempty"`
}

// phaseResult sums up one load.Run.
type phaseResult struct {
	Requests    int64            `json:"requests"`
	Failed      int64            `json:"failed"`
	Failures    map[string]int64 `json:"failures"`
	FirstErrors []string         `json:"first_errors,omitempty"`
	Elapsed     time.Duration    `json:"elapsed"`
	Rate        float64          `json:"rate"`
	P50         time.Duration    `json:"latency_p50"`
	P99         time.Duration    `json:"latency_p99"`
}

func newPhase(r *load.Result) *phaseResult {
	return &phaseResult{
		Requests:    r.Requests,
		Failed:      r.Failed,
		Failures:    r.Failures,
		FirstErrors: r.FirstErrs,
		Elapsed:     r.Elapsed,
		Rate:        rate(r.Requests, r.Elapsed),
		P50:         load.Percentile(r.Latencies, 50),
		P99:         load.Percentile(r.Latencies, 99),
	}
}

// lowerResult is the exec lower bound, from exec until GET / answers, and
// beside it, measured in turns with it, the library's restart of the same
// program without load.
type lowerResult struct {
	Runs    int    `json:"runs"`
	Start   stats  `json:"exec_to_serving"`
	Handoff stats  `json:"signal_to_ready_no_load"`
	Error   string `json:"error,omitempty"`
}

// overheadResult compares requests per second through the library with a
// plain listener.
type overheadResult struct {
	NewConn       bool          `json:"new_connection_per_request"`
	Rounds        int           `json:"rounds"`
	Round         time.Duration `json:"round"`
	Clients       int           `json:"clients"`
	Library       float64       `json:"library_rate"`
	Plain         float64       `json:"plain_rate"`
	Ratio         float64       `json:"ratio"`
	LibraryRounds []float64     `json:"library_rounds"`
	PlainRounds   []float64     `json:"plain_rounds"`
	Failed        int64         `json:"failed"`
	Error         string        `json:"error,omitempty"`
}

// clients names the kind of clients of an overhead measurement.
func (o *overheadResult) clients() string {
	if o.NewConn {
		return "clients with a new connection per request"
	}
	return "keep-alive clients"
}

// scaleResult is the library's hand-off time with n inherited listeners.
type scaleResult struct {
	Listeners int     `json:"listeners"`
	Served    bool    `json:"served"` // each listener has an http.Server of its own; otherwise only the first
	Ready     stats   `json:"signal_to_ready"`
	Gone      stats   `json:"signal_to_old_gone"`
	Start     stats   `json:"cold_start"`         // the same program with as many listeners, from exec until it answers
	VsFirst   float64 `json:"ready_p50_vs_first"` // this count's ready p50 over the first count's of the same series
	VsStart   float64 `json:"ready_p50_vs_cold_start"`
	// PerListener is the growth of ready p50 per listener added since the
	// first count.
	PerListener time.Duration `json:"ready_p50_growth_per_listener"`
	Error       string        `json:"error,omitempty"`
}

// setScale fills the figures of the scale part computed from others.
func (r *report) setScale() {
	for _, series := range r.scaleSeries() {
		first := series[0]
		for _, s := range series {
			if s.Ready.N > 0 && s.Start.N > 0 {
				s.VsStart = ratio(s.Ready.P50, s.Start.P50)
			}
			if first.Ready.N == 0 || s.Ready.N == 0 {
				continue
			}
			s.VsFirst = ratio(s.Ready.P50, first.Ready.P50)
			if s != first {
				s.PerListener = (s.Ready.P50 - first.Ready.P50) / time.Duration(s.Listeners-first.Listeners)
			}
		}
	}
}

// scaleSeries returns the scale part's results, served listeners and
// listeners alone apart, each in the order of the counts.
func (r *report) scaleSeries() [][]*scaleResult {
	var served, alone []*scaleResult
	for _, s := range r.Scale {
		if s.Served {
			served = append(served, s)
		} else {
			alone = append(alone, s)
		}
	}
	var series [][]*scaleResult
	for _, s := range [][]*scaleResult{served, alone} {
		if len(s) > 0 {
			series = append(series, s)
		}
	}
	return series
}

// what says what a scale series serves.
func (s *scaleResult) what() string {
	if s.Served {
		return "an http.Server on each listener"
	}
	return "listeners alone, one served"
}

// stats sums up a set of durations.
type stats struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P95 time.Duration `json:"p95"`
	Max time.Duration `json:"max"`
}

func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	return stats{N: len(ds), P50: load.Percentile(ds, 50), P95: load.Percentile(ds, 95), Max: slices.Max(ds)}
}

func (s stats) String() string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", ms(s.P50), ms(s.P95), ms(s.Max))
}

// goal is one of the targets the issue sets, with what this run got. Met is
// nil when the run did not measure what the goal needs.
type goal struct {
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  *bool  `json:"met,omitempty"`
}

// mib formats a size in KiB as MiB; "-" if unknown.
func mib(kib int64) string {
	if kib <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// ms formats d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func newReport(cfg config) *report {
	return &report{Go: runtime.Version(), CPUs: runtime.NumCPU(), Config: cfg}
}

// result returns the restart result of a server, or nil.
func (r *report) result(server string) *restartResult {
	for _, x := range r.Restart {
		if x.Server == server && x.Error == "" && x.Restart != nil {
			return x
		}
	}
	return nil
}

// setGoals compares what was measured with the targets.
func (r *report) setGoals() {
	add := func(g, got string, met bool, measured bool) {
		x := goal{Goal: g, Got: got}
		if measured {
			x.Met = &met
		}
		r.Goals = append(r.Goals, x)
	}
	lib, tf, naive := r.result(serverLibrary), r.result(serverTableflip), r.result(serverNaive)
	if lib != nil {
		add("the library loses no request across restarts",
			fmt.Sprintf("%d failed of %d, over %d restarts", lib.Restart.Failed, lib.Restart.Requests, lib.Done),
			lib.Restart.Failed == 0, lib.Done > 0)
	}
	if lower := r.Lower; lower != nil && lower.Start.N > 0 {
		// The lower bound is measured without load, in turns with the
		// library's restart of the same program: like with like.
		if lower.Handoff.N > 0 {
			x := ratio(lower.Handoff.P50, lower.Start.P50)
			add("signal->ready p50 within 1.1x the exec lower bound, no load",
				fmt.Sprintf("%.2fx (%s / %s)", x, ms(lower.Handoff.P50), ms(lower.Start.P50)), x <= 1.1, true)
		}
		if lib != nil && lib.Ready.N > 0 {
			x := ratio(lib.Ready.P50, lower.Start.P50)
			add("signal->ready p50 within 1.1x the exec lower bound, under load",
				fmt.Sprintf("%.2fx (%s / %s without load)", x, ms(lib.Ready.P50), ms(lower.Start.P50)), x <= 1.1, true)
		}
	}
	if lib != nil && lib.Ready.N > 0 && tf != nil && tf.Ready.N > 0 {
		x := ratio(lib.Ready.P50, tf.Ready.P50)
		add("signal->ready p50 at most tableflip's, under load",
			fmt.Sprintf("%.2fx (%s / %s)", x, ms(lib.Ready.P50), ms(tf.Ready.P50)), x <= 1, true)
	}
	for _, o := range r.Overhead {
		if o.Error == "" {
			add("requests/s through the library at least 0.99x plain net.Listen, "+o.clients(),
				fmt.Sprintf("%.3fx (%.0f / %.0f req/s)", o.Ratio, o.Library, o.Plain), o.Ratio >= 0.99, true)
		}
	}
	for _, series := range r.scaleSeries() {
		first, last := series[0], series[len(series)-1]
		if first.Ready.N > 0 && last.Ready.N > 0 && last.Listeners > first.Listeners {
			add(fmt.Sprintf("hand-off with %d listeners within 2x one with %d, p50, %s", last.Listeners, first.Listeners, last.what()),
				fmt.Sprintf("%.2fx (%s / %s; %s per added listener)", last.VsFirst, ms(last.Ready.P50), ms(first.Ready.P50), last.PerListener.Round(100*time.Nanosecond)),
				last.VsFirst <= 2, true)
			if first.Start.N > 0 && last.Start.N > 0 {
				add(fmt.Sprintf("beside it: a cold start of the same program with %d listeners against one", last.Listeners),
					fmt.Sprintf("%.2fx (%s / %s); the hand-off with %d is %.2fx that cold start", ratio(last.Start.P50, first.Start.P50), ms(last.Start.P50), ms(first.Start.P50), last.Listeners, last.VsStart), false, false)
			}
		}
	}
	for _, g := range r.Gap {
		if g.Server == serverLibrary && g.Error == "" && g.Gap.N > 0 {
			add(fmt.Sprintf("longest time without a successful request during a restart <= 2ms, p50, %d clients", g.Clients),
				fmt.Sprintf("p50 %s, max %s over %d restarts (without restarts: p50 %s, max %s)", ms(g.Gap.P50), ms(g.Gap.Max), g.Restarts, ms(g.Floor.P50), ms(g.Floor.Max)),
				g.Gap.P50 <= 2*time.Millisecond, true)
		}
	}
	for _, h := range r.H2 {
		if h.Server == serverLibrary && h.Restarts > 0 && h.Total > 0 {
			add("no failed or errored HTTP/2 request across restarts, "+h.Protocol,
				fmt.Sprintf("%d failed, %d errored, %d timeout, %d non-2xx of %d, over %d restarts", h.Failed, h.Errored, h.Timeout, h.Non2xx, h.Total, h.Restarts),
				h.Failed+h.Errored+h.Timeout+h.Non2xx == 0, true)
		}
	}
	for _, x := range []*restartResult{tf, naive} {
		if x != nil {
			add("beside it: what "+x.Server+" loses", fmt.Sprintf("%d failed of %d, over %d restarts%s",
				x.Restart.Failed, x.Restart.Requests, x.Done, kinds(x.Restart.Failures)), false, false)
		}
	}
}

// times prints a ratio, or "-" if there is none.
func times(x float64) string {
	if x <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// kinds lists the failure kinds that occurred, such as " (reset 3, refused 9)".
func kinds(m map[string]int64) string {
	var parts []string
	for _, k := range failureKinds {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// failureKinds are load's kinds of failed request, in report order.
var failureKinds = []string{load.Refused, load.Reset, load.Closed, load.Status, load.Timeout, load.Other}

// print writes the report for people.
func (r *report) print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "restartbench: %s, %d CPUs; ratios matter more than absolute times on a shared machine\n", r.Go, r.CPUs)
	if r.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: the results are partial")
	}
	if len(r.Restart) > 0 {
		fmt.Fprintf(w, "\nRestarts under load. Clients that never retry: %d keep-alive, %d with a new connection per request,\n",
			(c.Clients+1)/2, c.Clients/2)
		fmt.Fprintf(w, "%d on /sleep?d=%s. Load for %s without restarts, then for %s with %d restarts spread evenly;\n",
			c.Slow, c.Sleep, c.Steady, c.Duration, c.Restarts)
		fmt.Fprintf(w, "each phase ends after %d requests at most.\n", c.Requests)
		fmt.Fprintf(w, "Times are p50 / p95 / max; ready = the pid file names a new process and it answers GET /.\n\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		row := func(name string, f func(x *restartResult) string) {
			fmt.Fprint(tw, name)
			for _, x := range r.Restart {
				fmt.Fprint(tw, "\t", f(x))
			}
			fmt.Fprintln(tw)
		}
		phase := func(p *phaseResult, f func(p *phaseResult) string) string {
			if p == nil {
				return "-"
			}
			return f(p)
		}
		row("", func(x *restartResult) string { return x.Server })
		row("restarts done", func(x *restartResult) string { return fmt.Sprintf("%d of %d", x.Done, x.Asked) })
		row("requests while restarting", func(x *restartResult) string {
			return phase(x.Restart, func(p *phaseResult) string { return fmt.Sprint(p.Requests) })
		})
		row("failed", func(x *restartResult) string {
			return phase(x.Restart, func(p *phaseResult) string { return fmt.Sprint(p.Failed) })
		})
		for _, k := range failureKinds {
			row("  "+k, func(x *restartResult) string {
				return phase(x.Restart, func(p *phaseResult) string { return fmt.Sprint(p.Failures[k]) })
			})
		}
		row("signal -> new ready", func(x *restartResult) string { return x.Ready.String() })
		row("signal -> old gone", func(x *restartResult) string { return x.Gone.String() })
		row("request p50 / p99, restarting", func(x *restartResult) string {
			return phase(x.Restart, func(p *phaseResult) string { return ms(p.P50) + " / " + ms(p.P99) })
		})
		row("request p50 / p99, no restarts", func(x *restartResult) string {
			return phase(x.Steady, func(p *phaseResult) string { return ms(p.P50) + " / " + ms(p.P99) })
		})
		row("requests/s, restarting", func(x *restartResult) string {
			return phase(x.Restart, func(p *phaseResult) string { return fmt.Sprintf("%.0f", p.Rate) })
		})
		row("requests/s, no restarts", func(x *restartResult) string {
			return phase(x.Steady, func(p *phaseResult) string { return fmt.Sprintf("%.0f", p.Rate) })
		})
		row("requests, no restarts", func(x *restartResult) string {
			return phase(x.Steady, func(p *phaseResult) string { return fmt.Sprint(p.Requests) })
		})
		row("failed, no restarts", func(x *restartResult) string {
			return phase(x.Steady, func(p *phaseResult) string { return fmt.Sprint(p.Failed) })
		})
		row("resident memory, first / last", func(x *restartResult) string {
			return fmt.Sprintf("%s / %s", mib(x.RSSFirst), mib(x.RSSLast))
		})
		tw.Flush()
		for _, x := range r.Restart {
			if x.Server == serverNaive && x.Restart != nil && x.Restart.Failures[load.Refused] > 0 {
				fmt.Fprintln(w, "(naive: clients retry a refused connection at once, so each restart's downtime counts many refused requests)")
			}
			if len(x.Unclean) > 0 {
				fmt.Fprintf(w, "%s: old processes that did not exit 0: %s\n", x.Server, strings.Join(x.Unclean, "; "))
			}
			if x.Restart != nil && len(x.Restart.FirstErrors) > 0 {
				fmt.Fprintf(w, "%s: first failures: %s\n", x.Server, strings.Join(x.Restart.FirstErrors, "; "))
			}
			if x.Error != "" {
				fmt.Fprintf(w, "%s: ERROR: %s\n", x.Server, x.Error)
			}
		}
	}
	if len(r.Gap) > 0 {
		fmt.Fprintf(w, "\nLongest time without a successful request, %d clients (half keep-alive, half a connection per request),\n", c.GapClients)
		fmt.Fprintf(w, "per restart from the signal until the old process has exited, and over windows as long without restarts;\n")
		fmt.Fprintf(w, "from the end times of the load generator's requests. p50 / p95 / max:\n\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  server\trestarts\tlongest gap, restarting\tit began after the signal\tlongest gap, no restarts\tsignal -> new ready\tfailed")
		for _, g := range r.Gap {
			failed := "-"
			if g.Load != nil {
				failed = fmt.Sprintf("%d of %d%s", g.Load.Failed, g.Load.Requests, kinds(g.Load.Failures))
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\n", g.Server, g.Restarts, g.Gap, g.GapAt, g.Floor, g.Ready, failed)
		}
		tw.Flush()
		for _, g := range r.Gap {
			if g.Error != "" {
				fmt.Fprintf(w, "  %s: ERROR: %s\n", g.Server, g.Error)
			}
		}
	}
	if len(r.H2) > 0 {
		fmt.Fprintf(w, "\nHTTP/2 across restarts: h2load -c %d -m %d -D %s, %d restarts spread evenly:\n\n", c.H2Clients, c.H2Streams, c.H2Duration, c.H2Restarts)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  server\tprotocol\trestarts\trequests\tfailed\terrored\ttimeout\tnon-2xx\tsignal -> new ready\tsignal -> old gone")
		for _, h := range r.H2 {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", h.Server, h.Protocol, h.Restarts, h.Total, h.Failed, h.Errored, h.Timeout, h.Non2xx, h.Ready, h.Gone)
		}
		tw.Flush()
		for _, h := range r.H2 {
			if h.Error != "" {
				fmt.Fprintf(w, "  %s %s: ERROR: %s\n", h.Server, h.Protocol, h.Error)
			}
		}
	}
	if len(r.Idle) > 0 {
		fmt.Fprintf(w, "\nTwo restarts in a row, one idle keep-alive client on the first process, %d rounds (p50 / p95 / max):\n\n", c.IdleRounds)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  server\tfirst: signal -> new ready\tsecond: signal -> new ready\tsecond signal -> first old gone")
		for _, x := range r.Idle {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", x.Server, x.First, x.Second, x.Gone)
		}
		tw.Flush()
		for _, x := range r.Idle {
			if x.Error != "" {
				fmt.Fprintf(w, "  %s: ERROR: %s\n", x.Server, x.Error)
			}
		}
	}
	if l := r.Lower; l != nil {
		fmt.Fprintf(w, "\nExec lower bound: examples/httpserver from exec until it answers GET /, %d runs:\n", l.Start.N)
		fmt.Fprintf(w, "  p50 %s, p95 %s, max %s\n", ms(l.Start.P50), ms(l.Start.P95), ms(l.Start.Max))
		fmt.Fprintf(w, "  in turns with it, the library's restart of the same program, signal -> new ready, no load:\n")
		fmt.Fprintf(w, "  p50 %s, p95 %s, max %s\n", ms(l.Handoff.P50), ms(l.Handoff.P95), ms(l.Handoff.Max))
		if l.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", l.Error)
		}
	}
	if r.Supervise != nil {
		r.Supervise.print(w)
	}
	for _, o := range r.Overhead {
		fmt.Fprintf(w, "\nSteady-state overhead: %d %s, %d alternating rounds of %s on each server:\n", o.Clients, o.clients(), o.Rounds, o.Round)
		fmt.Fprintf(w, "  daemonize (Listen + Serve)  %8.0f req/s  rounds %s\n", o.Library, rates(o.LibraryRounds))
		fmt.Fprintf(w, "  plain net.Listen            %8.0f req/s  rounds %s\n", o.Plain, rates(o.PlainRounds))
		fmt.Fprintf(w, "  ratio %.3f; failed requests %d\n", o.Ratio, o.Failed)
		if o.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", o.Error)
		}
	}
	for _, series := range r.scaleSeries() {
		fmt.Fprintf(w, "\nHand-off time by inherited listeners, %s, %d restarts each (p50 / p95 / max),\nand a cold start of the same program with as many listeners, in turns:\n", series[0].what(), c.ScaleRestarts)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  listeners\tsignal -> new ready\tsignal -> old gone\tready p50 vs first\tcold start p50\tready p50 vs cold start")
		for _, s := range series {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", s.Listeners, s.Ready, s.Gone, times(s.VsFirst), ms(s.Start.P50), times(s.VsStart))
		}
		tw.Flush()
		if last := series[len(series)-1]; last.VsFirst > 0 && last != series[0] {
			fmt.Fprintf(w, "  growth: %s per added listener\n", last.PerListener.Round(100*time.Nanosecond))
		}
		for _, s := range series {
			if s.Error != "" {
				fmt.Fprintf(w, "  %d listeners: ERROR: %s\n", s.Listeners, s.Error)
			}
		}
	}
	if len(r.Goals) > 0 {
		fmt.Fprintln(w, "\nGoals:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, g := range r.Goals {
			if g.Met == nil {
				fmt.Fprintf(tw, "  %s\t%s\n", g.Goal, g.Got)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", g.Goal, g.Got, map[bool]string{true: "met", false: "NOT MET"}[*g.Met])
		}
		tw.Flush()
	}
}

func rates(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(s, " ")
}
