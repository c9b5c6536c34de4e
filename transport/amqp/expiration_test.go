package amqp

import (
	"testing"
	"time"
)

// TestExpirationFromAPeer: a message's expiration text is read as a budget
// only when it is one; nothing a peer sends overflows into a negative or
// wrapped-around budget.
func TestExpirationFromAPeer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"1500", 1500 * time.Millisecond}, {"-5", 0}, {"12abc", 0}, {" 15", 0}, {"1e3", 0},
		{"9223372036854775807", maxExpiration}, {"99999999999999999999", maxExpiration},
		{"-99999999999999999999", 0}, {"9223372036855", maxExpiration},
	} {
		if got := expiration(tc.in); got != tc.want {
			t.Errorf("expiration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
