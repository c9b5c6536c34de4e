package events

import (
	"context"
	"testing"
)

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

func TestWithDeliveryIsReadBack(t *testing.T) {
	ctx := WithDelivery(context.Background(), "m-1", 3)
	if MessageID(ctx) != "m-1" || Attempt(ctx) != 3 {
		t.Fatalf("MessageID, Attempt = %q, %d", MessageID(ctx), Attempt(ctx))
	}
	if bare := context.Background(); MessageID(bare) != "" || Attempt(bare) != 0 {
		t.Fatalf("a bare context has MessageID %q, Attempt %d", MessageID(bare), Attempt(bare))
	}
}
