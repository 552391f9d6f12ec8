package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReadStat reads /proc/<pid>/stat. The error wraps [fs.ErrNotExist] once the
// process is gone (reaped).
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// Alive reports whether pid is a process that runs: one that has exited
// but is not reaped yet (a zombie) does not count.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && !st.Zombie()
}

// Zombie reports whether pid has exited but has not been reaped yet. It
// reports false for a process that runs and for one that is gone.
func Zombie(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.Zombie()
}

// Executable returns the path of the program pid runs. A program file
// replaced or removed since the process started it keeps its path, without
// the " (deleted)" the kernel adds.
func Executable(pid int) (string, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// PIDs lists every process on the system, zombies included.
func PIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Children lists the processes whose parent is ppid, zombies included.
func Children(ppid int) []int {
	all, _ := PIDs()
	var pids []int
	for _, pid := range all {
		if st, err := ReadStat(pid); err == nil && st.PPID == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// BecomeSubreaper makes this process the reaper of the processes it starts
// and of their descendants (PR_SET_CHILD_SUBREAPER): a daemon orphaned by
// its launcher, or a generation whose parent generation exited, is
// reparented to this process instead of init, so that it can see them exit,
// reap them and make sure none is left behind.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("proc: become a child subreaper: %w", err)
	}
	return nil
}
