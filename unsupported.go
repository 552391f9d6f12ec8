//go:build !unix

package daemonize

import (
	"io/fs"
	"os"
	"syscall"
)

// On these platforms New returns ErrNotSupported; what follows only lets
// the package build.

const supported = false

const (
	sigRestart syscall.Signal = -1
	sigReopen  syscall.Signal = -2
)

type output struct {
	stdout, stderr string
	errFd          int
}

func (o *output) setup(fileTable, bool) error { return ErrNotSupported }
func (o *output) reopen() error               { return ErrNotSupported }
func (o *output) beginCapture() error         { return ErrNotSupported }
func (o *output) endCapture() *os.File        { return nil }
func (o *output) release(bool) error          { return nil }

func notifySignals(chan<- os.Signal)                          {}
func signalProcess(int, syscall.Signal)                       {}
func processGone(int) bool                                    { return true }
func setUmask(fs.FileMode)                                    {}
func setCloseOnExec(*os.File)                                 {}
func isTerminal(*os.File) bool                                { return false }
func isPID1() bool                                            { return false }
func redirect(string, string) error                           { return ErrNotSupported }
func launch(Options, string) int                              { return 1 }
func openNoFollow(string) (*os.File, error)                   { return nil, ErrNotSupported }
func tryLock(*os.File) (bool, error)                          { return false, ErrNotSupported }
func anonFile(string) (*os.File, error)                       { return nil, ErrNotSupported }
func monotonicUSec() int64                                    { return 0 }
func activatedSockets(bool) ([]entry, error)                  { return nil, nil }
func sendFds([]int) (*os.File, error)                         { return nil, ErrNotSupported }
func recvFds(*os.File, int) ([]int, error)                    { return nil, ErrNotSupported }
func closeFds(...int)                                         {}
func discardFds(*os.File)                                     {}
func checkFdLimit(int) error                                  { return nil }
func dupConn(syscall.Conn) (int, error)                       { return -1, ErrNotSupported }
func fileFromFd(int, string) (*os.File, error)                { return nil, ErrNotSupported }
func flush(*os.File)                                          {}
func tailOf(*os.File) string                                  { return "" }
func lockRegion(*os.File, int64, int64, bool) (func(), error) { return nil, ErrNotSupported }

var stdStderr = os.Stderr
