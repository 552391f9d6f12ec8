package daemonize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The hand-off is the file a parent and its restarted child share: a
// control block, which both write (the child's pid, its last error, whether
// it declared itself ready), and the manifest the parent writes before it
// starts the child. Generation 1 creates it; every generation passes the
// same open file on, so it lives as long as the service.
//
// The child's "I am ready" and the parent's "I gave up waiting" are decided
// under a lock, so that they never both win: a parent never kills a child
// that became ready, and a child never serves for a parent that gave up.

// manifest is what a parent tells its child: the files it passes and the
// service's state that outlives a generation.
type manifest struct {
	Version        int
	Generation     int   // the child's generation: 2 for the first restart
	Started        int64 // first generation's start, Unix nanoseconds
	Restarts       int
	AttemptStarted int64 // when this restart began, Unix nanoseconds
	Deadline       int64 // CLOCK_MONOTONIC microseconds after which the child may no longer declare itself ready
	NotifySocket   string
	WatchdogUSec   int64
	StderrCaptured bool // the child's standard error is a capture file until Ready; the real one is passed as stderrName
	Supervisor     int  // the supervisor's pid (Options.Supervise); its socket is passed as supervisorName
	Files          []entry
}

// manifestVersion is the version written. A child also reads versions 1
// and 2, whose files come through tableflip by name rather than over the
// socket pair (passfd_unix.go), so that a service runs on from an earlier
// release onto this one.
const manifestVersion = 3

// The manifest is text, a line per field and per file, with strings quoted
// as in Go: it costs a restarted child a few microseconds to read, where a
// first JSON decode costs a hundred.
//
//	daemonize-handoff 2
//	generation 2
//	started 1795601425708313000
//	restarts 1
//	attempt-started 1795601425708313000
//	deadline 81234567890
//	notify "/run/systemd/notify"
//	watchdog-usec 30000000
//	stderr-captured true
//	supervisor 0
//	file "g1.1" "listener" "tcp" "localhost:8080" "127.0.0.1:8080"
func encodeManifest(m manifest) []byte { return appendManifest(nil, m) }

// appendManifest appends the manifest m to b, growing b once: with a
// thousand files, growing it by doubling cost an old process milliseconds
// of fresh memory just before it starts the new one.
func appendManifest(b []byte, m manifest) []byte {
	n := 256 + 4*len(m.NotifySocket)
	for _, e := range m.Files {
		n += 16 + len(e.Name) + len(e.Kind) + len(e.Network) + len(e.Addr) + len(e.Bound)
	}
	b = slices.Grow(b, n)
	b = fmt.Appendf(b, "daemonize-handoff %d\ngeneration %d\nstarted %d\nrestarts %d\nattempt-started %d\ndeadline %d\nnotify %s\nwatchdog-usec %d\nstderr-captured %t\nsupervisor %d\n",
		manifestVersion, m.Generation, m.Started, m.Restarts, m.AttemptStarted, m.Deadline, strconv.Quote(m.NotifySocket), m.WatchdogUSec, m.StderrCaptured, m.Supervisor)
	for _, e := range m.Files {
		b = append(b, "file"...)
		for _, f := range [...]string{e.Name, e.Kind, e.Network, e.Addr, e.Bound} {
			b = appendQuoted(append(b, ' '), f)
		}
		b = append(b, '\n')
	}
	return b
}

// appendQuoted appends s quoted as strconv.Quote quotes it. Names and
// addresses are printable ASCII, which quoting leaves as it is: that case
// skips strconv, which matters with a thousand listeners.
func appendQuoted(b []byte, s string) []byte {
	if !plain(s) {
		return strconv.AppendQuote(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether s is printable ASCII without a quote or a
// backslash: Go quoting leaves such a string as it is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// decodeManifest parses and checks a manifest from the parent process.
func decodeManifest(b []byte) (manifest, error) {
	var m manifest
	bad := func(format string, args ...any) (manifest, error) {
		return m, fmt.Errorf("daemonize: hand-off from parent process: "+format, args...)
	}
	text := strings.TrimSuffix(string(b), "\n")
	m.Files = make([]entry, 0, strings.Count(text, "\nfile "))
	for i := 0; i == 0 || text != ""; i++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		key, rest, _ := strings.Cut(line, " ")
		if i == 0 {
			if key != "daemonize-handoff" {
				return bad("not a daemonize hand-off")
			}
			v, err := strconv.Atoi(rest)
			if err != nil || v < 1 || v > manifestVersion {
				return bad("version %q, want 1 to %d: the old binary uses a newer version of daemonize than the new one; restart the service instead", truncate(rest, 20), manifestVersion)
			}
			m.Version = v
			continue
		}
		var err error
		switch key {
		case "generation":
			m.Generation, err = strconv.Atoi(rest)
		case "started":
			m.Started, err = strconv.ParseInt(rest, 10, 64)
		case "restarts":
			m.Restarts, err = strconv.Atoi(rest)
		case "attempt-started":
			m.AttemptStarted, err = strconv.ParseInt(rest, 10, 64)
		case "deadline":
			m.Deadline, err = strconv.ParseInt(rest, 10, 64)
		case "notify":
			m.NotifySocket, err = strconv.Unquote(rest)
		case "watchdog-usec":
			m.WatchdogUSec, err = strconv.ParseInt(rest, 10, 64)
		case "stderr-captured":
			m.StderrCaptured, err = strconv.ParseBool(rest)
		case "supervisor":
			m.Supervisor, err = strconv.Atoi(rest)
		case "file":
			var e entry
			if err = unquoteFields(rest, &e.Name, &e.Kind, &e.Network, &e.Addr, &e.Bound); err == nil {
				m.Files = append(m.Files, e)
			}
		default:
			return bad("unknown line %q", truncate(line, 40))
		}
		if err != nil {
			return bad("line %q: %v", truncate(line, 40), err)
		}
	}
	if m.Version == 0 {
		return bad("empty")
	}
	if m.Generation < 2 || m.Restarts < 0 {
		return bad("bad generation %d or restart count %d", m.Generation, m.Restarts)
	}
	names := make(map[string]bool, len(m.Files))
	for _, e := range m.Files {
		switch {
		case e.Kind != kindListener && e.Kind != kindPacket && e.Kind != kindFile:
			return bad("unknown kind %q", e.Kind)
		case e.Name == "" || names[e.Name] || strings.HasPrefix(e.Name, reservedPrefix):
			return bad("bad or repeated name %q", e.Name)
		case e.Kind != kindFile && e.Network == "":
			return bad("%s %q has no network", e.Kind, e.Name)
		}
		names[e.Name] = true
	}
	return m, nil
}

// unquoteFields splits s into Go-quoted strings separated by spaces, one
// for each of fields. A string quoting left as it is stays a part of s.
func unquoteFields(s string, fields ...*string) error {
	for i, f := range fields {
		if j := strings.IndexByte(s[min(1, len(s)):], '"') + 1; strings.HasPrefix(s, `"`) && j > 0 && plain(s[1:j]) {
			// What appendQuoted wrote without strconv.
			*f, s = s[1:j], s[j+1:]
		} else {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return err
			}
			*f, _ = strconv.Unquote(q)
			s = s[len(q):]
		}
		if i < len(fields)-1 {
			if !strings.HasPrefix(s, " ") {
				return errors.New("want a space between fields")
			}
			s = s[1:]
		}
	}
	if s != "" {
		return errors.New("trailing text")
	}
	return nil
}

// handoff is the shared file.
type handoff struct {
	f *os.File
}

// Layout of the control block at the start of the hand-off file. The
// fields of version 1 keep their places.
const (
	ctlState   = 0    // uint32: one of the hand-off states
	ctlPID     = 4    // uint32: the child's pid
	ctlStopped = 8    // uint32: 1 once the child, serving, began a clean stop
	ctlMsgLen  = 12   // uint32: length of the child's error message
	ctlMsg     = 16   // the child's error message
	ctlHurry   = 4088 // uint32: 1 once the serving process asks the one that drains to hurry
	ctlAlive   = 4092 // two bytes, one per generation parity: a generation holds its byte's lock while it serves
	ctlSize    = 4096
	maxMessage = ctlHurry - ctlMsg - 4
)

// Hand-off states.
const (
	stateWaiting = iota // the parent waits for the child
	stateReady          // the child declared itself ready
	stateAborted        // the parent gave up on the child
)

// begin resets the control block and writes the manifest, before a child starts.
func (h *handoff) begin(m manifest) error {
	buf := appendManifest(make([]byte, ctlSize), m)
	if _, err := h.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return h.f.Truncate(int64(len(buf)))
}

// manifest reads what the parent wrote.
func (h *handoff) manifest() (manifest, error) {
	st, err := h.f.Stat()
	if err != nil {
		return manifest{}, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	if st.Size() < ctlSize {
		return manifest{}, errors.New("daemonize: hand-off file from parent process is truncated")
	}
	b := make([]byte, st.Size()-ctlSize)
	if _, err := h.f.ReadAt(b, ctlSize); err != nil {
		return manifest{}, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return decodeManifest(b)
}

// setChild records the child's pid (pid > 0) or its last error (msg != "").
func (h *handoff) setChild(pid int, msg string) {
	if pid > 0 {
		h.putWord(ctlPID, uint32(pid))
	}
	if msg != "" {
		msg = truncate(msg, maxMessage-4)
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(msg)))
		h.f.WriteAt(append(b, msg...), ctlMsgLen)
	}
}

// child returns the child's pid and last error message, as far as known.
func (h *handoff) child() (pid int, msg string) {
	b := make([]byte, ctlHurry)
	if _, err := h.f.ReadAt(b, 0); err != nil {
		return 0, ""
	}
	return decodeControl(b)
}

// decodeControl parses a control block, tolerating any content.
func decodeControl(b []byte) (pid int, msg string) {
	if len(b) < ctlMsg {
		return 0, ""
	}
	pid = int(binary.LittleEndian.Uint32(b[ctlPID:]))
	n := int(binary.LittleEndian.Uint32(b[ctlMsgLen:]))
	if n > len(b)-ctlMsg {
		n = len(b) - ctlMsg
	}
	return pid, strings.ToValidUTF8(string(b[ctlMsg:ctlMsg+n]), "?")
}

// markStopping records that the process serving the service stops on
// purpose, so that its parent, if still draining, does not take it for a
// crash, and hurries.
func (h *handoff) markStopping() {
	h.putWord(ctlStopped, 1)
	h.putWord(ctlHurry, 1)
}

// stopping reports whether the child marked a clean stop.
func (h *handoff) stopping() bool { return h.word(ctlStopped) == 1 }

// askHurry asks the process that drains to finish quickly: a restart or a
// stop waits for it.
func (h *handoff) askHurry() { h.putWord(ctlHurry, 1) }

// hurry reports whether the serving process asked the one that drains to
// hurry.
func (h *handoff) hurry() bool { return h.word(ctlHurry) == 1 }

func (h *handoff) putWord(off int64, v uint32) {
	h.f.WriteAt(binary.LittleEndian.AppendUint32(nil, v), off)
}

func (h *handoff) word(off int64) uint32 {
	var b [4]byte
	if _, err := h.f.ReadAt(b[:], off); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b[:])
}

// transition moves the hand-off from waiting to state to. The child passes
// inTime, checked under the lock: once it returns false, the child may no
// longer declare itself ready. transition reports false, with the current
// state, when the move did not happen.
func (h *handoff) transition(to uint32, inTime func() bool) (bool, uint32, error) {
	unlock, err := lockRegion(h.f, ctlState, 4, true)
	if err != nil {
		return false, 0, fmt.Errorf("daemonize: hand-off lock: %w", err)
	}
	defer unlock()
	var b [4]byte
	if _, err := h.f.ReadAt(b[:], ctlState); err != nil {
		return false, 0, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	if cur := binary.LittleEndian.Uint32(b[:]); cur != stateWaiting || inTime != nil && !inTime() {
		return false, cur, nil
	}
	binary.LittleEndian.PutUint32(b[:], to)
	if _, err := h.f.WriteAt(b[:], ctlState); err != nil {
		return false, 0, fmt.Errorf("daemonize: hand-off file: %w", err)
	}
	return true, to, nil
}

// serve takes the lock that says generation gen serves, held until release
// (a clean stop) or until the process dies. The parent, while it drains,
// waits for it with watchSuccessor.
func (h *handoff) serve(gen int) (release func(), err error) {
	return lockRegion(h.f, ctlAlive+int64(gen%2), 1, false)
}

// watchSuccessor waits until the generation gen, which took over, has died
// or begun a clean stop, and reports which.
func (h *handoff) watchSuccessor(gen int) (stopping bool, err error) {
	unlock, err := lockRegion(h.f, ctlAlive+int64(gen%2), 1, true)
	if err != nil {
		return false, err
	}
	unlock()
	return h.stopping(), nil
}
