package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
	"github.com/hypha-go/hypha/transport/dial"
)

// connectionKeys set every connection-level key away from its default.
const connectionKeys = `
HEARTBEAT: 0
MAX_MESSAGE_SIZE: 54321
RECONNECT: {INTERVAL_START: 0.25, INTERVAL_MAX: 3, MAX_ELAPSED: 40}
RPC_RETRY_POLICY: {MAX_RETRIES: 5, INTERVAL_START: 0.1, INTERVAL_STEP: 0.2, INTERVAL_MAX: 0.5}
QUEUE_DELIVERY_LIMIT: 9
GRACE_PERIOD: 1
`

// brokerConn is a connection as RabbitMQ reports it.
type brokerConn struct {
	name               string // its connection_name
	timeout, frameMax  string // the negotiated heartbeat, in seconds, and frame_max
	authMechanism, ssl string
}

// brokerConns lists the connections to the test's vhost that RabbitMQ has.
func brokerConns(t *testing.T) []brokerConn {
	t.Helper()
	out, err := testbroker.Rabbitmqctl("list_connections", "-q", "--no-table-headers",
		"vhost", "timeout", "frame_max", "auth_mechanism", "ssl", "client_properties")
	if err != nil {
		t.Fatalf("rabbitmqctl: %v\n%s", err, out)
	}
	var conns []brokerConn
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, "\t", 6)
		if len(f) < 6 || f[0] != testbroker.VHost(t) {
			continue
		}
		name := ""
		if _, rest, ok := strings.Cut(f[5], `{"connection_name","`); ok {
			name, _, _ = strings.Cut(rest, `"`)
		}
		conns = append(conns, brokerConn{name: name, timeout: f[1], frameMax: f[2], authMechanism: f[3], ssl: f[4]})
	}
	return conns
}

// wantConn checks that RabbitMQ has a connection whose name starts with
// prefix, and that every such one runs with heartbeat (in seconds), the
// frame_max Hypha asks for, a PLAIN login and no TLS, as the keys say.
func wantConn(t *testing.T, kind, prefix, heartbeat string) {
	t.Helper()
	found := false
	for _, c := range brokerConns(t) {
		if !strings.HasPrefix(c.name, prefix) {
			continue
		}
		found = true
		got := fmt.Sprintf("heartbeat %s, frame_max %s, %s, ssl %s", c.timeout, c.frameMax, c.authMechanism, c.ssl)
		if want := fmt.Sprintf("heartbeat %s, frame_max 131072, PLAIN, ssl false", heartbeat); got != want {
			t.Errorf("%s: the broker's connection %q has %s, want %s", kind, c.name, got, want)
		}
	}
	if !found {
		t.Errorf("%s: the broker has no connection named %s...", kind, prefix)
	}
}

// TestEveryConnectionTakesTheConfig: the connection-level keys of one
// config.yaml reach every kind of connection alike: a service's, and each
// command's, as RabbitMQ reports them (heartbeat, frame_max, name, login,
// TLS) and as each connection runs (MAX_MESSAGE_SIZE, RECONNECT,
// RPC_RETRY_POLICY, QUEUE_DELIVERY_LIMIT); a program's client on
// dial.Dial with dial.Settings takes them too, and a connection dialled
// without Settings runs with config's defaults.
func TestEveryConnectionTakesTheConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "AMQP_URI: "+testbroker.URI(t)+"\n"+connectionKeys)
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := struct {
		MaxMessageSize int64
		Reconnect      transport.ReconnectPolicy
		Retry          transport.RetryPolicy
		DeliveryLimit  int
		LoginMethod    string
	}{cfg.MaxMessageSize, transport.ReconnectPolicy(cfg.Reconnect), transport.RetryPolicy(cfg.RPCRetryPolicy),
		cfg.QueueDeliveryLimit, cfg.LoginMethod}

	app, err := framework.New(framework.ConfigFile(path), framework.Service(calculator.Name, calculator.New))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Stop(context.Background())
	wantConn(t, "service", calculator.Name+"@", "0")

	// The queues the dlq commands read.
	b, err := dial.Dial(ctx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name("setup"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, q := range []string{"keys", "keys.dlq"} {
		if err := b.DeclareQueue(ctx, transport.Queue{Name: q, Durable: true}); err != nil {
			t.Fatal(err)
		}
	}

	var seen int
	cur := t // the subtest running the command
	opened = func(b dial.Broker) {
		t := cur
		seen++
		got := b.(interface{ Options() amqp.Options }).Options()
		for _, f := range []struct {
			key       string
			got, want any
		}{
			{"MAX_MESSAGE_SIZE", got.MaxMessageSize, want.MaxMessageSize},
			{"RECONNECT", got.Reconnect, want.Reconnect},
			{"RPC_RETRY_POLICY", got.Retry, want.Retry},
			{"QUEUE_DELIVERY_LIMIT", got.DeliveryLimit, want.DeliveryLimit},
			{"LOGIN_METHOD", got.LoginMethod, want.LoginMethod},
		} {
			if f.got != f.want {
				t.Errorf("%s: the command's connection has %v, want %v", f.key, f.got, f.want)
			}
		}
		wantConn(t, "the command", connectionName, "0")
	}
	defer func() { opened = nil }()
	for _, args := range [][]string{
		{"call", "calculator.add", "a=1", "b=2"},
		{"inspect", "calculator"},
		{"bench", "calculator.add", "a=1", "b=2", "--calls", "3", "--concurrency", "1"},
		{"shell"},
		{"__complete", "call", "calculator.a"},
		{"services", "calculator", "--management", "http://127.0.0.1:1"},
		{"events", "listen", "keys.nothing", "--timeout", "5s"}, // the checks take a while
		{"events", "dispatch", "keys", "nothing", "{}"},
		{"dlq", "list", "keys.dlq"},
		{"dlq", "show", "keys.dlq"},
		{"dlq", "replay", "keys.dlq"},
	} {
		t.Run(strings.Join(args[:min(2, len(args))], " "), func(t *testing.T) {
			cur = t
			before := seen
			r := runHere(append([]string{"--config", path}, args...), "")
			if r.code != exitOK {
				t.Fatalf("exit code %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if seen == before {
				t.Errorf("the command opened no connection through dial.Dial")
			}
		})
	}
	opened = nil

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := dial.Dial(ctx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name(rpc.StandaloneOwner))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.ConfigFrom(cfg.Settings))
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := hyphatest.Dispatcher(t, ctx, cfg.AMQPURI, events.DispatcherConfig{Source: "keys"}); err != nil {
		t.Fatal(err)
	}
	def := fmt.Sprint(int(config.DefaultSettings().Heartbeat.Seconds()))
	wantConn(t, "a client on dial.Settings", rpc.StandaloneOwner, "0")
	wantConn(t, "a connection without Settings", "keys-dispatcher", def)
	if t.Failed() {
		t.Logf("connections: %+v", brokerConns(t))
	}
}
