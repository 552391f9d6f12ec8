//go:build linux

package main

import (
	"slices"
	"testing"
	"time"
)

func TestLongestGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// Requests ended every millisecond, but for a hole from 10 to 17 and
	// one from 40 to 43.
	var ends []time.Time
	for i := 0; i <= 50; i++ {
		if i > 10 && i < 17 || i > 40 && i < 43 {
			continue
		}
		ends = append(ends, ms(i))
	}
	gaps, at := longestGaps(ends, []windowT{
		{ms(12), ms(20)}, // inside the first hole: the whole hole counts
		{ms(20), ms(30)}, // no hole
		{ms(35), ms(45)}, // the second hole
		{ms(0), ms(50)},  // both: the longer
	})
	want := []time.Duration{7 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond}
	wantAt := []time.Duration{0, 0, 5 * time.Millisecond, 10 * time.Millisecond}
	if !slices.Equal(gaps, want) || !slices.Equal(at, wantAt) {
		t.Errorf("longestGaps = %v at %v, want %v at %v", gaps, at, want, wantAt)
	}
}
