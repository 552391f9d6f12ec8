package proc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

func TestPoll(t *testing.T) {
	n := 0
	if !proc.Poll(10*time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll = false, want true once the condition holds")
	}
	if n != 3 {
		t.Errorf("condition called %d times, want 3", n)
	}

	start := time.Now()
	if proc.Poll(20*time.Millisecond, func() bool { return false }) {
		t.Error("Poll = true for a condition that never holds")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("Poll gave up after %s, before its limit of 20ms", took)
	}

	called := false
	if !proc.Poll(0, func() bool { called = true; return true }) || !called {
		t.Error("Poll with no time left did not call the condition once")
	}
}

func TestPollUntil(t *testing.T) {
	err := proc.PollUntil(context.Background(), time.Now(), time.Millisecond, func() bool { return false })
	if !errors.Is(err, proc.ErrTimeout) {
		t.Errorf("past the deadline: %v, want ErrTimeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = proc.PollUntil(ctx, time.Now().Add(time.Minute), time.Millisecond, func() bool { return false })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("context canceled: %v, want context.Canceled", err)
	}

	if err := proc.PollUntil(ctx, time.Now(), time.Millisecond, func() bool { return true }); err != nil {
		t.Errorf("condition that holds at once: %v, want nil even with the context ended", err)
	}
}
