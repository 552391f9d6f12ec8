package daemonize

import "os"

// envSupervisor names, in generation 1 of a supervised service, the
// descriptor of its socket to the supervisor; later generations get the
// socket through the hand-off.
const envSupervisor = "DAEMONIZE_SUPERVISOR"

// supervisorConn returns the socket to the supervisor, if this process is
// generation 1 of a supervised service.
func supervisorConn() *os.File { return inheritedFile(envSupervisor, "daemonize-supervisor") }
