package rpc

// ReplyQueueOf is the name of c's reply queue, for tests.
func ReplyQueueOf(c *Client) string { return c.queue }

// NewServer and ServerConfig let the tests of package rpc_test build a
// server without going through Plugin.
var NewServer = newServer

// ServerConfig is serverConfig, for tests.
type ServerConfig = serverConfig

// Server is server, for tests.
type Server = server

// MaxRawRequeues is maxRawRequeues, for tests.
const MaxRawRequeues = maxRawRequeues
