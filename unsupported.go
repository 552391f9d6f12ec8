//go:build !unix

package daemonize

import (
	"io/fs"
	"os"
	"syscall"
)

// On these platforms New returns ErrNotSupported; the functions below only
// let the package build.

const supported = false

var (
	sigRestart os.Signal = syscall.Signal(-1)
	sigReopen  os.Signal = syscall.Signal(-2)
)

func notifySignals(chan<- os.Signal)                          {}
func signalProcess(int, syscall.Signal)                       {}
func processExists(int) bool                                  { return false }
func setUmask(fs.FileMode)                                    {}
func setCloseOnExec(*os.File)                                 {}
func isTerminal(*os.File) bool                                { return false }
func redirect(string, string) error                           { return ErrNotSupported }
func reopen(string, string) error                             { return ErrNotSupported }
func launch(Options, string) int                              { return 1 }
func openNoFollow(string) (*os.File, error)                   { return nil, ErrNotSupported }
func tryLock(*os.File) (bool, error)                          { return false, ErrNotSupported }
func newHandoff() (*handoff, error)                           { return nil, ErrNotSupported }
func monotonicUSec() int64                                    { return 0 }
func activatedSockets() ([]entry, map[string]*os.File, error) { return nil, nil, nil }
func lockRegion(*os.File, int64, int64) (func(), error)       { return nil, ErrNotSupported }
