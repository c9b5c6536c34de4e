package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/transport"
)

func (c *cli) eventsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Listen to and dispatch events",
		Example: `  hypha events listen orders.order_created
  hypha events dispatch orders order_created '{"id": "o-1"}'`,
	}
	cmd.AddCommand(c.listenCommand(), c.dispatchCommand())
	return cmd
}

// listenedEvent is one line `events listen` prints.
type listenedEvent struct {
	Source    string          `json:"source"`
	EventType string          `json:"event_type"`
	Payload   json.RawMessage `json:"payload"`
	MessageID string          `json:"message_id,omitempty"`
	Headers   map[string]any  `json:"headers,omitempty"`
}

func (c *cli) listenCommand() *cobra.Command {
	var verbose bool
	var count int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "listen SOURCE.EVENT_TYPE...",
		Short: "Print the events dispatched, one JSON line each",
		Long: `listen binds a temporary exclusive queue (deleted when it stops) to the events
exchange of each SOURCE, for EVENT_TYPE ("*" for every type), and prints one
JSON line per event: {"source", "event_type", "payload"}, plus the message id
and the headers with -v. The service handlers' own queues are not touched:
listening takes no event from them. It runs until interrupted, --count events
arrived, or --timeout passed.`,
		Example: `  hypha events listen orders.order_created
  hypha events listen orders.* payments.refunded -v --count 10`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bindings []transport.Binding
			var exchanges []string
			for _, a := range args {
				src, typ, ok := strings.Cut(a, ".")
				if !ok || src == "" || typ == "" {
					return usageError("%q is not SOURCE.EVENT_TYPE (orders.order_created, or orders.* for all)", a)
				}
				if typ == "*" {
					typ = "#"
				}
				bindings = append(bindings, transport.Binding{Exchange: events.ExchangeName(src), RoutingKey: typ})
				exchanges = append(exchanges, events.ExchangeName(src))
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return c.listen(ctx, exchanges, bindings, verbose, count)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print each event's message id and headers too")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many events (0: run until interrupted)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop after this long (0: run until interrupted)")
	return cmd
}

func (c *cli) listen(ctx context.Context, exchanges []string, bindings []transport.Binding, verbose bool, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b, _, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	for _, ex := range exchanges {
		// As the dispatchers and handlers declare it, so that listening
		// before anyone dispatched works; passively, as its owners' user
		// may be the only one allowed to configure it.
		if err := b.DeclareExchange(ctx, transport.Exchange{Name: ex, Kind: transport.Topic, Durable: true, Passive: true}); err != nil {
			return err
		}
	}
	queue := "hypha-listen-" + uuid.NewString()
	if err := b.DeclareQueue(ctx, transport.Queue{Name: queue, Exclusive: true, AutoDelete: true, Bindings: bindings}); err != nil {
		return err
	}
	got := make(chan transport.Delivery)
	consumer, err := b.Consume(ctx, transport.ConsumeOptions{Queue: queue, Prefetch: 100}, func(d transport.Delivery) {
		select {
		case got <- d:
		case <-ctx.Done():
			_ = d.Nack(false)
		}
	})
	if err != nil {
		return err
	}
	defer consumer.Close()
	defer cancel() // first: a handler waiting to hand over an event gives up
	fmt.Fprintf(c.err, "listening on %s (ctrl-c stops)\n", queue)
	enc := json.NewEncoder(c.out)
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return nil
			}
			return ctx.Err()
		case d := <-got:
			ev := listenedEvent{Source: strings.TrimSuffix(d.Exchange, ".events"), EventType: d.RoutingKey, Payload: d.Body}
			if !json.Valid(d.Body) {
				s, _ := json.Marshal(string(d.Body))
				ev.Payload = s
			}
			if verbose {
				ev.MessageID, ev.Headers = d.MessageID, jsonSafe(d.Headers)
			}
			_ = d.Ack()
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonSafe makes header values printable as JSON: bytes become text.
func jsonSafe(h map[string]any) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		out[k] = jsonSafeValue(v)
	}
	return out
}

func jsonSafeValue(v any) any {
	switch v := v.(type) {
	case []byte:
		if !utf8.Valid(v) {
			return map[string][]byte{"base64": v} // as JSON: the bytes, whole
		}
		return string(v)
	case map[string]any:
		return jsonSafe(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonSafeValue(x)
		}
		return out
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}

func (c *cli) dispatchCommand() *cobra.Command {
	var ctxItems []string
	cmd := &cobra.Command{
		Use:   "dispatch SOURCE EVENT_TYPE [PAYLOAD]",
		Short: "Dispatch an event as SOURCE would",
		Long: `dispatch publishes an event of EVENT_TYPE on SOURCE's events exchange, as that
service's dispatcher would: persistent, confirmed, with a message id. PAYLOAD
is JSON; without it, the JSON on stdin (or null when stdin is a terminal).`,
		Example: `  hypha events dispatch orders order_created '{"id": "o-1", "item": "tea", "quantity": 2}'
  cat order.json | hypha events dispatch orders order_created --context user_id=ann`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			payload := []byte("null")
			switch {
			case len(args) == 3 && args[2] != "-":
				payload = []byte(args[2])
			case !isTerminal(c.in):
				b, err := io.ReadAll(c.in)
				if err != nil {
					return err
				}
				if len(strings.TrimSpace(string(b))) > 0 {
					payload = b
				}
			}
			if !json.Valid(payload) {
				return usageError("the payload is not JSON: %s", strings.TrimSpace(string(payload)))
			}
			ctx, err := withContextData(cmd.Context(), ctxItems)
			if err != nil {
				return err
			}
			b, cfg, err := c.open(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			d := events.NewDispatcher(b, events.DispatcherConfig{Source: args[0], PublishTimeout: cfg.Events.PublishTimeout})
			if err := d.Dispatch(ctx, args[1], json.RawMessage(payload)); err != nil {
				return fmt.Errorf("dispatching %s.%s: %w", args[0], args[1], err)
			}
			fmt.Fprintf(c.err, "dispatched %s.%s\n", args[0], args[1])
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&ctxItems, "context", nil, "context data sent with the event, key=value (repeat it)")
	return cmd
}
