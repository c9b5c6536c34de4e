// Package memory is Hypha's embedded broker: an in-process transport.Broker
// with RabbitMQ's semantics for everything Hypha relies on, for a quick
// start without RabbitMQ and for tests. Set AMQP_URI to "memory://" (or
// "memory://name" for a broker of its own) and services, clients and
// dispatchers in one process talk through it. A program reaches it as it
// reaches RabbitMQ, through transport/dial's Dial:
//
//	b, err := dial.Dial(ctx, "memory://")
//	if err != nil { ... }
//	defer b.Close()
//	_ = b.DeclareQueue(ctx, transport.Queue{Name: "greetings"})
//	c, _ := b.Consume(ctx, transport.ConsumeOptions{Queue: "greetings", Prefetch: 10},
//		func(d transport.Delivery) { fmt.Println(string(d.Body)); _ = d.Ack() })
//	defer c.Close()
//	_ = b.Publish(ctx, transport.Publishing{RoutingKey: "greetings", Message: transport.Message{Body: []byte("hi")}})
//
// Each dial (New) is one connection to the broker of its name; brokers
// of one name are shared by the whole process, as connections share a
// RabbitMQ virtual host, and Reset discards one (tests call it in cleanup).
//
// What behaves as RabbitMQ does: topic, direct and fanout exchanges ("*"
// matches one word, "#" zero or more) and the default exchange; durable,
// exclusive (deleted with their connection) and auto-delete queues; declaring
// again alike is a no-op, declaring differently fails with
// PRECONDITION_FAILED; publishing to a missing exchange fails with
// NOT_FOUND; mandatory messages no queue takes fail with
// transport.ErrUnroutable; competing consumers take turns within their
// prefetch, or x-single-active-consumer picks one; messages expire by their
// Expiration or the queue's x-message-ttl, looked at only at the head of
// the queue; x-expires deletes an unused queue; expired and rejected
// messages go to x-dead-letter-exchange with an x-death header; nacked and
// unsettled messages come back marked Redelivered. Messages are copied on
// publish and on delivery, and headers come back as they would through
// AMQP (see normalizeHeaders).
//
// What it does not do: keep anything across processes (durable only means
// nothing is lost while the process lives), cluster, speak the AMQP wire
// protocol to other programs, enforce length limits or priorities (such
// queue arguments are refused), or close a channel on a double ack (the
// ack fails instead). Its connections are never lost, so Delivery.Lost
// closes only when the delivery's consumer or connection is closed.
package memory
