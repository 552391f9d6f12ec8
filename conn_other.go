//go:build !linux

package daemonize

import "net"

// unread returns how many bytes wait unread in c's socket; not known here.
func unread(net.Conn) int { return 0 }
