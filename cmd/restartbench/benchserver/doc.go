// Command benchserver is the server that restartbench compares the library
// against, in three modes with the same handler:
//
//   - -mode=tableflip: graceful restart with github.com/cloudflare/tableflip
//     alone, as its README shows: SIGHUP or SIGUSR1 upgrades, the old
//     process calls http.Server.Shutdown once the new one is ready.
//   - -mode=plain: net.Listen and http.Server; SIGTERM or SIGINT shuts down
//     within -drain. A restart is a stop and a start: no hand-off.
//   - -mode=daemonize: this library in the foreground (New, Listen, Serve,
//     Ready, Wait); SIGUSR1 restarts. -extra-listeners adds listeners on
//     127.0.0.1:0 that are inherited across restarts like the main one,
//     each served by an http.Server of its own, or not at all with
//     -serve-extra=false.
//
// Endpoints, those of examples/httpserver (internal/demo): GET / answers
// "pid=<pid> generation=<n> version=bench", with generation 0 in
// -mode=tableflip, which does not count them; GET /sleep?d=<duration>
// answers the same after sleeping that long. Every mode writes its pid to
// -pidfile once it serves.
//
// It is built and run by restartbench; it is not meant for production.
package main
