package timer

// What the tests of package timer_test use of the machinery behind Plugin.
type (
	Server       = server
	ServerConfig = serverConfig
)

var NewServer = newServer

const DueHeader = dueHeader
