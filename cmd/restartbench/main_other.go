//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "restartbench: needs Linux (it is a child subreaper and reads /proc to find and reap every generation it starts)")
	os.Exit(2)
}
