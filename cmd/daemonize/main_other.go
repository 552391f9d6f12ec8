//go:build !unix

// Command daemonize controls daemons built on
// github.com/daemonize-dev/daemonize; it needs a Unix system.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "daemonize: this command needs a Unix system")
	os.Exit(1)
}
