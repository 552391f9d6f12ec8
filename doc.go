// Package daemonize runs a Go server as a Unix daemon and restarts it onto a
// new binary without dropping a connection or a request.
//
// A program calls [New] early in main, creates its listeners with
// [Daemon.Listen], starts serving, calls [Daemon.Ready], and blocks in
// [Daemon.Wait]:
//
//	d, err := daemonize.New(daemonize.Options{Detach: true, PIDFile: "/run/app.pid"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	ln, err := d.Listen("tcp", ":8080")
//	if err != nil {
//		log.Fatal(err)
//	}
//	go d.Serve(&http.Server{Handler: mux}, ln)
//	if err := d.Ready(); err != nil {
//		log.Fatal(err)
//	}
//	if err := d.Wait(); err != nil {
//		log.Print(err)
//		os.Exit(1)
//	}
//
// # Detaching
//
// Go cannot fork, so [Options.Detach] re-executes the program (by the
// absolute path it was started with, same arguments and environment) in a
// new session, with standard input on /dev/null and standard output and
// error on [Options.Stdout] and [Options.Stderr]. The launching process waits
// until the daemon calls Ready and exits 0, or exits 1 printing the daemon's
// own error. Descriptors 1 and 2 themselves point at the files, so panics and
// the runtime's fatal errors land there too. The working directory is kept
// unless [Options.Dir] says otherwise: the classic chdir("/") breaks relative
// paths given in arguments and options.
//
// # Process model
//
// A service is a line of generations. Generation 1 is the first process;
// each restart starts the next one from the executable's path, passing it
// the listening sockets as inherited descriptors:
//
//   - At most two generations are alive at once, and at most one of them is
//     not ready. A restart asked for while one runs joins it; one asked for
//     while the previous generation still drains starts once it has exited.
//   - The pid file always names the generation that serves new work: the old
//     one until the new one is ready, then (replaced atomically) the new one.
//     It is removed when the last generation stops.
//   - The listening sockets are never closed while any generation lives:
//     connections that arrive during a restart wait in the socket's queue
//     until one of the processes accepts them.
//   - If the new process exits, crashes or is not ready within
//     [Options.UpgradeTimeout], it is stopped (SIGTERM, then SIGKILL after
//     5 s) and reaped, the old one keeps serving, and [Daemon.Restart]
//     returns a [*RestartError] saying why. A new process that never reached
//     [New] (a wrong file installed, a hang in init) has not told the old one
//     its pid; it gets SIGKILL 6 s after the timeout.
//   - If the old process dies (even by SIGKILL) before the new one is ready,
//     the new one carries on alone: it serves once ready, and exits if it is
//     not ready within UpgradeTimeout. It never hangs waiting for a parent.
//   - If the new process dies without a clean stop (it crashed, say, right
//     after Ready) while the old one still drains, the old one takes the
//     service back: it kept its listening sockets, serves again, and the pid
//     file, the status file and systemd name it again. This needs every
//     server to run under [Daemon.Serve] (no Options.Stop, no Stopping),
//     since a stop the program carried out itself cannot be undone. tableflip
//     hands a process's sockets over once, so that process refuses further
//     restarts until the service is stopped and started again.
//
// # Signals
//
//   - SIGTERM, SIGINT: stop. [Daemon.Stopping] is closed and [Daemon.Wait]
//     drains within [Options.DrainTimeout]. A second signal exits at once.
//     During a restart, the new process is stopped first.
//   - SIGUSR1: restart ([Daemon.Restart]).
//   - SIGHUP: reopen the output files by path, after logrotate renamed them.
//
// # Draining
//
// [Daemon.Serve] drains an [net/http.Server] without losing a request: it
// stops accepting, answers further requests with "Connection: close", and
// waits until the connections have closed. A server of another protocol
// drains in [Options.Stop]: stop accepting (close the listener: the socket
// lives on in the new process), finish the work in flight, close each
// connection at a point where the protocol lets the client retry safely,
// and return by the context's deadline.
//
// # systemd
//
// Run in the foreground under Type=notify or with Type=forking and the
// pid file:
//
//	[Service]
//	Type=forking
//	PIDFile=/run/app.pid
//	ExecStart=/usr/local/bin/app -detach -pidfile /run/app.pid
//	ExecReload=/bin/kill -USR1 $MAINPID
//
// # Pitfalls
//
//   - go run cannot hot-restart: the binary it builds is deleted when it
//     exits. Build the binary, then run it.
//   - Install a new binary by rename (mv, install), never by writing into
//     the old file: the running process's text is that file.
//   - Create every listener before Ready: a restarted process closes the
//     inherited sockets nobody asked for when it becomes ready.
//   - A start that fails in the foreground (the program exits after New)
//     may leave PIDFile.lock and PIDFile.status beside the pid file; no
//     process holds them, and the next start takes them over. A detached
//     start's launcher removes them.
//   - In the foreground at a terminal, a restart hands the service to a new
//     process and the old one exits, so the shell gets its prompt back while
//     the service runs on; the old process prints the new pid first.
package daemonize
