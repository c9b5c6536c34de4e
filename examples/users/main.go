// Command users runs the "user_service" example service, which calls
// calculator, until SIGINT or SIGTERM. From the project root: go run ./examples/users
package main

import (
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
)

func main() {
	framework.Run(framework.Service(users.Name, users.New))
}
