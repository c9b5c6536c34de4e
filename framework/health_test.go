package framework_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// get fetches http://addr/path and returns its status and body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// freeAddress is a loopback host:port that nothing listens on now.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond every 50 ms until it holds, failing t after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHealthEndpointsPlacement(t *testing.T) {
	metricsOn := map[string]any{"METRICS": map[string]any{"ADDRESS": "127.0.0.1:0"}}
	t.Run("with metrics", func(t *testing.T) {
		app := hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(metricsOn), framework.Service(calculator.Name, calculator.New))
		if app.HealthAddress() == "" || app.HealthAddress() != app.MetricsAddress() {
			t.Fatalf("health at %q, metrics at %q: want one listener", app.HealthAddress(), app.MetricsAddress())
		}
		if code, body := get(t, app.HealthAddress(), "/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz = %d %q", code, body)
		}
		if code, body := get(t, app.HealthAddress(), "/readyz"); code != http.StatusOK || body != "ready\n" {
			t.Fatalf("/readyz = %d %q", code, body)
		}
	})
	t.Run("own address", func(t *testing.T) {
		app := hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(metricsOn),
			framework.ConfigValues(map[string]any{"HEALTH.ADDRESS": freeAddress(t)}),
			framework.Service(calculator.Name, calculator.New))
		if app.HealthAddress() == "" || app.HealthAddress() == app.MetricsAddress() {
			t.Fatalf("health at %q, metrics at %q: want two listeners", app.HealthAddress(), app.MetricsAddress())
		}
		if code, _ := get(t, app.HealthAddress(), "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz = %d", code)
		}
		if code, _ := get(t, app.HealthAddress(), "/metrics"); code != http.StatusNotFound {
			t.Fatalf("/metrics on the health listener = %d, want 404", code)
		}
	})
	t.Run("health without metrics", func(t *testing.T) {
		app := hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(map[string]any{"HEALTH.ADDRESS": "127.0.0.1:0"}),
			framework.Service(calculator.Name, calculator.New))
		if app.MetricsAddress() != "" || app.HealthAddress() == "" {
			t.Fatalf("health at %q, metrics at %q", app.HealthAddress(), app.MetricsAddress())
		}
	})
	t.Run("neither", func(t *testing.T) {
		app := hyphatest.Run(t, testbroker.URI(t), framework.Service(calculator.Name, calculator.New))
		if app.HealthAddress() != "" {
			t.Fatalf("health at %q, want none", app.HealthAddress())
		}
	})
}

func TestNotReadyWhileStopping(t *testing.T) {
	s := &slow{started: make(chan struct{})}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 5, "HEALTH.ADDRESS": "127.0.0.1:0"}),
		framework.Logger(quiet),
		framework.Service("slow", func() *slow { return s }),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := app.HealthAddress()
	reply := dial(t).Proxy("slow").CallAsync(context.Background(), "work", map[string]any{"ms": 1500})
	<-s.started
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	eventually(t, time.Second, "/readyz still 200 while stopping", func() bool {
		code, body := get(t, addr, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "stopping")
	})
	if code, _ := get(t, addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while stopping = %d", code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := reply.Result(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-app.Done():
	default:
		t.Fatal("Done is open after Stop")
	}
	if app.Err() != nil {
		t.Fatalf("Err = %v after a Stop from outside", app.Err())
	}
}

// brokerUser creates a user with a random name and password, allowed on the
// package's vhost, deleted when the test ends; it returns the name and the
// AMQP URI that logs in as it.
func brokerUser(t *testing.T) (user, uri string) {
	t.Helper()
	vhost := testbroker.VHost(t)
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	user, pass := "hypha-test-"+hex.EncodeToString(b), "pw-"+hex.EncodeToString(b)
	rabbitmqctl(t, "add_user", user, pass)
	t.Cleanup(func() { _, _ = testbroker.Rabbitmqctl("delete_user", user) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	return user, strings.Replace(testbroker.URI(t), "guest:guest@", user+":"+pass+"@", 1)
}

func rabbitmqctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := testbroker.Rabbitmqctl(args...)
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// revoke changes user's password and closes its connections in the package's
// vhost (and nowhere else), as an operator rotating credentials would.
func revoke(t *testing.T, user string) {
	t.Helper()
	rabbitmqctl(t, "change_password", user, "rotated-"+user)
	out := rabbitmqctl(t, "-q", "--no-table-headers", "list_connections", "-p", testbroker.VHost(t), "user", "pid")
	closed := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == user {
			rabbitmqctl(t, "close_connection", f[1], "credentials rotated")
			closed++
		}
	}
	if closed == 0 {
		t.Fatalf("no connection of %s to close in:\n%s", user, out)
	}
}

func TestGivesUpWhenTheLoginIsRefused(t *testing.T) {
	user, uri := brokerUser(t)
	var logs syncBuffer
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"AMQP_URI": uri, "HEALTH.ADDRESS": "127.0.0.1:0",
			"RECONNECT": map[string]any{"INTERVAL_START": 0.1, "INTERVAL_MAX": 0.5, "MAX_ELAPSED": 3}}),
		framework.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
		framework.Service(calculator.Name, calculator.New),
	)
	revoke(t, user)
	revokedAt := time.Now()
	eventually(t, 2*time.Second, "/readyz still 200 with the login refused", func() bool {
		code, body := get(t, app.HealthAddress(), "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not connected")
	})
	select {
	case <-app.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("still running %v after the password changed; logs:\n%s", time.Since(revokedAt), logs.String())
	}
	if err := app.Err(); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "MAX_ELAPSED 3s") {
		t.Fatalf("Err = %v, want the refused login and MAX_ELAPSED", err)
	}
	out := logs.String()
	if n := strings.Count(out, "cannot be restored"); n != 1 {
		t.Errorf("%d lines say why the app stopped, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "level=ERROR msg=\"hypha: the broker refused the connection; retrying\"") {
		t.Errorf("refusals are not logged at error:\n%s", out)
	}
}

func TestRecoversWhenTheLoginIsAllowedAgain(t *testing.T) {
	for _, maxElapsed := range []float64{30, 0} { // 0: forever
		t.Run(fmt.Sprintf("MAX_ELAPSED %v", maxElapsed), func(t *testing.T) {
			user, uri := brokerUser(t)
			app := hyphatest.Run(t, testbroker.URI(t),
				framework.ConfigValues(map[string]any{"AMQP_URI": uri, "HEALTH.ADDRESS": "127.0.0.1:0",
					"RECONNECT": map[string]any{"INTERVAL_START": 0.1, "INTERVAL_MAX": 0.5, "MAX_ELAPSED": maxElapsed}}),
				framework.Service(calculator.Name, calculator.New),
			)
			revoke(t, user)
			eventually(t, 2*time.Second, "/readyz still 200 with the login refused", func() bool {
				code, _ := get(t, app.HealthAddress(), "/readyz")
				return code == http.StatusServiceUnavailable
			})
			time.Sleep(2 * time.Second) // several refusals, all retried
			pass := strings.TrimPrefix(strings.Split(strings.Split(uri, "@")[0], "//")[1], user+":")
			rabbitmqctl(t, "change_password", user, pass)
			eventually(t, 10*time.Second, "/readyz never 200 again", func() bool {
				code, _ := get(t, app.HealthAddress(), "/readyz")
				return code == http.StatusOK
			})
			if got, err := rpc.Call[float64](context.Background(), dial(t).Proxy(calculator.Name), "add", rpc.Args(2, 3)); err != nil || got != 5 {
				t.Fatalf("add after recovering = %v, %v", got, err)
			}
			select {
			case <-app.Done():
				t.Fatalf("the app stopped: %v", app.Err())
			default:
			}
		})
	}
}

func TestRunExitsNonZeroWhenItGivesUp(t *testing.T) {
	user, uri := brokerUser(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", childLogsEnv+"=1", "HYPHA_AMQP_URI="+uri, "HYPHA_CONFIG=",
		"HYPHA_RECONNECT__MAX_ELAPSED=2", "HYPHA_RECONNECT__INTERVAL_MAX=0.5")
	cmd.Dir = t.TempDir()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c := dial(t)
	eventually(t, 15*time.Second, "the service never answered", func() bool {
		_, err := rpc.Call[float64](context.Background(), c.Proxy(calculator.Name), "add", rpc.Args(1, 1))
		return err == nil
	})
	revoke(t, user)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("err = %v, want exit status 1; output:\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 20s after the password changed; output:\n%s", out.String())
	}
	if n := strings.Count(out.String(), "cannot be restored"); n != 1 {
		t.Fatalf("%d lines say why, want 1; output:\n%s", n, out.String())
	}
}
