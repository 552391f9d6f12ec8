package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

// TestMain lets the test binary run as a child that becomes a subreaper,
// so that the test process itself never does.
func TestMain(m *testing.M) {
	if os.Getenv("PROC_TEST_SUBREAPER") == "1" {
		if err := subreaper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startSleep starts sleep(1) as a child, and kills and reaps it at the end
// of the test.
func startSleep(t *testing.T, attr *syscall.SysProcAttr) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release() // reaped here, with proc.Reap
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		if !proc.Poll(10*time.Second, func() bool { ok, _ := proc.Reap(pid); return ok }) {
			t.Errorf("sleep %d not reaped", pid)
		}
	})
	return pid
}

func TestChildLifecycle(t *testing.T) {
	pid := startSleep(t, &syscall.SysProcAttr{Setsid: true})

	st, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := (proc.Stat{State: st.State, PPID: os.Getpid(), PGID: pid, SID: pid, StartTime: st.StartTime}); st != want || st.Zombie() || st.StartTime == 0 {
		t.Errorf("ReadStat(%d) = %+v, want %+v and a state other than zombie", pid, st, want)
	}
	if !proc.Alive(pid) || proc.Zombie(pid) {
		t.Errorf("running sleep: Alive %v, Zombie %v; want true, false", proc.Alive(pid), proc.Zombie(pid))
	}
	if kids := proc.Children(os.Getpid()); !slices.Contains(kids, pid) {
		t.Errorf("Children(%d) = %v, want it to hold %d", os.Getpid(), kids, pid)
	}
	if all, err := proc.PIDs(); err != nil || !slices.Contains(all, pid) || !slices.Contains(all, os.Getpid()) {
		t.Errorf("PIDs() = %d pids, %v; want this process and %d among them", len(all), err, pid)
	}
	path, _ := exec.LookPath("sleep")
	want, _ := filepath.EvalSymlinks(path)
	if exe, err := proc.Executable(pid); err != nil || exe != want {
		t.Errorf("Executable(%d) = %q, %v; want %q", pid, exe, err, want)
	}
	if exited, e := proc.Reap(pid); exited || e.Known {
		t.Errorf("Reap of a running child = %v, %v; want not exited", exited, e)
	}

	syscall.Kill(pid, syscall.SIGKILL)
	if !proc.Poll(10*time.Second, func() bool { return proc.Zombie(pid) }) {
		t.Fatalf("killed child %d never turned zombie", pid)
	}
	if proc.Alive(pid) {
		t.Errorf("Alive(%d) = true for a zombie", pid)
	}
	exited, e := proc.Reap(pid)
	if !exited || !e.Known || !e.Status.Signaled() || e.Status.Signal() != syscall.SIGKILL || e.String() != "killed by killed" {
		t.Errorf("Reap of a killed child = %v, %v; want exited, killed by SIGKILL", exited, e)
	}
	if _, err := proc.ReadStat(pid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadStat of a reaped process: %v, want fs.ErrNotExist", err)
	}
	if proc.Alive(pid) || proc.Zombie(pid) || slices.Contains(proc.Children(os.Getpid()), pid) {
		t.Errorf("reaped process %d still seen", pid)
	}
}

func TestReapExitStatus(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	var e proc.Exit
	if !proc.Poll(10*time.Second, func() bool { ok, got := proc.Reap(pid); e = got; return ok }) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("sh %d did not exit", pid)
	}
	if !e.Known || e.Status.ExitStatus() != 3 || e.String() != "exit status 3" {
		t.Errorf("Reap = %v, want exit status 3", e)
	}
}

// TestReapNotChild reaps a grandchild: its parent reaps it, and Reap says
// it exited only once it is gone.
func TestReapNotChild(t *testing.T) {
	sh := exec.Command("sh", "-c", "sleep 60 & echo $!; wait")
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sh.Process.Kill()
		sh.Wait()
	})
	var grandchild int
	if _, err := fmt.Fscan(out, &grandchild); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(grandchild, syscall.SIGKILL) })
	if st, err := proc.ReadStat(grandchild); err != nil || st.PPID != sh.Process.Pid {
		t.Fatalf("grandchild %d: %+v, %v; want its parent %d", grandchild, st, err, sh.Process.Pid)
	}
	if exited, _ := proc.Reap(grandchild); exited {
		t.Error("Reap says a running grandchild exited")
	}
	syscall.Kill(grandchild, syscall.SIGKILL)
	var e proc.Exit
	if !proc.Poll(10*time.Second, func() bool { ok, got := proc.Reap(grandchild); e = got; return ok }) {
		t.Fatalf("grandchild %d never gone", grandchild)
	}
	if e.Known || e.String() != "unknown" {
		t.Errorf("Reap of a process another one reaped = %v, want unknown", e)
	}
	if err := sh.Wait(); err != nil {
		t.Errorf("sh: %v", err)
	}
}

// TestBecomeSubreaper runs the test binary as a child that becomes a
// subreaper; see subreaper.
func TestBecomeSubreaper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROC_TEST_SUBREAPER=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("subreaper child: %v\n%s", err, out)
	}
}

// subreaper becomes a subreaper, starts a shell that leaves an orphan
// behind, and checks that the orphan comes back to it to be reaped.
func subreaper() error {
	if err := proc.BecomeSubreaper(); err != nil {
		return err
	}
	out, err := exec.Command("sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		return fmt.Errorf("sh: %w", err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return err
	}
	defer syscall.Kill(orphan, syscall.SIGKILL)
	if !proc.Poll(10*time.Second, func() bool { st, err := proc.ReadStat(orphan); return err == nil && st.PPID == os.Getpid() }) {
		return fmt.Errorf("orphan %d not reparented to the subreaper %d", orphan, os.Getpid())
	}
	if kids := proc.Children(os.Getpid()); !slices.Equal(kids, []int{orphan}) {
		return fmt.Errorf("Children = %v, want only the orphan %d", kids, orphan)
	}
	syscall.Kill(orphan, syscall.SIGKILL)
	var e proc.Exit
	if !proc.Poll(10*time.Second, func() bool { ok, got := proc.Reap(orphan); e = got; return ok }) {
		return fmt.Errorf("orphan %d not reaped", orphan)
	}
	if !e.Known || e.Status.Signal() != syscall.SIGKILL {
		return fmt.Errorf("orphan's exit: %v, want killed by SIGKILL", e)
	}
	return nil
}
