package proc_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

func TestBuild(t *testing.T) {
	if _, err := os.Stat(proc.GoTool()); err != nil {
		t.Fatalf("GoTool() = %s: %v", proc.GoTool(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Print(version) }\n"
	for name, content := range map[string]string{"go.mod": "module hello\n\ngo 1.22\n", "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "hello")
	if err := proc.Build(ctx, dir, bin, ".", "-ldflags=-X main.version=v2"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin).Output()
	if err != nil || string(out) != "v2" {
		t.Errorf("built program printed %q, %v; want v2 (the flags passed on)", out, err)
	}

	err = proc.Build(ctx, dir, bin, "./nosuchpackage")
	if err == nil || !strings.Contains(err.Error(), "nosuchpackage") {
		t.Errorf("building a missing package: %v, want an error with the go command's output", err)
	}
}
