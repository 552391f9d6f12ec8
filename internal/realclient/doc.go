// Package realclient runs clients, proxies and supervisors nobody on the
// team wrote against a daemonize server, so that the tests judge a restart
// by what real software sees: wrk and h2load (load that never retries),
// curl, nginx with an upstream keep-alive pool, supervisord, a PID
// namespace as a container runtime makes one, and a real systemd booted as
// PID 1 of a PID namespace of its own.
//
// The commands come from Debian packages that scripts/test installs. A
// missing command fails the test: it never skips, since a suite that skips
// its real clients on a machine without them says nothing.
//
// One-shot clients ([RunWrk], [RunH2load], [Curl], [CurlLoop]) take a
// context and return what they measured, with no testing.TB, so that a
// benchmark or a tool can run them too. Long-lived processes ([StartNginx],
// [StartSupervisord], [StartInPIDNamespace], [BootSystemd]) take a
// testing.TB and register their own teardown with t.Cleanup: what they leave
// behind otherwise (a unit file in /etc/systemd/system, a systemd in a
// namespace, a proxy holding connections) outlives the test and harms the
// next one. Every process is stopped by its pid, never by name, reaped, and
// waited for with a deadline.
//
// The parsers ([ParseWrk], [ParseH2load]) build everywhere; the rest is
// Linux only.
package realclient
