package amqp_test

import (
	"fmt"

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
