package daemonize

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/daemonize-dev/daemonize/internal/atomicfile"
)

// The states a [Status] reports for the process the pid file names.
const (
	StateStarting  = "starting"  // generation 1, before Ready
	StateReady     = "ready"     // serving
	StateUpgrading = "upgrading" // serving, and a restart is under way
	StateStopping  = "stopping"  // draining after SIGTERM or SIGINT, then exiting
	StateDraining  = "draining"  // the state of Previous: it handed over and drains
)

// Status is the content of the status file a daemon with a pid file keeps
// beside it, at [StatusPath]. It describes the process the pid file names,
// and is replaced atomically by that process at each change: at New
// (starting), Ready (ready), the start and the end of each restart, and on
// stop. The last process removes it on a clean stop.
//
// A deploy tool learns the outcome of a restart from it: Restarts counts the
// attempts, LastRestart tells how the last one ended, and Previous names the
// old process until it has finished draining and exited.
type Status struct {
	PID            int       `json:"pid"`
	Generation     int       `json:"generation"`
	State          string    `json:"state"`
	Executable     string    `json:"executable"`      // the path restarts run
	Started        time.Time `json:"started"`         // when this process started
	ServiceStarted time.Time `json:"service_started"` // when generation 1 started
	Updated        time.Time `json:"updated"`

	// Previous is the generation this one took over from, while it drains.
	Previous *PreviousStatus `json:"previous,omitempty"`

	// Restarts counts the restart attempts of the service so far, over
	// all generations; the attempt under way, if any, included.
	Restarts int `json:"restarts"`

	// LastRestart is the outcome of the last attempt that ended.
	LastRestart *RestartStatus `json:"last_restart,omitempty"`
}

// PreviousStatus describes the old generation after a restart.
type PreviousStatus struct {
	PID   int    `json:"pid"`
	State string `json:"state"` // StateDraining
}

// RestartStatus is the outcome of one restart attempt.
type RestartStatus struct {
	Attempt int       `json:"attempt"` // the value of Restarts when it began
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	OK      bool      `json:"ok"`
	OldPID  int       `json:"old_pid"`
	NewPID  int       `json:"new_pid,omitempty"` // 0 if the new process never started
	Error   string    `json:"error,omitempty"`   // why it failed
	Stderr  string    `json:"stderr,omitempty"`  // the new process's last lines of standard error
}

// StatusPath returns where the daemon with the pid file at pidFile keeps
// its status.
func StatusPath(pidFile string) string { return pidFile + ".status" }

// ReadStatus reads the status file of the daemon with the pid file at
// pidFile.
func ReadStatus(pidFile string) (*Status, error) {
	b, err := os.ReadFile(StatusPath(pidFile))
	if err != nil {
		return nil, fmt.Errorf("daemonize: status: %w", err)
	}
	return decodeStatus(b)
}

func decodeStatus(b []byte) (*Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("daemonize: status file: %w", err)
	}
	if s.PID <= 0 || s.Generation < 1 || s.State == "" {
		return nil, fmt.Errorf("daemonize: status file names pid %d, generation %d, state %q: not a daemonize status", s.PID, s.Generation, s.State)
	}
	return &s, nil
}

// readyStatus is the status of a new process pid, generation gen, that took
// over from old in restart attempt, which began at began and ended at ended:
// the same whether the old process or the new one writes it.
func readyStatus(st Status, old, pid, gen, attempt int, began, ended time.Time) Status {
	st.PID, st.Generation, st.State, st.Started, st.Restarts = pid, gen, StateReady, began, attempt
	st.Previous = &PreviousStatus{PID: old, State: StateDraining}
	st.LastRestart = &RestartStatus{Attempt: attempt, Started: began, Ended: ended, OK: true, OldPID: old, NewPID: pid}
	return st
}

// updateStatus changes the status in memory only.
func (d *Daemon) updateStatus(change func(*Status)) {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	change(&d.status)
}

// setStatus changes the status and writes it, if there is a pid file.
// During a restart the old process is the only writer, until the new one is
// ready; then the new one is.
func (d *Daemon) setStatus(change func(*Status)) {
	if d.pid == nil {
		return
	}
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	change(&d.status)
	d.writeStatus(&d.status)
}

// writeStatus writes st to the status file.
func (d *Daemon) writeStatus(st *Status) {
	st.Updated = time.Now()
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = atomicfile.Write(StatusPath(d.pid.path), append(b, '\n'))
	}
	if err != nil {
		d.log.Error("daemonize: status file", "err", err)
	}
}
