package framework_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	transportdial "github.com/hypha-go/hypha/transport/dial"
)

// secretUser creates a virtual host of its own and a user with a
// distinctive password, allowed everything there (as guest is), both deleted
// when the test ends, and returns the password and the user's URI. The vhost
// keeps the test's service apart from the package's other tests.
func secretUser(t *testing.T) (user, password, uri string) {
	t.Helper()
	testbroker.VHost(t) // skips or fails without RabbitMQ
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	user, password = "hypha-audit-"+id, "s3cr3t-"+id
	vhost := "hypha-audit-" + id
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { _, _ = testbroker.Rabbitmqctl("delete_vhost", vhost) })
	rabbitmqctl(t, "add_user", user, password)
	t.Cleanup(func() { _, _ = testbroker.Rabbitmqctl("delete_user", user) })
	for _, u := range []string{user, "guest"} {
		rabbitmqctl(t, "set_permissions", "-p", vhost, u, ".*", ".*", ".*")
	}
	u, err := url.Parse(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User, u.Path = url.UserPassword(user, password), "/"+vhost
	return user, password, u.String()
}

// noSecret fails t if text shows password, as written or percent-encoded.
func noSecret(t *testing.T, where, text, password string) {
	t.Helper()
	for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password)} {
		if strings.Contains(text, form) {
			t.Errorf("%s shows the password:\n%s", where, text)
			return
		}
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

var servingMetrics = regexp.MustCompile(`http://([0-9.:]+)/metrics`)

// TestPasswordNeverShows runs a service as a process of its own, as
// framework.Run does in production, logging at debug level in JSON and in
// text, tracing to stdout and serving /metrics and the health checks, with
// AMQP_URI from HYPHA_AMQP_URI_FILE or HYPHA_AMQP_URI. It calls the service,
// scrapes every endpoint, has the broker drop the service's connection and
// stops it: the password shows in none of the output, nor in the
// connection's name and client properties the broker lists.
func TestPasswordNeverShows(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			user, password, uri := secretUser(t)
			env := []string{childEnv + "=1", childLogsEnv + "=framework", "HYPHA_CONFIG=",
				"HYPHA_LOG_LEVEL=debug", "HYPHA_LOG_FORMAT=" + format, "HYPHA_TRACING__EXPORTER=console",
				"HYPHA_METRICS__ADDRESS=127.0.0.1:0", "HYPHA_GRACE_PERIOD=1"}
			if format == "json" { // a secret delivered as a file
				file := filepath.Join(t.TempDir(), "amqp-uri")
				if err := os.WriteFile(file, []byte(uri+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "HYPHA_AMQP_URI_FILE="+file)
			} else {
				env = append(env, "HYPHA_AMQP_URI="+uri)
			}
			env = append(withoutEnv(os.Environ(), "HYPHA_AMQP_URI", "HYPHA_AMQP_URI_FILE"), env...)
			cmd := exec.Command(os.Args[0])
			cmd.Env = env
			cmd.Dir = t.TempDir()
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			exited := false
			defer func() {
				if !exited {
					cmd.Process.Kill()
					<-done
				}
			}()

			var addr string
			eventually(t, 15*time.Second, "no metrics address logged", func() bool {
				m := servingMetrics.FindStringSubmatch(out.String())
				if m != nil {
					addr = m[1]
				}
				return m != nil
			})
			guest, _ := url.Parse(uri)
			guest.User = url.UserPassword("guest", "guest")
			c, err := hyphatest.Client(t, context.Background(), guest.String(), rpc.Config{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			eventually(t, 15*time.Second, "the service never answered", func() bool {
				_, err := rpc.Call[float64](context.Background(), c.Proxy(calculator.Name), "add", rpc.Args(1, 1))
				return err == nil
			})
			var served strings.Builder
			for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
				_, body := get(t, addr, path)
				served.WriteString(body)
			}

			// What the broker shows of the connection, then the connection lost.
			conns := rabbitmqctl(t, "-q", "--no-table-headers", "list_connections", "-p", guest.Path[1:],
				"user", "pid", "name", "client_properties")
			closed := 0
			for _, line := range strings.Split(conns, "\n") {
				if f := strings.Fields(line); len(f) > 2 && f[0] == user {
					rabbitmqctl(t, "close_connection", f[1], "audit")
					closed++
				}
			}
			if closed == 0 {
				t.Fatalf("no connection of %s in:\n%s", user, conns)
			}
			eventually(t, 15*time.Second, "never reconnected", func() bool {
				return metricValue(scrape(t, addr), "hypha_broker_reconnects_total") >= 1
			})
			if _, err := rpc.Call[float64](context.Background(), c.Proxy(calculator.Name), "add", rpc.Args(2, 2)); err != nil {
				t.Fatal(err)
			}
			served.WriteString(scrape(t, addr))

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				exited = true
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, out.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15s after SIGTERM:\n%s", out.String())
			}

			logs := out.String()
			// The capture holds what the audit is about: debug lines, the lost
			// connection, the node, spans.
			for _, want := range []string{"broker connection lost", "broker connection restored", "calculator.add",
				"127.0.0.1:5672", `"SpanContext"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("output lacks %q:\n%s", want, logs)
				}
			}
			if format == "json" && !strings.Contains(logs, `"level":"DEBUG"`) || format == "text" && !strings.Contains(logs, "level=DEBUG") {
				t.Errorf("no debug line in the output:\n%s", logs)
			}
			noSecret(t, "the output (logs and spans)", logs, password)
			noSecret(t, "/metrics, /healthz or /readyz", served.String(), password)
			noSecret(t, "the broker's list of connections", conns, password)
		})
	}
}

// withoutEnv is env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if !slices.Contains(names, name) {
			out = append(out, e)
		}
	}
	return out
}

// TestStartErrorsHideThePassword fails to start apps and clients in every
// way a broker URI can fail: a wrong password, no broker on the port, no
// such vhost, a list of nodes none of which lets the user in, and URIs
// malformed by an unencoded password. The password shows in no error, panic
// or debug log line.
func TestStartErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	_, password, uri := secretUser(t)
	wrong := strings.Replace(uri, password, password+"-wrong", 1)
	u, _ := url.Parse(uri)
	user := u.User.Username()
	down := "amqp://" + user + ":" + password + "@" + closedPort(t) + "/"
	noVhost := "amqp://" + user + ":" + password + "@" + u.Host + "/no-such-vhost-" + password[len("s3cr3t-"):]
	cases := []struct{ name, uri string }{
		{"wrong password", wrong},
		{"unreachable", down},
		{"bad vhost", noVhost},
		{"nodes", down + "," + wrong},
		{"unencoded slash", "amqp://" + user + ":" + password + "/x@" + u.Host + "/"},
		{"path", "amqp://" + user + ":12/" + password + "@" + u.Host + "/"},
		{"bad escape", "amqp://" + user + ":" + password + "%zz@" + u.Host + "/"},
		{"no scheme", "amqp//" + user + ":" + password + "@" + u.Host + "/"},
		{"no scheme in a list", down + "," + user + ":" + password + "@" + u.Host},
		{"space", "amqp://" + user + ":" + password + " x@" + u.Host + "/"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pw := password // the wrong password holds it too
			var logs syncBuffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var (
				mu   sync.Mutex
				errs []string
				wg   sync.WaitGroup
			)
			record := func(what string, f func() error) { // at once, as RabbitMQ is slow to refuse a login
				wg.Go(func() {
					var msg string
					defer func() {
						if r := recover(); r != nil {
							msg = fmt.Sprintf("%s panicked: %v", what, r)
						}
						mu.Lock()
						errs = append(errs, msg)
						mu.Unlock()
					}()
					if err := f(); err != nil {
						msg = what + ": " + err.Error()
					} else {
						t.Errorf("%s: no error", what)
					}
				})
			}
			reconnect := map[string]any{"INTERVAL_START": 0.05, "INTERVAL_MAX": 0.1, "MAX_ELAPSED": 0.5}
			record("framework", func() error {
				app, err := framework.New(framework.Logger(log),
					framework.ConfigValues(map[string]any{"AMQP_URI": tt.uri, "RECONNECT": reconnect}),
					framework.Service(calculator.Name, calculator.New))
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				err = app.Start(ctx)
				if err == nil {
					app.Stop(context.Background())
				}
				return err
			})
			// A client's and a dispatcher's connections without settings
			// take config's default RECONNECT: their context ends the wait.
			record("rpc client", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				c, err := hyphatest.Client(t, ctx, tt.uri, rpc.Config{Logger: log})
				if err == nil {
					c.Close()
				}
				return err
			})
			record("events dispatcher", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				b, err := transportdial.Dial(ctx, tt.uri, transportdial.Name("audit-dispatcher"), transportdial.Logger(log))
				if err == nil {
					events.NewDispatcher(b, events.DispatcherConfig{Source: "audit"})
					b.Close()
				}
				return err
			})
			record("dial.Dial", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				s := config.DefaultSettings()
				s.Reconnect = config.ReconnectPolicy{IntervalStart: 50 * time.Millisecond, IntervalMax: 100 * time.Millisecond,
					MaxElapsed: 500 * time.Millisecond}
				b, err := transportdial.Dial(ctx, tt.uri, transportdial.Settings(s), transportdial.Logger(log))
				if err == nil {
					b.Close()
				}
				return err
			})
			wg.Wait()
			all := strings.Join(errs, "\n")
			noSecret(t, "the errors", all, pw)
			noSecret(t, "the debug log", logs.String(), pw)
			if testing.Verbose() {
				t.Logf("errors:\n%s", all)
			}
		})
	}
}
