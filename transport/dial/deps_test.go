package dial_test

import (
	"os/exec"
	"strings"
	"testing"
)

// brokerPackages are the packages that speak to a broker: only the one Dial
// (and the framework and tools that dial) may depend on them.
var brokerPackages = []string{
	"github.com/hypha-go/hypha/transport/amqp",
	"github.com/hypha-go/hypha/transport/memory",
	"github.com/rabbitmq/amqp091-go",
}

// TestEntrypointsDoNotDial: the packages a service's entrypoints live in
// take a connection and never dial, so none of them depends on a broker's
// package or on amqp091-go.
func TestEntrypointsDoNotDial(t *testing.T) {
	for _, pkg := range []string{"rpc", "events", "timer", "httpentry", "entrypoint"} {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", "-test=false", root+"/"+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 {
				t.Fatalf("go list -deps %s listed only %v: is the root right?", pkg, deps)
			}
			for _, d := range deps {
				for _, b := range brokerPackages {
					if d == b || strings.HasPrefix(d, b+"/") {
						t.Errorf("%s depends on %s: it should take a transport.Broker, and leave dialling to transport/dial", pkg, d)
					}
				}
			}
		})
	}
}
