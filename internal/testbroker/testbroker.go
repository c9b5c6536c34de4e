// Package testbroker is a shared test helper that gives each test package
// its own RabbitMQ virtual host on the local broker.
//
// A test package opts in with
//
//	func TestMain(m *testing.M) { testbroker.Main(m) }
//
// and its tests connect to [URI]. Main creates a vhost named
// hypha-test-<pkg>-<random hex> (so packages that go test runs in parallel
// never share queues or exchanges), runs the tests, checks for leaked
// goroutines with goleak and deletes the vhost again.
//
// When RabbitMQ does not answer, tests that call [URI] or [VHost] are
// skipped, except under CI=true where they fail: CI must never silently
// skip broker tests. scripts/broker.sh starts (or installs) the broker.
// The broker address defaults to 127.0.0.1:5672 and can be overridden with
// HYPHA_TEST_AMQP_HOST (host or host:port); vhosts are always managed by
// the local rabbitmqctl, on the node HYPHA_TEST_RABBITMQ_NODE names when it
// is set (the fault tests use a node of scripts/cluster.sh that way).
package testbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Package state, set once by Main before any test runs.
var (
	mainCalled  bool
	vhost       string // empty when the broker is unavailable
	unavailable string // why the broker cannot be used, when vhost is empty
)

// Main runs the tests of m inside a fresh vhost and exits the process. Use
// it as the whole body of TestMain. When all tests pass it also fails the
// run if goroutines leaked (opts are passed to goleak.Find). The vhost is
// deleted whether the tests pass or fail, but not when the test binary
// panics or is killed (for example by go test -timeout).
func Main(m *testing.M, opts ...goleak.Option) {
	os.Exit(run(m, opts))
}

// RunMain is Main returning the exit code instead of exiting, for a
// TestMain that has more to clean up after the tests.
func RunMain(m *testing.M, opts ...goleak.Option) int {
	return run(m, opts)
}

func run(m *testing.M, opts []goleak.Option) int {
	mainCalled = true
	if fuzzWorker() {
		// go test -fuzz runs targets in worker processes it may interrupt
		// at any time, which would strand a vhost; fuzz targets need none.
		unavailable = "a fuzz worker has no broker"
		return m.Run()
	}
	if err := setup(); err != nil {
		unavailable = err.Error()
	} else {
		defer func() {
			if out, err := Rabbitmqctl("delete_vhost", vhost); err != nil {
				fmt.Fprintf(os.Stderr, "testbroker: delete_vhost %s: %v\n%s", vhost, err, out)
			}
		}()
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "testbroker: goroutine leak after tests passed:\n%v\n", err)
			code = 1
		}
	}
	return code
}

// setup checks that the broker answers and creates the package's vhost.
func setup() error {
	addr := hostPort()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return fmt.Errorf("RabbitMQ is not answering on %s (%v); run scripts/broker.sh", addr, err)
	}
	conn.Close()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	name := "hypha-test-" + pkgName() + "-" + hex.EncodeToString(b)
	if out, err := Rabbitmqctl("add_vhost", name); err != nil {
		return fmt.Errorf("RabbitMQ answers on %s but rabbitmqctl add_vhost failed (run the tests as root or scripts/broker.sh): %v\n%s", addr, err, out)
	}
	if out, err := Rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*"); err != nil {
		_, _ = Rabbitmqctl("delete_vhost", name)
		return fmt.Errorf("rabbitmqctl set_permissions on %s failed: %v\n%s", name, err, out)
	}
	vhost = name
	return nil
}

// fuzzWorker reports whether this process is a worker of go test -fuzz.
func fuzzWorker() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.fuzzworker" || strings.HasPrefix(a, "-test.fuzzworker=") {
			return true
		}
	}
	return false
}

// hostPort is the broker address: HYPHA_TEST_AMQP_HOST or 127.0.0.1:5672.
func hostPort() string {
	h := os.Getenv("HYPHA_TEST_AMQP_HOST")
	if h == "" {
		return "127.0.0.1:5672"
	}
	if _, _, err := net.SplitHostPort(h); err != nil {
		return net.JoinHostPort(h, "5672")
	}
	return h
}

// pkgName derives a vhost-safe package name from the test binary's name.
func pkgName() string {
	base := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	base = strings.TrimSuffix(base, ".test")
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, base)
	if name == "" {
		return "pkg"
	}
	return name
}

// ciMode reports whether CI is set to a true value; broker tests must then
// fail instead of being skipped.
func ciMode() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// need skips (or under CI fails) t when the package's vhost is unusable.
func need(t testing.TB) {
	t.Helper()
	switch {
	case !mainCalled:
		t.Fatal("testbroker: call testbroker.Main(m) from the package's TestMain")
	case vhost != "":
	case ciMode():
		t.Fatal(unavailable)
	default:
		t.Skip(unavailable)
	}
}

// URI returns the AMQP URI of the package's vhost, as guest/guest. When
// RabbitMQ is unavailable it skips t, or fails t when CI=true.
func URI(t testing.TB) string {
	t.Helper()
	need(t)
	return "amqp://guest:guest@" + hostPort() + "/" + url.PathEscape(vhost)
}

// VHost returns the name of the package's vhost, skipping or failing t
// like [URI] when RabbitMQ is unavailable.
func VHost(t testing.TB) string {
	t.Helper()
	need(t)
	return vhost
}

// Rabbitmqctl runs rabbitmqctl with args, bounded by a 60 s timeout, and
// returns its combined stdout and stderr. It talks to the node named by
// HYPHA_TEST_RABBITMQ_NODE when that is set (a node of scripts/cluster.sh,
// with HYPHA_TEST_AMQP_HOST its AMQP address), else to the default node.
func Rabbitmqctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if node := os.Getenv("HYPHA_TEST_RABBITMQ_NODE"); node != "" {
		args = append([]string{"-n", node}, args...)
	}
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("rabbitmqctl %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return string(out), err
}

// CloseConnections makes the broker close every client connection in the
// package's vhost (and only there), as a broker restart or an operator
// would. It fails t if rabbitmqctl fails.
func CloseConnections(t testing.TB) {
	t.Helper()
	v := VHost(t)
	if out, err := Rabbitmqctl("close_all_connections", "-p", v, "hypha test"); err != nil {
		t.Fatalf("testbroker: close_all_connections -p %s: %v\n%s", v, err, out)
	}
}
