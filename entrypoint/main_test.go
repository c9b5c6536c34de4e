package entrypoint_test

import (
	"testing"

	"github.com/hypha-go/hypha/internal/testbroker"
)

func TestMain(m *testing.M) { testbroker.Main(m) }
