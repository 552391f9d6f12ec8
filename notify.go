package daemonize

import (
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
	socket   string
	watchdog time.Duration // the interval of WATCHDOG_USEC, 0 if none
	stop     chan struct{} // closed to stop the watchdog pings
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

// startWatchdog sends WATCHDOG=1 at half the interval systemd asked for,
// after a first wait of delay, until stopWatchdog.
func (n *notifier) startWatchdog(delay time.Duration, logf func(error)) {
	if n.socket == "" || n.watchdog <= 0 || n.stop != nil {
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

// reloading is the message that starts a restart: systemd ignores
// RELOADING=1 without a fresh MONOTONIC_USEC.
func reloading(status string) []string {
	return []string{"RELOADING=1", "MONOTONIC_USEC=" + strconv.FormatInt(monotonicUSec(), 10), "STATUS=" + status}
}
