//go:build unix

package daemonize

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPIDFileLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.pid")
	p, err := lockPIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.write(4242); err != nil {
		t.Fatal(err)
	}
	_, err = lockPIDFile(path)
	var are *AlreadyRunningError
	if !errors.As(err, &are) || are.PID != 4242 || !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second lock: %v, want an AlreadyRunningError for 4242", err)
	}
	if want := "pid file " + path + ": process 4242 is already running"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if got, _ := ReadPIDFile(path); got != 4242 {
		t.Errorf("refused instance changed the pid file to %d", got)
	}

	p.remove(1, true) // names another process: only the lock goes
	if got, _ := ReadPIDFile(path); got != 4242 {
		t.Errorf("remove for another pid removed the pid file")
	}
	if _, err := os.Stat(lockPath(path)); !os.IsNotExist(err) {
		t.Errorf("lock file left after release: %v", err)
	}
	// The lock is free now, and the pid file naming 4242 is stale.
	q, err := lockPIDFile(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	q.remove(4242, true)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("pid file left after remove: %v", err)
	}
}

func TestPIDFileWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.pid")
	p, err := lockPIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.remove(77, true)
	for _, pid := range []int{12, 77} {
		if err := p.write(pid); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "77\n" {
		t.Errorf("pid file holds %q, %v; want \"77\\n\"", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "app.pid" && e.Name() != "app.pid.lock" {
			t.Errorf("stray file %s", e.Name())
		}
	}
}

func TestPIDFileBadPaths(t *testing.T) {
	dir := t.TempDir()
	os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link.pid"))
	os.Mkdir(filepath.Join(dir, "dir.pid"), 0o755)
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "lock.pid.lock"))
	for path, want := range map[string]string{
		filepath.Join(dir, "link.pid"):         "is a symbolic link",
		filepath.Join(dir, "dir.pid"):          "is not a regular file",
		filepath.Join(dir, "missing", "x.pid"): "does not exist; create it first",
		filepath.Join(dir, "file", "x.pid"):    "is not a directory",
		filepath.Join(dir, "lock.pid"):         "is a symbolic link",
	} {
		_, err := lockPIDFile(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("lockPIDFile(%s) = %v, want an error saying %q", path, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Errorf("a symlink was followed: %v", err)
	}
}

func TestParsePID(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "4242\n": 4242, "2147483647": 2147483647} {
		if got, err := parsePID(in); err != nil || got != want {
			t.Errorf("parsePID(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", "0", "-1", "+5", "0123", "12 ", " 12", "12\n\n", "abc", "1e3", "99999999999999999999"} {
		if got, err := parsePID(in); err == nil {
			t.Errorf("parsePID(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"1", "4242\n", "", "-1", "0x10", "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pid, err := parsePID(s)
		if err == nil && (pid <= 0 || strings.TrimSuffix(s, "\n") != strings.TrimSpace(s)) {
			t.Errorf("parsePID(%q) = %d, accepted", s, pid)
		}
	})
}

func BenchmarkPIDFileWrite(b *testing.B) {
	p, err := lockPIDFile(filepath.Join(b.TempDir(), "app.pid"))
	if err != nil {
		b.Fatal(err)
	}
	defer p.remove(os.Getpid(), true)
	for b.Loop() {
		if err := p.write(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}
