package worker_test

import (
	"math"
	"testing"

	"github.com/hypha-go/hypha/internal/worker"
)

// TestHeaderCount: a counter from the wire is read alike whatever number
// type it arrives as, clamped: never negative, never past 2^31, and an
// absurd float (1e300, NaN) the same as its integer kin.
func TestHeaderCount(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want int
	}{
		{nil, 0}, {"3", 0}, {true, 0}, {int8(3), 3}, {uint8(3), 3}, {int32(3), 3}, {int64(3), 3}, {uint64(3), 3},
		{3.0, 3}, {3.9, 3}, {float32(3), 3}, {-1, 0}, {int64(math.MinInt64), 0}, {-1e300, 0}, {math.NaN(), 0},
		{math.Inf(-1), 0}, {int64(math.MaxInt64), 1 << 31}, {uint64(math.MaxUint64), 1 << 31}, {1e300, 1 << 31},
		{math.Inf(1), 1 << 31},
	} {
		if got := worker.HeaderCount(tc.in); got != tc.want {
			t.Errorf("HeaderCount(%T %v) = %d, want %d", tc.in, tc.in, got, tc.want)
		}
	}
}
