package daemonize

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// adopted makes systemd supervise this process as its own child. A restart
// moves MAINPID to the new process while the old one, its parent, still
// lives: systemd then takes it for a process that is not its child
// ("Supervising process N which is not our child"), and at a stop does not
// wait for it, killing it at once. Once the old process has exited, this
// one is systemd's child, but systemd only looks again when MAINPID
// changes, and only the main process may change it (NotifyAccess=main). So
// this process passes MAINPID to a helper in its own unit, which passes it
// back. A privileged process (CAP_SYS_ADMIN, root in most units) sends
// the second message itself in the helper's name, microseconds after the
// first, and the helper passes on signals meant for the main process
// meanwhile. Otherwise the helper becomes systemd-notify, which sends the
// second message; systemd's MainPID names the helper for the 20 ms or so
// that takes, and a SIGUSR1 of systemctl reload in those milliseconds is
// lost.
//
// It runs in its own goroutine; settled waits for it.
func (n *notifier) adopted(logf func(error)) {
	if n.socket == "" || n.conn != nil {
		return
	}
	n.adopting = make(chan struct{})
	go func() {
		defer close(n.adopting)
		n.adopt(logf)
	}()
}

// settled waits, a moment at most, until adopted has returned, so that the
// process does not exit and leave its helper behind.
func (n *notifier) settled() {
	if n.adopting == nil {
		return
	}
	select {
	case <-n.adopting:
	case <-time.After(killGrace):
	}
}

// helperScript is the helper of adopt: it passes on the reload and reopen
// signals meant for the main process while it is the main process, and
// ignores stop signals (systemd sends those to every process of the unit,
// this one included); it says when it is ready, and then either exits (read
// gets "done") or becomes systemd-notify, which sends MAINPID=<this
// process> in its own name (--pid=$$), ignoring signals: they must not end
// the main process before it has passed MAINPID back.
const helperScript = `trap '' TERM INT
for s in USR1 HUP; do trap "kill -$s $1" $s; done
echo ready
read -r what || exit 1
[ "$what" = done ] && exit 0
trap '' USR1 HUP TERM INT
exec "$0" --pid="$$" MAINPID="$1"`

func (n *notifier) adopt(logf func(error)) {
	tool, err := exec.LookPath("systemd-notify")
	if err != nil {
		logf(fmt.Errorf("daemonize: systemd-notify not found, so systemd may kill this process at stop instead of letting it drain: %w", err))
		return
	}
	helper := exec.Command("/bin/sh", "-c", helperScript, tool, strconv.Itoa(os.Getpid()))
	helper.Env = []string{"NOTIFY_SOCKET=" + n.socket}
	gate, err := helper.StdinPipe()
	var ready io.ReadCloser
	if err == nil {
		ready, err = helper.StdoutPipe()
	}
	if err == nil {
		err = helper.Start()
	}
	if err != nil {
		logf(fmt.Errorf("daemonize: systemd MAINPID helper: %w", err))
		return
	}
	line := make([]byte, len("ready\n"))
	_, err = io.ReadFull(ready, line)
	done := make(chan error, 1)
	go func() {
		io.Copy(io.Discard, ready) // until the helper exits
		done <- helper.Wait()
	}()
	if err != nil {
		gate.Close()
		logf(fmt.Errorf("daemonize: systemd MAINPID helper: %w; %v", err, <-done))
		return
	}
	if err := n.send(fmt.Sprintf("MAINPID=%d", helper.Process.Pid)); err != nil {
		gate.Close() // the helper exits without a word
		<-done
		logf(err)
		return
	}
	if err := n.sendAs(helper.Process.Pid, fmt.Sprintf("MAINPID=%d", os.Getpid())); err == nil {
		// Signals systemd sends to the helper until it has read that
		// message still reach this process.
		time.Sleep(100 * time.Millisecond)
		io.WriteString(gate, "done\n")
	} else {
		io.WriteString(gate, "go\n") // not allowed to: the helper sends it
	}
	gate.Close()
	select {
	case err = <-done:
	case <-time.After(killGrace / 2):
		helper.Process.Kill()
		err = <-done
	}
	if err != nil {
		logf(fmt.Errorf("daemonize: systemd MAINPID helper: %w; systemd's main process may now be wrong", err))
	}
}

// sendAs sends a message in the name of the process pid, which the kernel
// allows a process with CAP_SYS_ADMIN only.
func (n *notifier) sendAs(pid int, msg string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	cred := unix.UnixCredentials(&unix.Ucred{Pid: int32(pid), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	return unix.Sendmsg(fd, []byte(msg+"\n"), cred, &unix.SockaddrUnix{Name: n.socket}, 0)
}
