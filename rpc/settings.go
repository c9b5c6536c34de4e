package rpc

import "github.com/hypha-go/hypha/config"

// ConfigFrom is the client Config the loaded settings describe: RPC_EXCHANGE,
// RPC_TIMEOUT, RPC_MAX_IN_FLIGHT, RPC_PERSISTENT, RPC_RESEND and
// RPC_REPLY_KEY_PREFIX. Services' clients and standalone ones both start
// from it, so that every key reaches every client; the caller adds Owner,
// Interceptors and Logger.
func ConfigFrom(s config.Settings) Config {
	return Config{
		Exchange:       s.RPCExchange,
		Timeout:        s.RPCTimeout,
		MaxInFlight:    s.RPCMaxInFlight,
		Transient:      !s.RPCPersistent,
		NoResend:       !s.RPCResend,
		ReplyKeyPrefix: s.RPCReplyKeyPrefix,
	}
}
