//go:build faults

package faults_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

const (
	blockedLog   = "hypha: broker blocked publishing"
	unblockedLog = "hypha: broker unblocked publishing"
	lostLog      = "hypha: broker connection lost"
)

// logLines returns the lines of logs whose message contains msg and that
// were logged with side=<side>.
func logLines(logs, msg, side string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, msg) && strings.Contains(line, " side="+side) {
			out = append(out, line)
		}
	}
	return out
}

// awaitLog polls logs until a line with msg from side appears, for at most timeout.
func awaitLog(logs *syncBuffer, msg, side string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if len(logLines(logs.String(), msg, side)) > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitGoroutines polls until at most n goroutines run, for at most
// timeout, and returns the last count.
func awaitGoroutines(n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		got := runtime.NumGoroutine()
		if got <= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blockedWatchdog restores the saved memory watermark and crashes the test
// binary, with every goroutine's stack, when a test hangs past after: a
// hung test must not leave the broker blocking every publisher on the
// machine until go test's own timeout kills it.
func blockedWatchdog(t *testing.T, after time.Duration) {
	dog := time.AfterFunc(after, func() {
		if w, err := restoreSavedWatermark(); err != nil {
			fmt.Printf("faults: restoring the memory watermark %s: %v\n", w, err)
		}
		debug.SetTraceback("all")
		panic(fmt.Sprintf("faults: %s still running after %s", t.Name(), after))
	})
	t.Cleanup(func() { dog.Stop() })
}

// TestBlockedConnection raises the broker's memory alarm, which blocks the
// connections that publish, and checks what README's Failure behaviour
// promises: publishes wait with one log line until the alarm lifts or
// their deadline passes; calls fail with rpc.ErrTimeout at their deadline
// and leave no goroutine behind; once the alarm lifts, waiting calls go
// through and new ones succeed.
//
// RabbitMQ blocks a connection (and sends it connection.blocked) only when
// it publishes while the alarm is on: the client's connection is blocked by
// its first call; the app's, which only consumes meanwhile, never is.
func TestBlockedConnection(t *testing.T) {
	uri := testbroker.URI(t)
	requireLoopback(t, uri)
	blockedWatchdog(t, 120*time.Second)

	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t0 := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs (the test started at %s):\n%s", t0.Format("15:04:05.000"), logs.String())
		}
	})

	// Heartbeats of 2 s: a blocked connection must not be taken for a
	// dead one while the alarm lasts (about 10 s, several heartbeat timeouts).
	hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{
			"AMQP_URI":     uri,
			"HEARTBEAT":    2,
			"GRACE_PERIOD": 3,
			"RECONNECT":    map[string]any{"INTERVAL_START": 0.1, "INTERVAL_MAX": 1},
		}),
		framework.Logger(log.With("side", "app")),
		framework.Service(calculator.Name, calculator.New),
	)
	startCtx := context.Background()
	// Closing a client whose connection is blocked hangs until the alarm
	// lifts (see TestCloseWhileBlocked); its cleanup runs after the
	// watermark is restored.
	client, err := openClient(startCtx, t, map[string]any{"AMQP_URI": uri, "HEARTBEAT": 2}, log.With("side", "client"))
	if err != nil {
		t.Fatal(err)
	}
	calc := client.Proxy(calculator.Name)
	add := func(deadline time.Duration) (float64, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		got, err := rpc.Call[float64](ctx, calc, "add", calculator.Operands{A: 1, B: 2})
		return got, time.Since(start), err
	}
	if _, _, err := add(5 * time.Second); err != nil {
		t.Fatal("first call, before the alarm:", err)
	}

	restore := raiseMemoryAlarm(t)
	defer restore()
	alarmAt := time.Now()
	t.Logf("+%s memory alarm on", alarmAt.Sub(t0).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	if n := len(logLines(logs.String(), blockedLog, "client")); n != 0 {
		t.Errorf("the client logged %q %d times before it published: RabbitMQ blocks a connection when it publishes", blockedLog, n)
	}

	// The first call publishes, which gets the client's connection
	// blocked: it waits until its deadline, then fails with ErrTimeout.
	if _, took, err := add(time.Second); !errors.Is(err, rpc.ErrTimeout) || took > 1500*time.Millisecond || took < 900*time.Millisecond {
		t.Errorf("the first call under the alarm, deadline 1 s: took %s, err %v; want rpc.ErrTimeout after 1 s (at most 1.5 s)", took, err)
	}
	if !awaitLog(&logs, blockedLog, "client", 5*time.Second) {
		t.Fatalf("the client did not log %q within 5 s of publishing under the alarm", blockedLog)
	}

	// 50 calls at once: each fails with ErrTimeout at its deadline, and
	// none leaves a goroutine behind.
	const calls = 50
	baseline := runtime.NumGoroutine()
	var wg sync.WaitGroup
	type outcome struct {
		took time.Duration
		err  error
	}
	results := make([]outcome, calls)
	fired := time.Now()
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, took, err := add(time.Second)
			results[i] = outcome{took, err}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	during := runtime.NumGoroutine()
	wg.Wait()
	allDone := time.Since(fired)
	after := awaitGoroutines(baseline+2, 3*time.Second)
	var longest time.Duration
	bad := map[string]int{}
	for _, r := range results {
		longest = max(longest, r.took)
		if !errors.Is(r.err, rpc.ErrTimeout) {
			bad[fmt.Sprint(r.err)]++
		}
	}
	t.Logf("%d concurrent calls under the alarm, deadline 1 s: all returned after %s, the longest took %s; goroutines %d before, %d while they waited, %d after",
		calls, allDone.Round(time.Millisecond), longest.Round(time.Millisecond), baseline, during, after)
	for e, n := range bad {
		t.Errorf("%d of %d calls under the alarm failed with %q, want rpc.ErrTimeout", n, calls, e)
	}
	if longest > 1500*time.Millisecond {
		t.Errorf("a call under the alarm took %s, want its 1 s deadline (at most 1.5 s)", longest)
	}
	if after > baseline+2 {
		t.Errorf("goroutines piled up: %d before the calls, %d 3 s after they returned", baseline, after)
	}

	// A call whose deadline outlasts the alarm waits for it to lift and
	// succeeds.
	type result struct {
		got  float64
		took time.Duration
		err  error
	}
	waiting := make(chan result, 1)
	go func() {
		got, took, err := add(30 * time.Second)
		waiting <- result{got, took, err}
	}()
	time.Sleep(time.Second)
	select {
	case r := <-waiting:
		t.Errorf("a call with a 30 s deadline returned while the alarm was on, after %s: %v, %v", r.took, r.got, r.err)
	default:
	}

	if n := len(logLines(logs.String(), blockedLog, "client")); n != 1 {
		t.Errorf("the client logged %q %d times, want once", blockedLog, n)
	}
	if n := len(logLines(logs.String(), blockedLog, "app")); n != 0 {
		t.Errorf("the app, which published nothing under the alarm, logged %q %d times; want 0", blockedLog, n)
	}
	// Keep the client blocked for several heartbeat timeouts.
	time.Sleep(time.Until(alarmAt.Add(10 * time.Second)))

	// Lift the alarm.
	liftedAt := time.Now()
	restore()
	t.Logf("+%s memory alarm off: the watermark was restored after %s under the alarm, which cleared %s later",
		liftedAt.Sub(t0).Round(time.Millisecond), liftedAt.Sub(alarmAt).Round(time.Millisecond), time.Since(liftedAt).Round(time.Millisecond))
	if !awaitLog(&logs, unblockedLog, "client", 5*time.Second) {
		t.Errorf("the client did not log %q within 5 s of the alarm clearing", unblockedLog)
	}
	select {
	case r := <-waiting:
		if r.err != nil || r.got != 3 {
			t.Errorf("the call waiting for the alarm to lift: %v, %v; want 3", r.got, r.err)
		} else {
			t.Logf("the call waiting for the alarm succeeded %s after the watermark was restored", time.Since(liftedAt).Round(time.Millisecond))
		}
	case <-time.After(5 * time.Second):
		t.Error("the call waiting for the alarm to lift did not return within 5 s of the alarm clearing")
	}
	var recovered time.Duration = -1
	for time.Since(liftedAt) < 10*time.Second {
		if got, _, err := add(time.Second); err == nil && got == 3 {
			recovered = time.Since(liftedAt)
			break
		}
	}
	if recovered < 0 {
		t.Error("no call succeeded within 10 s of restoring the watermark (the alarm had cleared)")
	} else {
		t.Logf("a new call succeeded %s after the watermark was restored", recovered.Round(time.Millisecond))
	}

	out := logs.String()
	blocked, unblocked := logLines(out, blockedLog, "client"), logLines(out, unblockedLog, "client")
	if len(blocked) != 1 || len(unblocked) != 1 {
		t.Errorf("the client logged %q %d times and %q %d times; want each once", blockedLog, len(blocked), unblockedLog, len(unblocked))
	} else if strings.Index(out, unblocked[0]) < strings.Index(out, blocked[0]) {
		t.Errorf("the client logged %q before %q", unblockedLog, blockedLog)
	}
	if n := len(logLines(out, unblockedLog, "app")); n != 0 {
		t.Errorf("the app logged %q %d times; it was never blocked", unblockedLog, n)
	}
	if lost := logLines(out, lostLog, "client"); len(lost) > 0 {
		t.Errorf("the client's connection dropped while blocked (heartbeats?):\n%s", strings.Join(lost, "\n"))
	}
	if lost := logLines(out, lostLog, "app"); len(lost) > 0 {
		t.Errorf("the app's connection dropped during the alarm:\n%s", strings.Join(lost, "\n"))
	}
}

// napper is a service whose nap method returns once release is closed, so
// that it replies (publishes) only after the test raised the alarm.
type napper struct{ release <-chan struct{} }

func (n *napper) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "nap", func(ctx context.Context, _ struct{}) (string, error) {
		select {
		case <-n.release:
			return "awake", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
}

// TestCloseWhileBlocked checks that a client and an app whose connections
// the broker blocked close within a bound, as they do while disconnected:
// RabbitMQ does not read from a blocked connection, so the close-ok and
// cancel-ok replies never come while the alarm lasts.
func TestCloseWhileBlocked(t *testing.T) {
	uri := testbroker.URI(t)
	requireLoopback(t, uri)
	blockedWatchdog(t, 120*time.Second)

	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	const grace = 3 * time.Second
	release := make(chan struct{})
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": uri, "GRACE_PERIOD": grace.Seconds()}),
		framework.Logger(log.With("side", "app")),
		framework.Service("napper", func() *napper { return &napper{release: release} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Closing it closes the client, then its connection, as a program's
	// shutdown does.
	client, err := openClient(ctx, t, map[string]any{"AMQP_URI": uri}, log.With("side", "client"))
	if err != nil {
		t.Fatal(err)
	}
	var stopApp, closeClient sync.Once
	stopIt := func() error {
		var err error
		stopApp.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = app.Stop(ctx)
		})
		return err
	}
	closeIt := func() error {
		var err error
		closeClient.Do(func() { err = client.Close() })
		return err
	}
	t.Cleanup(func() { _ = stopIt(); _ = closeIt() })
	nap := client.Proxy("napper").CallAsync(context.Background(), "nap", struct{}{})

	restore := raiseMemoryAlarm(t)
	defer restore()
	// The app replies under the alarm, the client calls: both get blocked.
	close(release)
	if !awaitLog(&logs, blockedLog, "app", 5*time.Second) {
		t.Fatalf("the app was not blocked within 5 s of replying under the alarm")
	}
	callCtx, callCancel := context.WithTimeout(context.Background(), time.Second)
	_ = client.Proxy("napper").Call(callCtx, "nap", struct{}{}, nil)
	callCancel()
	if !awaitLog(&logs, blockedLog, "client", 5*time.Second) {
		t.Fatalf("the client was not blocked within 5 s of calling under the alarm")
	}

	bounded := func(name string, bound time.Duration, f func() error) <-chan struct{} {
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			err := f()
			t.Logf("%s returned after %s: %v", name, time.Since(start).Round(time.Millisecond), err)
		}()
		select {
		case <-done:
		case <-time.After(bound):
			t.Errorf("%s while blocked: still running after %s", name, bound)
		}
		return done
	}
	clientDone := bounded("client.Close", 5*time.Second, closeIt)
	appDone := bounded("app.Stop", grace+2*time.Second, stopIt)

	restore()
	for name, done := range map[string]<-chan struct{}{"client.Close": clientDone, "app.Stop": appDone} {
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("%s still running 15 s after the alarm was lifted", name)
		}
	}
	_ = nap.Result(nil)
}
