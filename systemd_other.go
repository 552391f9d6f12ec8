//go:build !linux

package daemonize

// Without systemd there is no main process to adopt.

func (n *notifier) adopted(func(error)) {}
func (n *notifier) settled()            {}
