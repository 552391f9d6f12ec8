package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/daemonize-dev/daemonize/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.pid")
	for _, content := range []string{"42\n", "7\n"} {
		if err := atomicfile.Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Errorf("after Write(%q): %q, %v", content, b, err)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v, %v; want 0644", st.Mode(), err)
	}

	// A symbolic link is replaced, not followed.
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link's target became %q", b)
	}
	if st, err := os.Lstat(link); err != nil || !st.Mode().IsRegular() {
		t.Errorf("link: %v, %v; want a regular file", st.Mode(), err)
	}

	// On error, nothing is left behind: a directory cannot be replaced.
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "x"), nil, 0o644)
	if err := atomicfile.Write(sub, []byte("x")); err == nil {
		t.Error("Write over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 { // app.pid, target, link, sub
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files left: %v, want app.pid, link, sub and target", names)
	}

	if err := atomicfile.Write(filepath.Join(dir, "missing", "app.pid"), nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}
