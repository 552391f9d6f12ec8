// Package control is what a deploy tool needs to drive a daemon built on
// [github.com/daemonize-dev/daemonize] through its pid file: find it, ask
// it to restart and wait for the outcome, ask it to stop and wait until it
// has. The daemonize command is flag parsing around this package.
//
// Before it signals anything, control checks that the pid names a
// daemonize program: the status file beside the pid file must name the same
// pid, and (on Linux) the process must run an executable of the recorded
// name, so that a pid reused by another program after a crash is never
// signalled.
package control
