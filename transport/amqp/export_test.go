package amqp

// Broker is the connection type, named for the package's external tests.
type Broker = connection
