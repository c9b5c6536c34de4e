package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
)

func init() {
	cliTests["services"] = testServices
	cliTests["events"] = testEvents
	cliTests["dlq"] = testDLQ
	cliTests["bench"] = testBench
}

func testServices(t *testing.T) {
	// The management API's counts lag by its statistics interval (5 s).
	var r result
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		r = hypha(t, "", "services")
		if strings.Contains(r.stdout, "calculator                       1       0       0") || time.Now().After(deadline) {
			break
		}
	}
	r.want(t, exitOK, "SERVICE", "calculator                       1       0       0", "mailer", "user_service")
	r.wantErr(t, "source: RabbitMQ management API at http://guest:****@127.0.0.1:15672")

	// No management API there: the named services are declared passively.
	r = hypha(t, "", "services", "calculator", "nobody", "--management", "http://127.0.0.1:1", "--json")
	r.want(t, exitOK)
	r.wantErr(t, "source: passive declare of rpc-<service>")
	var rows []serviceRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !rows[0].Running || rows[0].Instances != 1 || rows[1].Running {
		t.Errorf("rows = %+v, want calculator running once and nobody not found", rows)
	}

	r = hypha(t, "", "services", "--management", "http://127.0.0.1:1")
	r.want(t, exitError)
	r.wantErr(t, "the management API does not answer", "name the services")
}

// listen starts `hypha events listen` and waits until its queue is bound.
func listen(t *testing.T, args ...string) (wait func() result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, binary, append([]string{"--broker", testbroker.URI(t), "events", "listen"}, args...)...)
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errText := make(chan string, 1)
	ready := make(chan bool, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "listening on ") {
				ready <- true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		errText <- all.String()
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatalf("events listen did not start:\n%s", <-errText)
	}
	return func() result {
		defer cancel()
		err := cmd.Wait()
		r := result{stdout: out.String(), stderr: <-errText}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
}

func testEvents(t *testing.T) {
	wait := listen(t, "orders.order_created", "-v", "--count", "1")
	r := hypha(t, "", "events", "dispatch", "orders", "order_created", `{"id": "o-cli", "item": "tea", "quantity": 2}`,
		"--context", "user_id=ann")
	r.want(t, exitOK)
	r.wantErr(t, "dispatched orders.order_created")
	r = wait()
	r.want(t, exitOK)
	var ev listenedEvent
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	if ev.Source != "orders" || ev.EventType != "order_created" || string(ev.Payload) != `{"id":"o-cli","item":"tea","quantity":2}` ||
		ev.MessageID == "" || ev.Headers["nameko.user_id"] != "ann" {
		t.Errorf("event = %+v", ev)
	}
	// The mailer got it too: listening took nothing from the handlers' queues.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = hypha(t, "", "call", "mailer.sent")
		if strings.Contains(r.stdout, "o-cli") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.want(t, exitOK, `"order_id":"o-cli"`)

	// Stdin payload, stopped by --timeout with nothing to print.
	r = hypha(t, `{"id": "x"}`, "events", "dispatch", "orders", "order_cancelled")
	r.want(t, exitOK)
	r = hypha(t, "", "events", "listen", "nobody.nothing", "--timeout", "200ms")
	r.want(t, exitOK)
	if r.stdout != "" {
		t.Errorf("listen printed %q with no events", r.stdout)
	}
	r = hypha(t, "", "events", "dispatch", "orders", "order_created", "{not json")
	r.want(t, exitUsage)
	r.wantErr(t, "not JSON")
}

func testDLQ(t *testing.T) {
	const queue = "evt-helpdesk-opened--echo.on_ticket"
	const dlq = queue + ".dlq"
	r := hypha(t, "", "events", "dispatch", "helpdesk", "opened", `{"id": "t-1"}`)
	r.want(t, exitOK)
	// The handler fails: with no retries, the event is dead-lettered at once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = hypha(t, "", "dlq", "list", dlq)
		if strings.Contains(r.stdout, "ticket store is down") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.want(t, exitOK, "INDEX", "ticket store is down")

	r = hypha(t, "", "dlq", "list")
	r.want(t, exitOK, dlq)

	r = hypha(t, "", "dlq", "show", dlq, "--index", "0")
	r.want(t, exitOK, `"payload":{"id":"t-1"}`, `"x-hypha-error":"ticket store is down"`)

	r = hypha(t, "", "dlq", "replay", dlq, "--dry-run")
	r.want(t, exitOK, `"id":"t-1"`)
	r.wantErr(t, "would replay 1 event(s)")
	r = hypha(t, "", "dlq", "list", dlq)
	r.want(t, exitOK, "ticket store is down") // still there

	echoService.healed.Store(true)
	r = hypha(t, "", "dlq", "replay", dlq)
	r.want(t, exitOK)
	r.wantErr(t, "replayed 1 event(s) from "+dlq+" to "+queue)
	for deadline := time.Now().Add(10 * time.Second); echoService.handled.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the replayed event was not handled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = hypha(t, "", "dlq", "list", dlq)
	r.want(t, exitOK)
	if strings.Contains(r.stdout, "ticket") {
		t.Errorf("the replayed event is still on %s:\n%s", dlq, r.stdout)
	}

	r = hypha(t, "", "dlq", "show", "nope.dlq")
	r.want(t, exitError)
	r.wantErr(t, `no queue "nope.dlq"`)
	r = hypha(t, "", "dlq", "replay", "nope")
	r.want(t, exitUsage)
}

func testBench(t *testing.T) {
	r := hypha(t, "", "bench", "calculator.add", `{"a": 1, "b": 2}`, "--calls", "300", "--concurrency", "8")
	r.want(t, exitOK, "300 calls in", "calls/s, 300 ok, 0 failed", "latency: p50 ", "p99 ", "histogram:", "█")
	r = hypha(t, "", "bench", "calculator.divide", "a=1", "b=0", "--calls", "20", "--concurrency", "4")
	r.want(t, exitOK, "20 failed", "errors:", "20  ZeroDivisionError")
}
