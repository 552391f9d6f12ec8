//go:build unix && !linux

package daemonize

import (
	"fmt"
	"os"
)

// anonFile creates an unlinked temporary file, so that it vanishes with the
// last process holding it.
func anonFile(name string) (*os.File, error) {
	f, err := os.CreateTemp("", name+"-*")
	if err != nil {
		return nil, fmt.Errorf("daemonize: %s: %w", name, err)
	}
	os.Remove(f.Name())
	return f, nil
}
