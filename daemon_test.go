package daemonize

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.resolve("/srv")
	if err != nil {
		t.Fatal(err)
	}
	if o.StartTimeout != DefaultStartTimeout || o.UpgradeTimeout != DefaultUpgradeTimeout || o.DrainTimeout != DefaultDrainTimeout {
		t.Errorf("zero timeouts became %s, %s, %s; want the defaults", o.StartTimeout, o.UpgradeTimeout, o.DrainTimeout)
	}
	if o.Stdout != "" || o.Stderr != "" || o.Dir != "" || o.PIDFile != "" {
		t.Errorf("foreground defaults changed paths: %+v", o)
	}
	if o.Logger == nil || o.ListenConfig == nil {
		t.Errorf("nil Logger or ListenConfig left")
	}

	o, err = Options{Detach: true, PIDFile: "run/app.pid", Stderr: "/var/log/app.log", Dir: "..", DrainTimeout: time.Second}.resolve("/srv/app")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Stdout: os.DevNull, Stderr: "/var/log/app.log", PIDFile: "/srv/app/run/app.pid", Dir: "/srv", DrainTimeout: time.Second}
	if o.Stdout != want.Stdout || o.Stderr != want.Stderr || o.PIDFile != want.PIDFile || o.Dir != want.Dir || o.DrainTimeout != want.DrainTimeout {
		t.Errorf("resolve = %+v\nwant %+v", o, want)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{DrainTimeout: -time.Second}, "DrainTimeout is -1s; want a positive duration, or 0 for the default 30s"},
		{Options{UpgradeTimeout: -1}, "UpgradeTimeout is -1ns"},
		{Options{StartTimeout: -time.Hour}, "StartTimeout is -1h0m0s"},
		{Options{Umask: 0o1022}, "bits beyond 0777"},
	} {
		if _, err := tc.o.resolve("/"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("resolve(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestLastLines(t *testing.T) {
	s := strings.Repeat("line\n", 20) + "last\n"
	got := lastLines(s, 3)
	if got != "line\nline\nlast" {
		t.Errorf("lastLines = %q", got)
	}
	if got := lastLines("", 3); got != "" {
		t.Errorf("lastLines of nothing = %q", got)
	}
}

func TestCheckExecutable(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	for path, want := range map[string]string{
		filepath.Join(dir, "gone"): "no longer exists",
		plain:                      "is not an executable file",
		dir:                        "is not an executable file",
	} {
		st, err := os.Stat(path)
		if err := checkExecutable(path, st, err); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkExecutable(%s) = %v, want %q", path, err, want)
		}
	}
}

func TestChildError(t *testing.T) {
	for in, want := range map[string]struct {
		pid int
		err string
	}{
		"child pid=42 exited: exit status 1":    {42, "exited: exit status 1"},
		"child pid=42 exited":                   {42, "exited: exit status 0"},
		"child pid=9 exited: signal: killed":    {9, "exited: signal: killed"},
		"new child pid=7 timed out":             {7, ErrUpgradeTimeout.Error()},
		"terminating":                           {0, ErrStopping.Error()},
		"can't start child: fork/exec /x: nope": {0, "cannot start the new process: fork/exec /x: nope"},
	} {
		pid, err := childError(errors.New(in))
		if pid != want.pid || err.Error() != want.err {
			t.Errorf("childError(%q) = %d, %v; want %d, %s", in, pid, err, want.pid, want.err)
		}
	}
	_, err := childError(errors.New("child pid=5 exited: exit status 3"))
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("childError: %v is not an *ExitError with code 3", err)
	}
}
