package events

import (
	"time"

	"github.com/hypha-go/hypha/transport"
)

// RetryDelay is retryDelay, for the tests of package events_test.
type RetryDelay = retryDelay

// ValidateRetryDelay lets the tests of package events_test check RetryDelay's bounds.
func ValidateRetryDelay(r RetryDelay) error { return r.validate() }

// Delay is r.delay, for tests.
func (r retryDelay) Delay(queue string, attempt int) time.Duration { return r.delay(queue, attempt) }

// Queue is r.queue, for tests.
func (r retryDelay) Queue(q transport.Queue, attempt int) transport.Queue { return r.queue(q, attempt) }

// MaxRetryDelay is maxRetryDelay, for tests.
const MaxRetryDelay = maxRetryDelay

// Handler is eventHandler, for tests.
type Handler = eventHandler

// Queue is h.queue, for tests.
func (h *eventHandler) Queue(service string) transport.Queue { return h.queue(service) }

// NewServer lets the tests of package events_test build a server without
// going through Plugin.
var NewServer = newServer

// ServerConfig is serverConfig, for tests.
type ServerConfig = serverConfig

// Server is server, for tests.
type Server = server

// How an event went to its dead-letter queue, for tests.
const (
	DeadLetterCopy   = deadLetterCopy
	DeadLetterWhole  = deadLetterWhole
	DeadLetterRecord = deadLetterRecord
)
