//go:build faults

package faults_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
)

// awaitTimeout bounds rabbitmqctl start_app and await_startup.
const awaitTimeout = 120 * time.Second

// The fault tests run on a node of their own, started by scripts/cluster.sh
// ("start solo"): they stop it, start it and raise its memory alarm, which
// must never happen to the machine's default node, shared by every other test.
const (
	soloNode = "hypha-solo@localhost"
	soloAddr = "127.0.0.1:5684"
)

// clusterScript is scripts/cluster.sh, from this package's directory.
const clusterScript = "../scripts/cluster.sh"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// The nodes, their ports and files are the machine's, not this
	// checkout's: another run of these tests (from another checkout) waits.
	unlock, err := lockMachine(6 * time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer unlock()
	// testbroker makes the package's vhost on the solo node.
	os.Setenv("HYPHA_TEST_AMQP_HOST", soloAddr)
	os.Setenv("HYPHA_TEST_RABBITMQ_NODE", soloNode)
	// The solo node also listens for TLS, with certificates made here.
	if dir, err := makeCerts(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: making TLS certificates: %v\n", err)
	} else {
		tlsDir = dir
		defer os.RemoveAll(dir)
		os.Setenv("HYPHA_CLUSTER_TLS_DIR", dir)
	}
	// A node left by an interrupted run may have other files: start afresh.
	if out, err := cluster(2*time.Minute, "stop", "solo"); err != nil {
		fmt.Fprintf(os.Stderr, "faults: stopping a solo node left running: %v\n%s", err, out)
	}
	if out, err := cluster(5*time.Minute, "start", "solo"); err != nil {
		// testbroker then skips the tests, or fails them under CI.
		fmt.Fprintf(os.Stderr, "faults: starting the solo node: %v\n%s", err, out)
	} else {
		defer func() {
			if out, err := cluster(2*time.Minute, "stop", "solo"); err != nil {
				fmt.Fprintf(os.Stderr, "faults: stopping the solo node: %v\n%s", err, out)
			}
		}()
		// A run that died while the broker app was stopped (killed, or a
		// test timeout) left it stopped: start it again first.
		ensureBrokerApp()
	}
	// The failover test's cluster boots while the other tests run (it
	// takes 15-35 s), so that it is ready by the time that test runs.
	if willRun("TestClusterFailover") {
		go clusterOnce.Do(bootCluster)
	}
	defer stopCluster()
	return testbroker.RunMain(m)
}

// lockFile serialises the runs of the fault tests on this machine.
var lockFile = filepath.Join(os.TempDir(), "hypha-faults.lock")

// lockMachine takes lockFile, waiting up to wait for another run to end; the
// lock goes with the process, however it ends.
func lockMachine(wait time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDONLY, 0o666) // flock needs no write access
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for said := false; ; said = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another run of the fault tests holds %s (%v); waited %s", lockFile, err, wait)
		}
		if !said {
			fmt.Fprintf(os.Stderr, "faults: another run of the fault tests holds %s; waiting\n", lockFile)
		}
		time.Sleep(time.Second)
	}
}

// cluster runs scripts/cluster.sh with args, bounded by timeout.
func cluster(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", append([]string{clusterScript}, args...)...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("cluster.sh %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return string(out), err
}

// rabbitmqctl runs rabbitmqctl with args on the solo node, bounded by
// timeout, and returns its combined output.
func rabbitmqctl(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-n", soloNode}, args...)...).CombinedOutput()
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

// ensureBrokerApp starts the solo node's broker app when the node runs but
// its AMQP port does not answer.
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
	c, err := net.DialTimeout("tcp", soloAddr, 2*time.Second)
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

// clusterStarted is set once a test started the 3-node cluster of
// scripts/cluster.sh; TestMain stops it after the tests.
var (
	clusterMu      sync.Mutex
	clusterOnce    sync.Once
	clusterErr     error
	clusterStarted bool
)

// startCluster starts the 3-node cluster (hypha-c1..3 on 5681-5683) once
// for the whole run, failing t when it cannot.
func startCluster(t *testing.T) {
	t.Helper()
	clusterOnce.Do(bootCluster)
	if clusterErr != nil {
		t.Fatalf("starting the cluster: %v", clusterErr)
	}
}

func bootCluster() {
	clusterMu.Lock()
	clusterStarted = true // stop what may have started, even on failure
	clusterMu.Unlock()
	out, err := cluster(5*time.Minute, "start")
	if err != nil {
		clusterErr = fmt.Errorf("%v\n%s", err, out)
	}
}

// willRun reports whether -test.run selects the test named name.
func willRun(name string) bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	re, err := regexp.Compile(strings.Split(f.Value.String(), "/")[0])
	return err == nil && re.MatchString(name)
}

func stopCluster() {
	clusterOnce.Do(func() {}) // waits for a boot under way
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if !clusterStarted {
		return
	}
	clusterStarted = false
	if out, err := cluster(2*time.Minute, "stop"); err != nil {
		fmt.Fprintf(os.Stderr, "faults: stopping the cluster: %v\n%s", err, out)
	}
}
