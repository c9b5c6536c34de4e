package events

import "testing"

func TestAttemptOfReadsEveryIntegerType(t *testing.T) {
	for _, v := range []any{int8(4), int16(4), int32(4), int64(4), int(4), uint8(4), uint16(4), uint32(4), uint64(4), float64(4)} {
		if got := attemptOf(map[string]any{AttemptHeader: v}); got != 4 {
			t.Errorf("attempt header %T(4) read as %d", v, got)
		}
	}
	for _, v := range []any{nil, "4", int64(0), int64(-3)} {
		if got := attemptOf(map[string]any{AttemptHeader: v}); got != 1 {
			t.Errorf("attempt header %#v read as %d, want 1", v, got)
		}
	}
}
