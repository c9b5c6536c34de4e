package amqp_test

import (
	"fmt"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
)

// A cluster's nodes are one comma-separated URI list: New tries them in
// turn. With QueueType quorum, the durable queues become quorum queues.
func ExampleNew_cluster() {
	b := amqp.New("amqp://svc:secret@rabbit-1:5672/prod,amqp://svc:secret@rabbit-2:5672/prod",
		amqp.Options{QueueType: amqp.QueueQuorum, DeliveryLimit: 20})
	defer b.Close()
	// b.Connect(ctx) connects to the first node that answers.
	fmt.Println(amqp.SplitURIs("amqp://n1/, amqp://n2/"))
	// Output: [amqp://n1/ amqp://n2/]
}

// Quorum says which queues QueueType quorum declares as quorum queues:
// durable ones that are neither exclusive nor auto-delete.
func ExampleQuorum() {
	for _, q := range []transport.Queue{
		{Name: "rpc-calculator", Durable: true},
		{Name: "evt-orders-order_created--mailer.audit-1", Exclusive: true, AutoDelete: true},
	} {
		fmt.Println(q.Name, amqp.Quorum(q, amqp.QueueQuorum))
	}
	// Output:
	// rpc-calculator true
	// evt-orders-order_created--mailer.audit-1 false
}
