// Package rpc is Hypha's RPC, on nameko's wire. A service registers its
// methods with Handle (or HandleRaw, for requests taken as they come) in its
// Register method; a caller calls them through a Proxy, one injected into a
// service or one of a standalone Client.
//
//	func (c *Calculator) Register(r *entrypoint.Registry) {
//		rpc.Handle(r, "add", c.Add, rpc.Doc("Returns a + b."))
//		rpc.Handle(r, "divide", c.Divide, rpc.Expected(ErrDivisionByZero))
//	}
//
//	sum, err := rpc.Call[float64](ctx, proxy, "add", rpc.Args(1, 2))
//
// Requests go to the topic exchange RPC_EXCHANGE ("nameko-rpc") with the
// routing key "<service>.<method>"; each service consumes its queue
// "rpc-<service>" (QueueName), and a caller's replies come back on a reply
// queue of its own. A struct or a map is sent as keyword arguments, Args as
// positional ones. An error a method returns reaches the caller as a
// *RemoteError with nameko's exc_type, which errors.Is matches against the
// error it was made from (NewError). The errors the framework sends are
// ErrMethodNotFound, ErrIncorrectSignature, ErrMalformedRequest and
// ErrUnserializableValue; a caller's own are ErrServiceNotFound, ErrTimeout,
// ErrClosed and ErrTooManyCalls.
//
// A call's deadline is the sooner of its context's and Config.Timeout; it
// travels with the request, and the handler's context ends then. Execution
// is at least once: a request is acked only once its reply is published, a
// request that a lost connection left unconfirmed is sent again (unless
// Config.NoResend, and the call is not made through Proxy.Idempotent), and a
// server drops the copies of a request it has already answered.
//
// Plugin serves a service's methods and Client makes its calls; package
// framework builds both for every service. Dial connects a standalone client
// with config's defaults; NewClient runs one on a connection of one's own,
// such as transport/dial's Open makes from the loaded config.
package rpc
