package proc_test

import (
	"testing"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

func TestParseStat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want proc.Stat
	}{
		{"42 (sleep) S 1 42 7 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 1", proc.Stat{State: 'S', PPID: 1, PGID: 42, SID: 7, StartTime: 1}},
		{"42 (a) b) (c) Z 9 8 7 0", proc.Stat{State: 'Z', PPID: 9, PGID: 8, SID: 7}},
		{"42 (x y) R 0 0 0 0\n", proc.Stat{State: 'R'}},
	} {
		got, err := proc.ParseStat([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("ParseStat(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "42 sleep S 1 2 3", "42 (sleep) S 1 2", "42 (sleep) S x 2 3", "42 (sleep) SS 1 2 3"} {
		if got, err := proc.ParseStat([]byte(in)); err == nil {
			t.Errorf("ParseStat(%q) = %+v, want an error", in, got)
		}
	}
}

func TestStatZombie(t *testing.T) {
	for state, want := range map[byte]bool{'R': false, 'S': false, 'D': false, 'T': false, 'Z': true, 'X': true} {
		if got := (proc.Stat{State: state}).Zombie(); got != want {
			t.Errorf("state %c: Zombie() = %v, want %v", state, got, want)
		}
	}
}
