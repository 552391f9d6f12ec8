package daemonize

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodeStatus(t *testing.T) {
	st := Status{PID: 42, Generation: 2, State: StateReady, Executable: "/bin/app", Started: time.Unix(1, 0).UTC(),
		LastRestart: &RestartStatus{Attempt: 1, OK: true, OldPID: 41, NewPID: 42}}
	b, _ := json.Marshal(st)
	got, err := decodeStatus(b)
	if err != nil || got.PID != 42 || got.LastRestart.OldPID != 41 || !got.Started.Equal(st.Started) {
		t.Errorf("decodeStatus = %+v, %v", got, err)
	}
	for in, want := range map[string]string{
		`{`: "status file",
		`{"pid":0,"generation":1,"state":"ready"}`: "not a daemonize status",
		`{"pid":1,"generation":0,"state":"ready"}`: "not a daemonize status",
		`{"pid":1,"generation":1}`:                 "not a daemonize status",
		`[]`:                                       "status file",
	} {
		if _, err := decodeStatus([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeStatus(%s) = %v, want %q", in, err, want)
		}
	}
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"pid":42,"generation":2,"state":"ready","last_restart":{"attempt":1,"ok":false,"error":"x"}}`))
	f.Add([]byte(`{"pid":1,"generation":1,"state":"starting","previous":{"pid":2,"state":"draining"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeStatus(b)
		if err == nil && (st.PID <= 0 || st.Generation < 1 || st.State == "") {
			t.Errorf("accepted %+v", st)
		}
	})
}
