package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// Exit codes, one per kind of failure a script may want to tell apart.
const (
	exitOK                 = 0
	exitError              = 1 // anything else: bad config, broker unreachable, ...
	exitUsage              = 2 // bad command line
	exitRemoteError        = 3 // the method raised an error (RemoteError)
	exitServiceNotFound    = 4 // no queue rpc-<service> on the broker
	exitMethodNotFound     = 5 // the service has no such method
	exitIncorrectSignature = 6 // the arguments do not fit the method
	exitTimeout            = 7 // no reply before the timeout
	exitNotHypha           = 8 // the service does not answer introspection (a nameko service)
	exitInterrupted        = 130
)

// dialTimeout bounds connecting to the broker: a tool should say at once
// that it cannot reach it, not wait as a service does.
const dialTimeout = 5 * time.Second

// connectionName is what RabbitMQ's management tools show for every
// connection of the command.
const connectionName = "hypha"

// opened, when set, sees every connection a command opens, once connected:
// tests check there what reached it.
var opened func(dial.Broker)

// streams are the command's standard streams.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// exitErr is an error with the exit code it ends the command with.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func withCode(code int, format string, args ...any) error {
	return &exitErr{code: code, err: fmt.Errorf(format, args...)}
}

// cli is the state the commands share: the global flags and the streams.
type cli struct {
	streams
	configPath string
	broker     string
	loaded     *config.Config
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, s streams) int {
	c := &cli{streams: s}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil {
		fmt.Fprintln(s.err, "hypha: interrupted")
		return exitInterrupted
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		fmt.Fprintln(s.err, "hypha:", ee.err)
		return ee.code
	}
	fmt.Fprintln(s.err, "hypha:", err)
	if isUsage(err) {
		fmt.Fprintln(s.err, "Run 'hypha --help' for usage.")
		return exitUsage
	}
	return exitError
}

// isUsage tells cobra's own command-line errors.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "requires at most", "usage:"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func usageError(format string, args ...any) error {
	return withCode(exitUsage, "usage: "+format, args...)
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "hypha",
		Short: "Call, inspect and watch Hypha and nameko services",
		Long: `hypha talks to the services on a broker: it calls their methods, describes them,
lists them, listens to and dispatches events, benchmarks a method, shows the
configuration, and looks at and replays dead-lettered events.

It reads config.yaml (--config, else $HYPHA_CONFIG, else ./config.yaml) and the
HYPHA_* environment as a service does; --broker overrides AMQP_URI.

Exit codes: 0 ok, 1 error, 2 bad command line, 3 the method raised an error,
4 service not found, 5 method not found, 6 incorrect signature, 7 timeout,
8 not a Hypha service (no introspection), 130 interrupted.`,
		Example: `  hypha call calculator.add a=1 b=2
  hypha --broker amqp://guest:guest@rabbit:5672/ inspect calculator`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "config file (default $HYPHA_CONFIG, else ./config.yaml)")
	root.PersistentFlags().StringVar(&c.broker, "broker", "", "broker URI, overriding AMQP_URI (amqp://user:pass@host:5672/vhost)")
	root.AddCommand(c.callCommand(), c.inspectCommand(), c.configCommand(), c.servicesCommand(), c.eventsCommand(),
		c.dlqCommand(), c.benchCommand(), c.shellCommand())
	return root
}

// config loads the configuration once: the file, the environment, --broker.
func (c *cli) config() (config.Config, error) {
	if c.loaded != nil {
		return *c.loaded, nil
	}
	var overrides map[string]any
	if c.broker != "" {
		overrides = map[string]any{"AMQP_URI": c.broker}
	}
	cfg, err := config.Load(c.configPath, overrides)
	if err != nil {
		return config.Config{}, fmt.Errorf("loading config: %w", err)
	}
	c.loaded = &cfg
	return cfg, nil
}

// client is an RPC client on a connection of its own: Close closes both.
type client struct {
	*rpc.Client
	broker dial.Broker
}

// Close closes the client, then its connection.
func (c *client) Close() error {
	err := c.Client.Close()
	c.broker.Close()
	return err
}

// open connects to the broker as config.yaml says, through the one mapping
// of every connection-level key (dial.Settings), failing within dialTimeout when
// the broker does not answer.
func (c *cli) open(ctx context.Context) (dial.Broker, config.Config, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, cfg, err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	b, err := dial.Dial(dctx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name(connectionName))
	if err != nil {
		return nil, cfg, c.unreachable(ctx, cfg, err)
	}
	if opened != nil {
		opened(b)
	}
	return b, cfg, nil
}

// dial connects an RPC client as config.yaml says (open, rpc.ConfigFrom). A
// callTimeout over RPC_TIMEOUT raises the client's bound, so that --timeout
// can wait longer.
func (c *cli) dial(ctx context.Context, callTimeout time.Duration) (*client, config.Config, error) {
	b, cfg, err := c.open(ctx)
	if err != nil {
		return nil, cfg, err
	}
	rc := rpc.ConfigFrom(cfg.Settings)
	rc.Timeout = max(rc.Timeout, callTimeout)
	cl := &client{Client: rpc.NewClient(b, rc), broker: b}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := cl.Start(dctx); err != nil {
		b.Close()
		return nil, cfg, err
	}
	return cl, cfg, nil
}

// dialCall is dial for the commands that make calls: o.timeout, when not
// given, becomes RPC_TIMEOUT.
func (c *cli) dialCall(ctx context.Context, o *callOptions) (*client, config.Config, error) {
	client, cfg, err := c.dial(ctx, o.timeout)
	if err != nil {
		return nil, cfg, err
	}
	if o.timeout == 0 {
		o.timeout = cfg.RPCTimeout
	}
	return client, cfg, nil
}

// unreachable says that the broker could not be reached, and where it was looked for.
func (c *cli) unreachable(ctx context.Context, cfg config.Config, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("cannot connect to the broker at %s (AMQP_URI from %s): %w; is it running? --broker sets another",
		maskURI(cfg.AMQPURI), cfg.Source("AMQP_URI"), err)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
