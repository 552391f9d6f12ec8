package daemonize

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/daemonize-dev/daemonize/internal/atomicfile"
)

// State is the state of a process as the status file reports it.
type State string

// The states a [Status] reports.
const (
	StateStarting  State = "starting"  // generation 1, before Ready
	StateReady     State = "ready"     // serving
	StateUpgrading State = "upgrading" // serving, and a restart is under way
	StateStopping  State = "stopping"  // draining after SIGTERM or SIGINT, then exiting
	StateDraining  State = "draining"  // the state of Previous: it handed over and drains
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
	State          State     `json:"state"`
	Executable     string    `json:"executable"`      // the path restarts run
	Started        time.Time `json:"started"`         // when this process started
	ServiceStarted time.Time `json:"service_started"` // when generation 1 started
	Updated        time.Time `json:"updated"`

	// Supervisor is the pid of the supervisor of Options.Supervise, which
	// the pid file names; 0 without one.
	Supervisor int `json:"supervisor,omitempty"`

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
	PID   int   `json:"pid"`
	State State `json:"state"` // StateDraining
}

// RestartStatus is the outcome of one restart attempt.
type RestartStatus struct {
	Attempt int       `json:"attempt"` // the value of Restarts when it began
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Covers says which restart requests the attempt answers: those that
	// arrived before it. That is when it started, or when it ended for one
	// that succeeded while the executable stayed the same (the requests made
	// meanwhile wanted the executable it started).
	Covers time.Time `json:"covers"`
	OK     bool      `json:"ok"`
	OldPID int       `json:"old_pid"`
	NewPID int       `json:"new_pid,omitempty"` // 0 if the new process never started
	Error  string    `json:"error,omitempty"`   // why it failed
	Stderr string    `json:"stderr,omitempty"`  // the new process's last lines of standard error
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
	st.LastRestart = &RestartStatus{Attempt: attempt, Started: began, Ended: ended, Covers: began, OK: true, OldPID: old, NewPID: pid}
	return st
}

// statusFile is this process's status, and the file it is written to
// while this process is the one the pid file names.
type statusFile struct {
	mu   sync.Mutex
	path string // "" without a pid file
	log  *slog.Logger
	st   Status
}

// get returns the status.
func (s *statusFile) get() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// update changes the status in memory only.
func (s *statusFile) update(change func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.st)
}

// set changes the status and writes it, if there is a pid file. During a
// restart the old process is the only writer, until the new one is ready;
// then the new one is.
func (s *statusFile) set(change func(*Status)) {
	if s.path == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.st)
	s.write(&s.st)
}

// writeAs writes st, the status of another process: the new one, which
// leaves it to the old one to write at the end of a restart.
func (s *statusFile) writeAs(st Status, covers time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.LastRestart.Covers = covers
	s.write(&st)
}

// write writes st to the status file.
func (s *statusFile) write(st *Status) {
	st.Updated = time.Now()
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = atomicfile.Write(s.path, append(b, '\n'))
	}
	if err != nil {
		s.log.Error("daemonize: status file", "err", err)
	}
}
