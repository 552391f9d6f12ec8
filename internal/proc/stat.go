package proc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotSupported is returned where the system has no /proc to read, or no
// child subreapers.
var ErrNotSupported = errors.New("proc: not supported on this system")

// Stat is what the callers read of /proc/<pid>/stat: see proc_pid_stat(5).
type Stat struct {
	State byte // R running, S sleeping, D disk sleep, T stopped, Z zombie, X dead, ...
	PPID  int  // parent process
	PGID  int  // process group
	SID   int  // session
	// StartTime is when the process started, in clock ticks after boot:
	// with the pid, it names one process, even once the pid is reused.
	StartTime uint64
}

// Zombie reports whether the process has exited but has not been reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ParseStat parses the content of /proc/<pid>/stat.
func ParseStat(b []byte) (Stat, error) {
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("proc: stat %.60q: no command name", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("proc: stat %.60q: too few fields", b)
	}
	var st Stat
	st.State = f[0][0]
	for j, p := range []*int{&st.PPID, &st.PGID, &st.SID} {
		n, err := strconv.Atoi(f[j+1])
		if err != nil {
			return Stat{}, fmt.Errorf("proc: stat %.60q: %w", b, err)
		}
		*p = n
	}
	// starttime is field 22 of stat; f[0] is field 3.
	if len(f) > 19 {
		st.StartTime, _ = strconv.ParseUint(f[19], 10, 64)
	}
	return st, nil
}
