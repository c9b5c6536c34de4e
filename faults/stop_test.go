//go:build faults

package faults_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// TestStopWhileBrokerDown checks README's "Stopping while disconnected
// returns promptly" and "A service started while the broker is down waits
// for it": with the broker app stopped, app.Stop and client.Close return
// within GRACE_PERIOD + 2 s and leave no goroutine behind; an app started
// meanwhile does not fail, connects when the broker is back and serves a
// call within 5 s of await_startup returning.
func TestStopWhileBrokerDown(t *testing.T) {
	uri := testbroker.URI(t)
	requireLoopback(t, uri)
	const (
		grace        = 3 * time.Second
		stopBound    = grace + 2*time.Second
		serviceBound = 5 * time.Second
	)
	dog := time.AfterFunc(150*time.Second, func() {
		ensureBrokerApp()
		debug.SetTraceback("all")
		panic("faults: TestStopWhileBrokerDown still running after 150s")
	})
	t.Cleanup(func() { dog.Stop() })
	// Goroutines that run now (earlier tests', the runtime's) are not this test's.
	ignore := goleak.IgnoreCurrent()

	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t0 := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs (the test started at %s):\n%s", t0.Format("15:04:05.000"), logs.String())
		}
	})
	// stopper stops an app once, for the test and for its cleanup.
	type stopper struct {
		once sync.Once
		err  error
		took time.Duration
	}
	newApp := func(side string) (*framework.App, func() (time.Duration, error)) {
		app, err := framework.New(
			framework.ConfigValues(map[string]any{
				"AMQP_URI":     uri,
				"GRACE_PERIOD": grace.Seconds(),
				"HEARTBEAT":    5,
				// Reconnect at least every second, as the soak does, so
				// that the app is back within the bound below.
				"RECONNECT": map[string]any{"INTERVAL_START": 0.1, "INTERVAL_MAX": 1},
			}),
			framework.Logger(log.With("side", side)),
			framework.Service(calculator.Name, calculator.New),
			framework.Service(users.Name, users.New),
		)
		if err != nil {
			t.Fatal(err)
		}
		s := &stopper{}
		stop := func() (time.Duration, error) {
			s.once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				start := time.Now()
				s.err = app.Stop(ctx)
				s.took = time.Since(start)
			})
			return s.took, s.err
		}
		t.Cleanup(func() { _, _ = stop() })
		return app, stop
	}
	score := func(ctx context.Context, c ownedClient) error {
		got, err := rpc.Call[users.Score](ctx, c.Proxy(users.Name), "calculate_user_score",
			users.ScoreIn{UserID: 7, BaseScore: 6, Multiplier: 7})
		if err == nil && got.Score != 42 {
			err = fmt.Errorf("score %v, want 42", got.Score)
		}
		return err
	}

	app, stopApp := newApp("app")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := openClient(ctx, t, map[string]any{"AMQP_URI": uri, "HEARTBEAT": 5}, log.With("side", "client"))
	if err != nil {
		t.Fatal(err)
	}
	if err := score(ctx, client); err != nil {
		t.Fatal("calling user_service (which calls calculator) before the broker stops:", err)
	}

	// Stop the broker app; it is started again on the way out, whatever happens.
	var restartOnce sync.Once
	var back time.Time
	restart := func() {
		restartOnce.Do(func() {
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
	stopped := time.Now()
	t.Logf("+%s broker app stopped", stopped.Sub(t0).Round(time.Millisecond))
	for _, side := range []string{"app", "client"} {
		if !awaitLog(&logs, lostLog, side, 10*time.Second) {
			t.Errorf("the %s did not log %q within 10 s of stop_app", side, lostLog)
		}
	}

	// Stop the app and close the client while the broker is down.
	if took, err := stopApp(); err != nil || took > stopBound {
		t.Errorf("app.Stop with the broker down: took %s, err %v; want nil within GRACE_PERIOD + 2 s = %s", took, err, stopBound)
	} else {
		t.Logf("app.Stop with the broker down returned after %s", took.Round(time.Millisecond))
	}
	start := time.Now()
	err = client.Close()
	if took := time.Since(start); err != nil || took > stopBound {
		t.Errorf("client.Close with the broker down: took %s, err %v; want nil within %s", took, err, stopBound)
	} else {
		t.Logf("client.Close with the broker down returned after %s", took.Round(time.Millisecond))
	}
	if err := score(context.Background(), client); !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("a call on the closed client: %v, want rpc.ErrClosed", err)
	}
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after app.Stop and client.Close with the broker down:\n%v", err)
	}

	// A fresh app started while the broker is down waits for it.
	app2, stopApp2 := newApp("app2")
	startCtx, cancelStart := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStart()
	started, startDone := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(startDone)
		started <- app2.Start(startCtx)
	}()
	// Whatever happens, the start ends before the test does.
	t.Cleanup(func() {
		cancelStart()
		select {
		case <-startDone:
		case <-time.After(10 * time.Second):
			t.Error("app2.Start still running 10 s after its context was cancelled")
		}
	})
	select {
	case err := <-started:
		t.Fatalf("app2.Start with the broker down returned at once: %v; want it to wait for the broker", err)
	case <-time.After(2 * time.Second):
	}

	restart()
	t.Logf("+%s broker app back (await_startup returned); it was down %s",
		back.Sub(t0).Round(time.Millisecond), back.Sub(stopped).Round(time.Millisecond))
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("app2.Start after the broker came back: %v", err)
		}
		t.Logf("app2.Start returned %s after await_startup", time.Since(back).Round(time.Millisecond))
	case <-time.After(serviceBound):
		t.Fatalf("app2.Start still waiting %s after await_startup returned", serviceBound)
	}
	// app2 serves a call (user_service calling calculator) soon after.
	callCtx, cancelCall := context.WithDeadline(context.Background(), back.Add(serviceBound))
	defer cancelCall()
	client2, err := openClient(callCtx, t, map[string]any{"AMQP_URI": uri, "HEARTBEAT": 5}, log.With("side", "client2"))
	if err != nil {
		t.Fatalf("dialling the broker within %s of await_startup: %v", serviceBound, err)
	}
	var lastErr error
	for {
		if lastErr = score(callCtx, client2); lastErr == nil {
			t.Logf("app2 served a call %s after await_startup returned", time.Since(back).Round(time.Millisecond))
			break
		}
		if callCtx.Err() != nil {
			t.Fatalf("app2 did not serve a call within %s of await_startup returning: %v", serviceBound, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Stopping with the broker up is prompt too, and leaves nothing behind.
	if err := client2.Close(); err != nil {
		t.Error("closing client2:", err)
	}
	if took, err := stopApp2(); err != nil || took > stopBound {
		t.Errorf("app2.Stop: took %s, err %v; want nil within %s", took, err, stopBound)
	}
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after stopping app2 and client2:\n%v", err)
	}
}
