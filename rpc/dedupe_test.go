package rpc

import (
	"fmt"
	"testing"
	"time"
)

func TestSeenRequestsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newSeenRequests(3, time.Minute)
	s.now = func() time.Time { return now }

	// At most limit requests are remembered; the oldest go first.
	for i := range 10 {
		run, prior := s.begin(fmt.Sprint(i), time.Time{})
		if prior != nil {
			t.Fatalf("request %d seen before", i)
		}
		s.finish(run, true)
	}
	if n := s.size(); n != 3 {
		t.Fatalf("%d remembered, want the limit 3", n)
	}
	if _, prior := s.begin("9", time.Time{}); prior == nil || !prior.answered {
		t.Fatal("the newest request was forgotten")
	}
	run, prior := s.begin("0", time.Time{})
	if prior != nil {
		t.Fatal("the oldest request is still remembered past the limit")
	}
	s.finish(run, true)

	// A request is remembered until its deadline, or the window.
	s = newSeenRequests(100, time.Minute)
	s.now = func() time.Time { return now }
	for i, deadline := range []time.Time{{}, now.Add(time.Second), now.Add(time.Hour)} {
		run, _ := s.begin(fmt.Sprint(i), deadline)
		s.finish(run, true)
	}
	now = now.Add(2 * time.Second)
	if _, prior := s.begin("1", time.Time{}); prior != nil {
		t.Fatal("remembered past its deadline")
	}
	if _, prior := s.begin("2", time.Time{}); prior == nil {
		t.Fatal("forgotten before the window ended")
	}
	now = now.Add(time.Minute)
	if run, prior := s.begin("new", time.Time{}); prior != nil || s.size() != 1 {
		t.Fatalf("after the window: %d remembered, want only the new one", s.size())
	} else {
		s.finish(run, true)
	}

	// A run not answered is forgotten, so that its copy runs; a request
	// without a key is never remembered.
	run, _ = s.begin("lost", time.Time{})
	s.finish(run, false)
	if _, prior := s.begin("lost", time.Time{}); prior != nil {
		t.Fatal("an abandoned run is still remembered")
	}
	for range 2 {
		if run, prior := s.begin("", time.Time{}); prior != nil || run == nil {
			t.Fatal("a request without a message id was remembered")
		}
	}
}
