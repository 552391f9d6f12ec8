//go:build linux

package integration_test

import (
	"strings"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize"
)

// TestFailureReportQuotesNewProcessOnly restarts onto a script that writes
// two known lines to standard error, half a second apart, and exits 1,
// while the old process, under load, writes a line per request to the same
// file: the helper through package log (descriptor 2), the example to
// standard output pointed at the same file. The failure report (the log
// line, the status file, daemonize restart) quotes the script's lines and
// none of the old process's; the script's lines are in the file too.
func TestFailureReportQuotesNewProcessOnly(t *testing.T) {
	t.Parallel()
	const script = "#!/bin/sh\necho 'new binary: cannot read /etc/app.conf' >&2\nsleep 0.5\necho 'new binary: giving up' >&2\nexit 1\n"
	const want = "new binary: cannot read /etc/app.conf\nnew binary: giving up"
	for _, tc := range []struct {
		name   string
		bin    string
		marker string // in each line the old process logs per request
	}{
		{"helper logs to standard error", helperBin, "helper: access pid="},
		{"example logs to standard output, the same file", exampleBin, " GET /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tc.bin)
			s.env = []string{"DAEMONIZE_TEST_HELPER=server"}
			s.stdout = s.stderr
			pid := s.start("-access-log")
			load := s.loadInBackground()
			waitFor(t, 10*time.Second, "the old process to log requests", func() bool {
				return strings.Count(s.read(s.stderr), tc.marker) > 10
			})
			s.installScript(script)
			code, out := tool(t, "restart", "-pidfile", s.pidFile)
			load.check(t)
			// One-line messages join the lines with " | ".
			quotes := func(s string) bool {
				return strings.Contains(s, "new binary: cannot read /etc/app.conf") && strings.Contains(s, "new binary: giving up") && !strings.Contains(s, tc.marker)
			}
			if code != 1 || !quotes(out) {
				t.Errorf("daemonize restart: exit %d, output %q; want 1 and the script's lines only", code, out)
			}
			st, err := daemonize.ReadStatus(s.pidFile)
			if err != nil || st.LastRestart == nil || st.LastRestart.OK {
				t.Fatalf("status after the failed restart: %+v, %v", st, err)
			}
			if got := strings.TrimSpace(st.LastRestart.Stderr); got != want {
				t.Errorf("status file's last_restart.stderr = %q, want the script's lines %q", got, want)
			}
			if !quotes(st.LastRestart.Error) {
				t.Errorf("status file's last_restart.error = %q, want the script's lines only", st.LastRestart.Error)
			}
			// The status file says it first; the log line follows.
			waitFor(t, 10*time.Second, "the failure in the log", func() bool {
				return strings.Contains(s.read(s.stderr), "restart failed")
			})
			logged := s.read(s.stderr)
			var report string
			during := 0 // the old process's lines between the attempt's start and its report
			in := false
			for _, line := range strings.Split(logged, "\n") {
				switch {
				case strings.Contains(line, `msg="daemonize: restarting"`):
					in = true
				case strings.Contains(line, "restart failed"):
					report, in = line, false
				case in && strings.Contains(line, tc.marker):
					during++
				}
			}
			if !strings.Contains(report, "its last lines of standard error") || !quotes(report) {
				t.Errorf("the log's failure report quotes other lines than the script's:\n%s", report)
			}
			for _, line := range strings.Split(want, "\n") {
				if strings.Count(logged, line+"\n") == 0 {
					t.Errorf("the stderr file lacks the script's line %q", line)
				}
			}
			if during == 0 {
				t.Errorf("the old process logged nothing during the attempt: the test proves nothing")
			}
			t.Logf("the old process (pid %d) logged %d lines during the attempt; the report: %s", pid, during, report)
			if got := s.mustPID(); got != pid {
				t.Errorf("pid file names %d, want %d", got, pid)
			}
		})
	}
}
