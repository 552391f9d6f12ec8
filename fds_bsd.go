//go:build unix && !linux

package daemonize

import (
	"fmt"
	"os"
)

// newHandoff creates the hand-off file as an unlinked temporary file, so
// that it vanishes with the last process holding it.
func newHandoff() (*handoff, error) {
	f, err := os.CreateTemp("", "daemonize-handoff-*")
	if err != nil {
		return nil, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	os.Remove(f.Name())
	return &handoff{f: f}, nil
}
