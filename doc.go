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
//     not ready: a generation restarts only once the previous one has
//     exited, and runs one restart attempt at a time.
//   - A restart request (SIGUSR1, [Daemon.Restart], the daemonize command)
//     is answered only by an attempt that starts the executable after the
//     request arrived. Requests that arrive during an attempt share one
//     follow-up attempt, which runs when the attempt fails, and when it
//     succeeds but the executable was replaced since it began (then the new
//     generation runs it). So a storm of requests makes at most two
//     attempts, and a deploy's request is never answered by an attempt that
//     ran the previous binary. A request made while the previous generation
//     still drains makes it hurry, and starts once it has exited. A request
//     the process refuses (as PID 1 without Supervise, after a take-back,
//     while it stops) is answered by the refusal: Restart's error, or the
//     status file's last restart for a signal.
//   - The pid file always names the generation that serves new work: the old
//     one until the new one is ready, then (replaced atomically) the new one.
//     It is removed when the last generation stops.
//   - The listening sockets stay open while any generation serves:
//     connections that arrive during a restart wait in the socket's queue
//     until one of the processes accepts them, and the old process accepts
//     until the new one does. From the moment a stop begins, every copy of
//     every socket is closed, so new connections are refused; a socket
//     systemd passed (socket activation) stays open in systemd, where new
//     connections wait for the next start.
//   - If the new process exits, crashes or is not ready within
//     [Options.UpgradeTimeout], it is killed, whether or not it reached
//     [New], and reaped; the old one keeps serving, and [Daemon.Restart]
//     returns a [*RestartError] saying why, quoting the new process's own
//     standard error (captured until it is ready, then copied into the log).
//   - If the old process dies (even by SIGKILL) before the new one is ready,
//     but after the new one has received the sockets (in New), the new one
//     carries on alone: it serves once ready, and exits if it is not ready
//     within UpgradeTimeout of the restart. It never hangs waiting for a
//     parent. If the old one dies sooner, the new one cannot get the
//     sockets (the parent sends them over a socket pair just before it
//     starts the new process, and tableflip the names of its own files
//     over a pipe) and exits: nothing serves until the service is started again, or, with
//     [Options.Supervise], the supervisor exits with the old process's
//     status for the orchestrator to restart it.
//   - With [Options.TakeBack], if the new process dies without a clean stop
//     (it crashed, say, right after Ready) while the old one still drains,
//     the old one takes the service back: it kept its listening sockets,
//     serves again, and the pid file, the status file and systemd name it
//     again. tableflip hands a process's sockets over once, so that process
//     refuses further restarts until the service is stopped and started
//     again.
//
// # Signals
//
//   - SIGTERM, SIGINT: stop. New connections are refused, [Daemon.Draining]
//     is closed and [Daemon.Wait] drains within [Options.DrainTimeout]. A
//     second signal exits at once. During a restart, the new process is
//     stopped first, unless it became ready in the meantime: then it is the
//     service, and gets the stop. A process that handed over and drains
//     takes the signal as a request to hurry.
//   - SIGUSR1: restart ([Daemon.Restart]). A process that handed over passes
//     it on to the one that took over.
//   - SIGHUP: reopen the output files by path, after logrotate renamed them.
//
// # Draining
//
// [Daemon.Serve] drains an [net/http.Server] without losing a request, HTTP/1
// and HTTP/2, in the clear or over TLS: see its documentation. A handler of
// a long-lived request (server-sent events, a WebSocket, a stream) selects
// on [Daemon.Draining] and ends the request at a point where the client can
// carry on with the new process. A server of another protocol registers its
// drain with [Daemon.OnDrain]: stop accepting (close the listener: the
// socket lives on in the new process), finish the work in flight, close
// each connection at a point where the protocol lets the client retry
// safely, and return by the context's deadline.
//
// # systemd
//
// Run in the foreground under Type=notify, or with Type=forking and the
// pid file:
//
//	[Service]
//	Type=notify
//	ExecStart=/usr/local/bin/app -pidfile /run/app.pid
//	ExecReload=/bin/kill -USR1 $MAINPID
//
// The process sends READY=1, RELOADING=1, STOPPING=1 and the watchdog's
// pings; a restart moves MAINPID to the new process. While a stop drains,
// it asks systemd for more time (EXTEND_TIMEOUT_USEC), never past the
// drain deadline plus the second it keeps to exit.
//
// # Pitfalls
//
//   - go run cannot hot-restart: the binary it builds is deleted when it
//     exits. Build the binary, then run it.
//   - Install a new binary by rename (mv, install), never by writing into
//     the old file: the running process's text is that file.
//   - Create every listener before Ready: a restarted process closes the
//     inherited sockets nobody asked for when it becomes ready.
//   - New points os.Stderr at a duplicate of descriptor 2: during a restart
//     that duplicate captures the new process's standard error. Lines the
//     program writes through os.Stderr during a restart go there too (and
//     into the log at its end); loggers made before New write to
//     descriptor 2.
//   - A start that fails in the foreground (the program exits after New)
//     may leave PIDFile.lock and PIDFile.status beside the pid file; no
//     process holds them, and the next start takes them over. A detached
//     start's launcher removes them.
//   - In the foreground at a terminal, a restart hands the service to a new
//     process and the old one exits, so the shell gets its prompt back while
//     the service runs on; the old process prints the new pid first.
//
// # Where things are
//
//   - daemon.go: [New], [Options], the [Daemon] and its methods; Ready's work.
//   - lifecycle.go: the state of a process (starting, serving, restarting,
//     handed over, took back, stopping), the one loop that owns it, and a
//     method per event.
//   - upgrade.go: one restart attempt: start, wait, kill, report.
//   - tableflip.go: the only contact with tableflip, and its quirks.
//   - handoff.go: the manifest a parent writes for its child and the
//     control block they share (ready or given up, serving, hurry).
//   - fds.go and listener.go: the sockets and files passed on, found again
//     by address or name; the gated listener; the connections Serve counts.
//     passfd_unix.go: their descriptors, sent in bulk over a socket pair.
//   - http.go: Serve and the drain of HTTP/1 and HTTP/2; h2goaway.go: the
//     PING and GOAWAY that move an HTTP/2 client on; h2tls.go: how Serve
//     sees the frames of HTTP/2 over TLS.
//   - drain.go: a process's drain and clean-up; takeback.go: the take-back.
//   - output_unix.go: standard output and error, their reopening, and the
//     capture of a new process's standard error.
//   - launcher_unix.go: the launching process of Detach.
//   - pidfile.go, status.go: the pid file and its lock, the status file.
//   - systemd.go, systemd_unix.go: the notify protocol and socket activation.
//   - control/: what deploy tools need; cmd/daemonize is flag parsing
//     around it.
//
// The life of a restart through them: SIGUSR1 reaches the lifecycle's loop
// (lifecycle.go), which starts an attempt (upgrade.go): the parent sends the
// descriptors of the sockets and files (passfd_unix.go), writes the manifest
// (handoff.go), points the new process's standard error at a capture
// (output_unix.go) and asks tableflip to start the executable
// (tableflip.go). The new process, in New, reads the manifest and the
// descriptors, claims its sockets by address (fds.go; their listeners are
// made beside the program's start) and, in Ready, wins the ready-or-given-up
// race in the control block, takes the serving lock, accepts, writes the pid
// file and tells tableflip. The parent's attempt ends; the lifecycle hands
// over (stops accepting, tells systemd and the status file) and drains
// (drain.go, http.go); Wait returns and the old process exits. The new
// process, once its parent has exited, may restart in turn.
package daemonize
