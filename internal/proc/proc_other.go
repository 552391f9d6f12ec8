//go:build !linux

package proc

// Without /proc, these return ErrNotSupported or report false.

// ReadStat returns [ErrNotSupported]: there is no /proc to read.
func ReadStat(pid int) (Stat, error) { return Stat{}, ErrNotSupported }

// Alive reports false: there is no /proc to read.
func Alive(pid int) bool { return false }

// Zombie reports false: there is no /proc to read, so a zombie counts as
// a process that runs.
func Zombie(pid int) bool { return false }

// Executable returns [ErrNotSupported]: there is no /proc to read.
func Executable(pid int) (string, error) { return "", ErrNotSupported }

// PIDs returns [ErrNotSupported]: there is no /proc to read.
func PIDs() ([]int, error) { return nil, ErrNotSupported }

// Children returns nothing: there is no /proc to read.
func Children(ppid int) []int { return nil }

// BecomeSubreaper returns [ErrNotSupported]: only Linux has child
// subreapers.
func BecomeSubreaper() error { return ErrNotSupported }
