// Command orders runs the "orders" example service, which dispatches an
// order_created event for every order, until SIGINT or SIGTERM. From the
// project root: go run ./examples/orders
package main

import (
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/framework"
)

func main() {
	framework.Run(framework.Service(orders.Name, orders.New))
}
