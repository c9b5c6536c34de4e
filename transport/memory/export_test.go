package memory

import "context"

// Broker is the connection type, named for the package's external tests.
type Broker = connection

// Dial is New with transport/amqp's test Dial shape. Programs dial through
// transport/dial; the package's tests set Options by hand.
func Dial(ctx context.Context, uri string, opts Options) (*connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return New(uri, opts)
}

// NormalizeHeaders is normalizeHeaders, for the package's external tests.
var NormalizeHeaders = normalizeHeaders
