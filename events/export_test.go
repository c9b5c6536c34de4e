package events

// ValidateRetryDelay lets the tests of package events_test check RetryDelay's bounds.
func ValidateRetryDelay(r RetryDelay) error { return r.validate() }
