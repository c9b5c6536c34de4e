// Command gateway runs the "gateway" example service, which exposes calculator
// and user_service over HTTP, until SIGINT or SIGTERM. It serves on
// HTTP.ADDRESS (HTTP_ADDRESS), 127.0.0.1:8000 when that is not set. From the
// project root:
//
//	go run ./examples/calculator & go run ./examples/users & go run ./examples/gateway
//	curl 'http://127.0.0.1:8000/calculator/add?a=2&b=3'
package main

import (
	"os"

	"github.com/hypha-go/hypha/examples/gateway/gateway"
	"github.com/hypha-go/hypha/framework"
)

// defaultAddress is where the gateway listens unless HTTP.ADDRESS says otherwise.
const defaultAddress = "127.0.0.1:8000"

func main() {
	opts := []framework.Option{framework.Service(gateway.Name, gateway.New)}
	if os.Getenv("HTTP_ADDRESS") == "" && os.Getenv("HYPHA_HTTP__ADDRESS") == "" {
		opts = append(opts, framework.ConfigValues(map[string]any{"HTTP.ADDRESS": defaultAddress}))
	}
	framework.Run(opts...)
}
