package amqp

import "context"

// Broker is the connection type, named for the package's external tests.
type Broker = connection

// Dial returns a connection connected to uri: New, then Connect. Programs
// dial through transport/dial; the package's tests set Options by hand.
func Dial(ctx context.Context, uri string, opts Options) (*connection, error) {
	b := New(uri, opts)
	if err := b.Connect(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}
