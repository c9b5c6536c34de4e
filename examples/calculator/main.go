// Command calculator runs the "calculator" example service until SIGINT or
// SIGTERM. From the project root: go run ./examples/calculator
package main

import (
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
)

func main() {
	framework.Run(framework.Service(calculator.Name, calculator.New))
}
