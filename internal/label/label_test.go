package label_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hypha-go/hypha/internal/label"
)

func TestSet(t *testing.T) {
	s := label.NewSet(2, "add", "\xff", strings.Repeat("x", label.MaxLen+1))
	for _, tc := range []struct{ in, want string }{
		{"add", "add"},
		{"subtract", label.Other},
		{"\xff", label.Other},
		{strings.Repeat("x", label.MaxLen+1), label.Other},
		{"", label.Other},
	} {
		if got := s.Of(tc.in); got != tc.want {
			t.Errorf("Of(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"\xc3(", label.Other}, // invalid values are never learned, nor use up room
		{"one", "one"},
		{"one", "one"},
		{"two", "two"},
		{"three", label.Other}, // no room left
	} {
		if got := s.Learn(tc.in); got != tc.want {
			t.Errorf("Learn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if s.Len() != 3 {
		t.Errorf("Len() = %d, want 3", s.Len())
	}
}

func TestLearnIsBoundedUnderConcurrency(t *testing.T) {
	s := label.NewSet(10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				s.Learn(fmt.Sprintf("m%d_%d", g, i))
			}
		})
	}
	wg.Wait()
	if s.Len() != 10 {
		t.Fatalf("Len() = %d, want 10", s.Len())
	}
}

func TestOwn(t *testing.T) {
	if got := label.Own("calculator"); got != "calculator" {
		t.Errorf("Own(calculator) = %q", got)
	}
	if got := label.Own("\xff\xfe"); got != label.Other {
		t.Errorf("Own(invalid UTF-8) = %q, want %q", got, label.Other)
	}
}
