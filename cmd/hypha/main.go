// Command hypha pokes at Hypha (and nameko) services from a terminal: call a
// method, inspect a service, list the running services, listen to and
// dispatch events, benchmark a method, show the resolved configuration, and
// look at and replay dead-lettered events. It reads the same config.yaml and
// environment as a service; --config and --broker override them.
//
//	go install github.com/hypha-go/hypha/cmd/hypha@latest
//	hypha call calculator.add a=1 b=2
//	hypha inspect calculator
//	hypha shell
//
// Its exit codes tell a script what went wrong: see exitCodes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}
