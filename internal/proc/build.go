package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// GoTool returns the go command: the one on PATH (go test and go run put
// their own first), else the one in $GOROOT, else the one of the Go
// installation this program was built with.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	// A tool runs on the machine it was built on (go run, or go build
	// then run), so the Go tree it was built with is there.
	//lint:ignore SA1019 the last resort when go is neither on PATH nor named by GOROOT
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Build runs "go build -o out flags... pkg" in dir (the current directory
// if dir is ""), and returns an error with the command's output if it
// fails. ctx bounds it: if ctx ends, the go command is killed.
func Build(ctx context.Context, dir, out, pkg string, flags ...string) error {
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.CommandContext(ctx, GoTool(), args...)
	cmd.Dir = dir
	// Once the go command is killed, do not wait on for its children's
	// output.
	cmd.WaitDelay = 10 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
