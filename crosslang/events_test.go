package crosslang_test

// Cross-language event tests at the wire: a Hypha dispatcher's events reach
// nameko_events.py's service-pool handler with nameko's properties,
// whichever side declares the handler's queue first.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
)

// evtOrder is the payload of the events in these tests.
type evtOrder struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
}

// evtService is a Hypha service whose Register is given by the test.
type evtService struct{ register func(r *entrypoint.Registry) }

func (s *evtService) Register(r *entrypoint.Registry) { s.register(r) }

// evtServiceOption adds a service named name that handles events with register.
func evtServiceOption(name string, register func(r *entrypoint.Registry)) framework.Option {
	return framework.Service(name, func() *evtService { return &evtService{register: register} })
}

// runEventsPy runs nameko_events.py with args to completion (at most 60 s)
// and returns its stdout; it fails t when the script does not exit 0.
func runEventsPy(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr lockedBuffer
	cmd := exec.CommandContext(ctx, python, append([]string{"./nameko_events.py"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("nameko_events.py %s did not finish within 60 s: %v\nstdout:\n%s\nstderr:\n%s",
			args[0], err, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("nameko_events.py %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// pyConsumer is nameko_events.py consume running in the background.
type pyConsumer struct {
	stdout *readyWriter
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

// startEventsConsumer runs `nameko_events.py consume` and returns once it
// has printed READY (it is consuming).
func startEventsConsumer(t *testing.T, args ...string) *pyConsumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c := &pyConsumer{stdout: &readyWriter{ready: make(chan struct{})}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, python, append([]string{"./nameko_events.py", "consume"}, args...)...)
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		c.err = cmd.Wait()
		cancel()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cancel() // kills it
			<-c.done
		}
	})
	select {
	case <-c.stdout.ready:
	case <-c.done:
		t.Fatalf("nameko_events.py consume exited before READY: %v\nstdout:\n%s\nstderr:\n%s",
			c.err, c.stdout.String(), c.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("nameko_events.py consume printed no READY within 20 s\nstderr:\n%s", c.stderr.String())
	}
	return c
}

// wait waits for the consumer to exit 0 and returns its stdout.
func (c *pyConsumer) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("nameko_events.py consume did not exit within 60 s\nstdout:\n%s\nstderr:\n%s", c.stdout.String(), c.stderr.String())
	}
	if c.err != nil {
		t.Fatalf("nameko_events.py consume: %v\nstdout:\n%s\nstderr:\n%s", c.err, c.stdout.String(), c.stderr.String())
	}
	return c.stdout.String()
}

// pyEvent is one event as nameko_events.py consume prints it.
type pyEvent struct {
	Body         json.RawMessage `json:"body"`
	Headers      map[string]any  `json:"headers"`
	MessageID    *string         `json:"message_id"`
	DeliveryMode *int            `json:"delivery_mode"`
	ContentType  *string         `json:"content_type"`
	Exchange     string          `json:"exchange"`
	RoutingKey   string          `json:"routing_key"`
}

// parseEvents reads the JSON lines of consume's stdout (READY and DECLARED are skipped).
func parseEvents(t *testing.T, stdout string) []pyEvent {
	t.Helper()
	var evs []pyEvent
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line == "READY" || line == "DECLARED" {
			continue
		}
		var ev pyEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("consume printed %q, not an event: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// startStopHandlerService starts a Hypha app whose service handles type
// events of source with handler method, and stops it again: its start
// declares the handler's queue, with namekoQueues as nameko declares it
// (EVENTS.NAMEKO_QUEUES). It fails t when the app does not start (e.g. 406
// PRECONDITION_FAILED on the queue) or stop.
func startStopHandlerService(t *testing.T, uri, service, method, source, typ string, namekoQueues bool) {
	t.Helper()
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": uri, "GRACE_PERIOD": 5,
			"EVENTS": map[string]any{"NAMEKO_QUEUES": namekoQueues}}),
		framework.Logger(quiet),
		evtServiceOption(service, func(r *entrypoint.Registry) {
			events.Handle(r, method, source, typ, func(context.Context, evtOrder) error { return nil })
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	startErr := app.Start(ctx)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	stopErr := app.Stop(stopCtx)
	if startErr != nil {
		t.Fatalf("Hypha service %s (handler %s of %s.%s) did not start: %v", service, method, source, typ, startErr)
	}
	if stopErr != nil {
		t.Errorf("Hypha service %s: stop: %v", service, stopErr)
	}
}

// checkQueue checks on the broker that queue is declared as nameko declares
// a reliable service-pool handler's queue: durable, not auto-delete, not
// exclusive, no arguments.
func checkQueue(t *testing.T, queue string) {
	t.Helper()
	out, err := testbroker.Rabbitmqctl("-q", "list_queues", "-p", testbroker.VHost(t),
		"name", "durable", "auto_delete", "exclusive", "arguments")
	if err != nil {
		t.Fatalf("rabbitmqctl list_queues: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(strings.TrimSpace(line), "\t"); len(f) == 5 && f[0] == queue {
			if want := []string{queue, "true", "false", "false", "[]"}; !reflect.DeepEqual(f, want) {
				t.Errorf("queue %s: name durable auto_delete exclusive arguments = %q, want %q", queue, f, want)
			}
			return
		}
	}
	t.Errorf("queue %s not found on the broker:\n%s", queue, out)
}

var evtUUID = regexp.MustCompile(`^` + uuidRE + `$`)

func TestHyphaDispatchReachesPythonConsumer(t *testing.T) {
	needKombu(t)
	uri := testbroker.URI(t)

	for _, tc := range []struct {
		name         string
		pythonFirst  bool
		source, typ  string
		service, mth string
	}{
		{"python_declares_first", true, "hy_orders_a", "order_created", "py_mailer_a", "on_created"},
		{"hypha_declares_first", false, "hy_orders_b", "order_created", "py_mailer_b", "on_created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queue := fmt.Sprintf("evt-%s-%s--%s.%s", tc.source, tc.typ, tc.service, tc.mth)
			pyArgs := []string{"--uri", uri, "--source", tc.source, "--type", tc.typ,
				"--service", tc.service, "--method", tc.mth}
			payloads := []evtOrder{{1, "socks"}, {2, "shoes"}}

			var consumer *pyConsumer
			if tc.pythonFirst {
				out := runEventsPy(t, append(append([]string{"consume"}, pyArgs...), "--declare-only")...)
				if strings.TrimSpace(out) != "DECLARED" {
					t.Fatalf("consume --declare-only printed %q, want DECLARED", out)
				}
				checkQueue(t, queue)
				// Hypha, by default, declares the same queue with its
				// dead-letter arguments, and takes it as nameko declared
				// it instead of failing with 406.
				startStopHandlerService(t, uri, tc.service, tc.mth, tc.source, tc.typ, false)
				checkQueue(t, queue)
			} else {
				// With EVENTS.NAMEKO_QUEUES, for a fleet where nameko services
				// share the handler's queue, Hypha declares it as nameko does.
				startStopHandlerService(t, uri, tc.service, tc.mth, tc.source, tc.typ, true)
				checkQueue(t, queue)
				// nameko declares the queue Hypha made: no 406 (consume would exit 1 before READY).
				consumer = startEventsConsumer(t, append(pyArgs, "--count", fmt.Sprint(len(payloads)), "--timeout", "30")...)
			}

			d, err := hyphatest.Dispatcher(t, context.Background(), uri, events.DispatcherConfig{Source: tc.source})
			if err != nil {
				t.Fatal(err)
			}
			ctx := contextdata.WithUserID(context.Background(), "u-7")
			for _, p := range payloads {
				if err := d.Dispatch(ctx, tc.typ, p); err != nil {
					t.Fatalf("dispatch %+v: %v", p, err)
				}
			}

			var out string
			if tc.pythonFirst {
				// The events waited in the queue since Hypha's service stopped.
				out = runEventsPy(t, append(append([]string{"consume"}, pyArgs...), "--count", fmt.Sprint(len(payloads)), "--timeout", "30")...)
			} else {
				out = consumer.wait(t)
			}
			t.Logf("consume stdout:\n%s", out)
			evs := parseEvents(t, out)
			if len(evs) != len(payloads) {
				t.Fatalf("consume printed %d events, want %d", len(evs), len(payloads))
			}
			ids := map[string]bool{}
			for i, ev := range evs {
				var o evtOrder
				if err := json.Unmarshal(ev.Body, &o); err != nil || o != payloads[i] {
					t.Errorf("event %d: body %s (%v), want %+v", i, ev.Body, err, payloads[i])
				}
				if ev.MessageID == nil || !evtUUID.MatchString(*ev.MessageID) {
					t.Errorf("event %d: message_id %v, want a uuid", i, ev.MessageID)
				} else if ids[*ev.MessageID] {
					t.Errorf("event %d: message_id %s repeated", i, *ev.MessageID)
				} else {
					ids[*ev.MessageID] = true
				}
				if ev.DeliveryMode == nil || *ev.DeliveryMode != 2 {
					t.Errorf("event %d: delivery_mode %v, want 2 (persistent)", i, ev.DeliveryMode)
				}
				if ev.ContentType == nil || *ev.ContentType != "application/json" {
					t.Errorf("event %d: content_type %v, want application/json", i, ev.ContentType)
				}
				if ev.Exchange != tc.source+".events" || ev.RoutingKey != tc.typ {
					t.Errorf("event %d: exchange %q routing key %q, want %q and %q", i, ev.Exchange, ev.RoutingKey, tc.source+".events", tc.typ)
				}
				if ev.Headers["nameko.user_id"] != "u-7" {
					t.Errorf("event %d: header nameko.user_id = %#v, want u-7 (headers %v)", i, ev.Headers["nameko.user_id"], ev.Headers)
				}
				if stack := stringsOf(ev.Headers["nameko.call_id_stack"]); len(stack) != 1 || !strings.HasPrefix(stack[0], tc.source+".") {
					t.Errorf("event %d: header nameko.call_id_stack = %#v, want one id of %s", i, ev.Headers["nameko.call_id_stack"], tc.source)
				}
			}
			// Consumed and acked: nothing is left in the queue.
			out2, err := testbroker.Rabbitmqctl("-q", "list_queues", "-p", testbroker.VHost(t), "name", "messages")
			if err != nil {
				t.Fatalf("rabbitmqctl list_queues: %v\n%s", err, out2)
			}
			for _, line := range strings.Split(out2, "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == queue && f[1] != "0" {
					t.Errorf("queue %s still holds %s messages", queue, f[1])
				}
			}
		})
	}
}
