// Command mailer runs the "mailer" example service, which handles the orders
// service's order_created events, until SIGINT or SIGTERM. From the project
// root: go run ./examples/mailer
package main

import (
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/framework"
)

func main() {
	framework.Run(framework.Service(mailer.Name, mailer.New))
}
