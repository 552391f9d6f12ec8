package daemonize

// This file speaks systemd: the notify protocol (READY, RELOADING,
// STOPPING, MAINPID, the watchdog, EXTEND_TIMEOUT_USEC) and socket
// activation (LISTEN_FDS).

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// notifier speaks systemd's notify protocol: datagrams of "KEY=value" lines
// to the unix socket named by NOTIFY_SOCKET ("@" starts an abstract name).
// The zero notifier, outside systemd, sends nothing.
type notifier struct {
	socket   string        // NOTIFY_SOCKET
	conn     *os.File      // the socket to the supervisor of Options.Supervise, instead
	pid      string        // this process's, added to the supervisor's messages
	watchdog time.Duration // the interval of WATCHDOG_USEC, 0 if none
	stop     chan struct{} // closed to stop the watchdog pings
	adopting chan struct{} // closed when adopted has returned; nil before
}

// systemdEnv reads and removes the variables systemd sets for the process
// it started, so that no process the daemon starts inherits them. A
// restarted generation gets them from the hand-off instead.
func systemdEnv() (n notifier) {
	n.socket = os.Getenv("NOTIFY_SOCKET")
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	pid := os.Getenv("WATCHDOG_PID")
	if err == nil && usec > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	for _, v := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(v)
	}
	return n
}

// send sends one message made of lines. Errors are returned for logging
// only: a lost notification must not stop the service.
func (n *notifier) send(lines ...string) error {
	if n.conn != nil {
		if _, err := n.conn.Write([]byte(strings.Join(lines, "\n") + "\nDAEMONIZE_PID=" + n.pid + "\n")); err != nil {
			return fmt.Errorf("daemonize: tell the supervisor: %w", err)
		}
		return nil
	}
	if n.socket == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("daemonize: notify %s: %w", n.socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("daemonize: notify %s: %w", n.socket, err)
	}
	return nil
}

// enabled reports whether there is anyone to notify.
func (n *notifier) enabled() bool { return n.socket != "" || n.conn != nil }

// startWatchdog sends WATCHDOG=1 at half the interval systemd asked for,
// after a first wait of delay, until stopWatchdog.
func (n *notifier) startWatchdog(delay time.Duration, logf func(error)) {
	if !n.enabled() || n.watchdog <= 0 || n.stop != nil {
		return
	}
	n.stop = make(chan struct{})
	stop := n.stop
	go func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if err := n.send("WATCHDOG=1"); err != nil {
				logf(err)
			}
			t.Reset(n.watchdog / 2)
		}
	}()
}

func (n *notifier) stopWatchdog() {
	if n.stop != nil {
		close(n.stop)
		n.stop = nil
	}
}

// extendStop keeps systemd from killing the process while it drains after
// a stop: TimeoutStopSec may be shorter than the drain. It asks for more
// time (EXTEND_TIMEOUT_USEC) a little at a time while the drain runs, never
// past the drain deadline plus a second to exit.
func (n *notifier) extendStop(ctx context.Context, drain time.Duration, logf func(error)) {
	if !n.enabled() {
		return
	}
	end := time.Now().Add(drain + time.Second)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		step := min(left, 10*time.Second)
		logf(n.send(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", step.Microseconds())))
		select {
		case <-ctx.Done():
			return
		case <-time.After(step / 2):
		}
	}
}

// reloading is the message that starts a restart: systemd ignores
// RELOADING=1 without a fresh MONOTONIC_USEC.
func reloading(status string) []string {
	return []string{"RELOADING=1", "MONOTONIC_USEC=" + strconv.FormatInt(monotonicUSec(), 10), "STATUS=" + status}
}

// maxListenFDs bounds LISTEN_FDS, far above what a unit can pass.
const maxListenFDs = 4096

// parseListenEnv reads systemd's socket activation variables: how many
// descriptors from 3 up were passed to the process self, and their names.
// Variables meant for another process (LISTEN_PID differs) give 0. The
// supervisor of Options.Supervise passes them on without LISTEN_PID (it
// cannot know the pid beforehand): anyPID accepts that.
func parseListenEnv(pid, fds, names string, self int, anyPID bool) ([]string, error) {
	if pid == "" && fds == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pid); !(anyPID && pid == "") && (err != nil || p != self) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, fmt.Errorf("daemonize: LISTEN_FDS=%q: want the number of sockets passed, 0 to %d", truncate(fds, 20), maxListenFDs)
	}
	list := make([]string, n)
	if names != "" {
		list = strings.Split(names, ":")
		if len(list) != n {
			return nil, fmt.Errorf("daemonize: LISTEN_FDNAMES has %d names for LISTEN_FDS=%d sockets", len(list), n)
		}
	}
	for i, name := range list {
		if name == "" {
			list[i] = "unknown" // what sd_listen_fds_with_names says
		}
	}
	return list, nil
}
