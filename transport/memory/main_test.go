package memory_test

import (
	"testing"

	"github.com/hypha-go/hypha/internal/testbroker"
)

// TestMain gives the RabbitMQ comparison tests a vhost of their own and
// checks that no goroutine outlives the tests.
func TestMain(m *testing.M) { testbroker.Main(m) }
