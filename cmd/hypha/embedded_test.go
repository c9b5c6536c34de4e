package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
)

// runHere runs the command in this process, as main does.
func runHere(args []string, stdin string) result {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, streams{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// TestEmbeddedBroker: the commands work on the embedded broker too (in this
// process: it has no wire), since all of them go through the transport.
func TestEmbeddedBroker(t *testing.T) {
	t.Setenv("HYPHA_TEST_AMQP_URI", "")
	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New), framework.Service(mailer.Name, mailer.New))
	broker := []string{"--broker", app.URI()}

	r := runHere(append(broker, "call", "calculator.add", "a=1", "b=2"), "")
	r.want(t, exitOK)
	if r.stdout != "3\n" {
		t.Errorf("stdout = %q, want 3", r.stdout)
	}
	r = runHere(append(broker, "call", "calculator.divide", "1", "0"), "")
	r.want(t, exitRemoteError)
	r.wantErr(t, "ZeroDivisionError")
	r = runHere(append(broker, "inspect", "mailer"), "")
	r.want(t, exitOK, "send_confirmation <- orders.order_created")
	r = runHere(append(broker, "events", "dispatch", "orders", "order_created", `{"id": "o-mem"}`), "")
	r.want(t, exitOK)
	r = runHere(append(broker, "bench", "calculator.add", "1", "2", "--calls", "50", "--concurrency", "5"), "")
	r.want(t, exitOK, "50 ok, 0 failed")

	// What the management API would tell, the embedded broker tells through
	// the transport, as RabbitMQ does.
	r = runHere(append(broker, "services", "calculator", "nobody"), "")
	r.want(t, exitOK, "calculator                       1", "nobody                   not found")
	r.wantErr(t, "source: passive declare")
	r = runHere(append(broker, "dlq", "list", "x.dlq"), "")
	r.want(t, exitError)
	r.wantErr(t, `no queue "x.dlq"`)
}

// TestEveryCommandHasExamples: --help shows an example for every command.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Name() == "help" || cmd.Name() == "completion" { // cobra's own
			return
		}
		if cmd.Example == "" {
			t.Errorf("%q has no Example", cmd.CommandPath())
		}
		for _, sub := range cmd.Commands() {
			if !sub.Hidden {
				walk(sub)
			}
		}
	}
	root := (&cli{}).rootCommand()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	walk(root)
}
