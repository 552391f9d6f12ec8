//go:build !unix

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "benchserver: needs a Unix system (signals and inherited sockets)")
	os.Exit(2)
}
