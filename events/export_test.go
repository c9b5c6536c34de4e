package events

// ValidateRetryDelay lets the tests of package events_test check RetryDelay's bounds.
func ValidateRetryDelay(r RetryDelay) error { return r.validate() }

// NewServer lets the tests of package events_test build a server without
// going through Plugin.
var NewServer = newServer

// ServerConfig is serverConfig, for tests.
type ServerConfig = serverConfig

// Server is server, for tests.
type Server = server
