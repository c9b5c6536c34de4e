//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
)

// awaitTimeout bounds rabbitmqctl start_app and await_startup.
const awaitTimeout = 120 * time.Second

func TestMain(m *testing.M) {
	// A run that died while the broker app was stopped (killed, or a test
	// timeout) leaves it stopped: start it again before anything else.
	ensureBrokerApp()
	testbroker.Main(m)
}

// rabbitmqctl runs rabbitmqctl with args, bounded by timeout, and returns its
// combined output.
func rabbitmqctl(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("rabbitmqctl %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return string(out), err
}

// startBrokerApp runs rabbitmqctl start_app, then await_startup, each bounded
// by awaitTimeout.
func startBrokerApp() error {
	if out, err := rabbitmqctl(awaitTimeout, "start_app"); err != nil {
		return fmt.Errorf("rabbitmqctl start_app: %v\n%s", err, out)
	}
	if out, err := rabbitmqctl(awaitTimeout, "await_startup"); err != nil {
		return fmt.Errorf("rabbitmqctl await_startup: %v\n%s", err, out)
	}
	return nil
}

// ensureBrokerApp starts the broker app when the node runs but the AMQP port
// does not answer. It does nothing when RabbitMQ is not installed: the tests
// skip (or fail under CI) through testbroker then.
func ensureBrokerApp() {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil || amqpAnswers() {
		return
	}
	if _, err := rabbitmqctl(10*time.Second, "ping"); err != nil {
		return // no node to start the app on
	}
	fmt.Fprintln(os.Stderr, "faults: the broker app was not running; starting it")
	if err := startBrokerApp(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
	}
}

func amqpAnswers() bool {
	addr := os.Getenv("HYPHA_TEST_AMQP_HOST")
	if addr == "" {
		addr = "127.0.0.1:5672"
	} else if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "5672")
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stopBrokerApp stops the RabbitMQ app (rabbitmqctl stop_app), keeps it
// down for down, and starts it again (start_app, then await_startup). It
// returns when the app stopped and when it was back.
//
// The restart always happens: on the way out of this function (also when it
// fails or panics) and, as a backstop, in t.Cleanup. The vhost survives the
// restart: it is durable metadata.
func stopBrokerApp(t *testing.T, down time.Duration) (stopped, back time.Time) {
	t.Helper()
	var once sync.Once
	restart := func() {
		once.Do(func() {
			if err := startBrokerApp(); err != nil {
				t.Errorf("restarting the broker app: %v", err)
			}
			back = time.Now()
		})
	}
	t.Cleanup(restart)
	defer restart()
	if out, err := rabbitmqctl(awaitTimeout, "stop_app"); err != nil {
		t.Fatalf("rabbitmqctl stop_app: %v\n%s", err, out)
	}
	stopped = time.Now()
	time.Sleep(down)
	restart()
	return stopped, back
}
