package rpc_test

import (
	"github.com/hypha-go/hypha/config"
	transportdial "github.com/hypha-go/hypha/transport/dial"
)

// maxMessageSize is the connection option of MAX_MESSAGE_SIZE n, config's
// defaults otherwise.
func maxMessageSize(n int64) transportdial.Option {
	s := config.DefaultSettings()
	s.MaxMessageSize = n
	return transportdial.Settings(s)
}
