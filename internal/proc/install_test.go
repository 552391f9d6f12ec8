//go:build unix

package proc_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

// TestInstall installs one file twice, then another: each time path names
// the file installed, and nothing is left beside it.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for name, content := range map[string]string{a: "a", b: "b"} {
		if err := os.WriteFile(name, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "prog")
	for _, bin := range []string{a, a, b} {
		if err := proc.Install(bin, path); err != nil {
			t.Fatalf("Install(%s): %v", bin, err)
		}
		if !sameFile(t, bin, path) {
			t.Errorf("after Install(%s), %s names another file", bin, path)
		}
		if _, err := os.Lstat(path + ".new"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Install(%s): %s.new: %v, want it gone", bin, path, err)
		}
	}
	if got, _ := os.ReadFile(a); string(got) != "a" {
		t.Errorf("%s holds %q after the installs, want it untouched", a, got)
	}
}

// TestInstallScript installs a script over an installed program: path runs
// the script, the program's file is untouched, and nothing is left beside
// path.
func TestInstallScript(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho bin\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prog")
	if err := proc.Install(bin, path); err != nil {
		t.Fatal(err)
	}
	if err := proc.InstallScript("#!/bin/sh\necho script\n", path); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path).Output(); err != nil || string(out) != "script\n" {
		t.Errorf("%s after InstallScript: %q, %v; want it to run the script", path, out, err)
	}
	if got, _ := os.ReadFile(bin); string(got) != "#!/bin/sh\necho bin\n" {
		t.Errorf("%s holds %q after InstallScript, want it untouched", bin, got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%s holds %d files after the installs, want 2 (bin, prog)", dir, len(entries))
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}
