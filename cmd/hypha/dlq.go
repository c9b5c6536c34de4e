package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/transport"
)

// deadLetter is one dead-lettered event as `dlq list` and `dlq show` print it.
// Payload is the body as JSON, to read; Body (or BodyBase64, when it is not
// UTF-8) is the body exactly as it is on the queue.
type deadLetter struct {
	Index      int             `json:"index"`
	MessageID  string          `json:"message_id,omitempty"`
	Attempts   any             `json:"attempts,omitempty"`
	Error      string          `json:"error,omitempty"`
	Malformed  string          `json:"malformed,omitempty"` // why the event could not be read whole
	Headers    map[string]any  `json:"headers,omitempty"`
	Payload    json.RawMessage `json:"payload"`
	Body       string          `json:"body,omitempty"`
	BodyBase64 []byte          `json:"body_base64,omitempty"`
}

func (c *cli) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Look at and replay dead-lettered events",
		Long: `An event whose handler failed past its retries goes to the dead-letter queue
of the handler's queue, "<queue>.dlq", with the error in the x-hypha-error
header; one its service could not hold (over MAX_MESSAGE_SIZE, headers it
could not read) is moved there whole by the broker, which adds x-death and no
x-hypha-error (the reason is in the service's log). dlq list and dlq show print them without taking them off the queue;
dlq replay sends them back to the handler's own queue (never to the source's
exchange, where handlers that already succeeded would run again), with the
x-hypha-* headers reset, once the handler is fixed.`,
		Example: `  hypha dlq list
  hypha dlq list evt-orders-order_created--mailer.send_confirmation.dlq
  hypha dlq show evt-orders-order_created--mailer.send_confirmation.dlq --index 0
  hypha dlq replay evt-orders-order_created--mailer.send_confirmation.dlq --dry-run`,
	}
	var max int
	var mgmt string
	list := &cobra.Command{
		Use:   "list [QUEUE.dlq]",
		Short: "List the dead-letter queues, or the events in one",
		Long: `Without a queue, list shows every dead-letter queue of the vhost with its
message count (through the management API). With one, it prints a line per
event: its index, message id, attempts and error. The events stay on the queue.`,
		Example: `  hypha dlq list
  hypha dlq list evt-orders-order_created--mailer.send_confirmation.dlq --max 20`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				queues, where, err := managementQueues(cmd.Context(), cfg.AMQPURI, mgmt)
				if err != nil {
					return fmt.Errorf("listing the dead-letter queues needs the management API (%v); name a queue instead: hypha dlq list <queue>.dlq", err)
				}
				fmt.Fprintln(c.err, "source: RabbitMQ management API at", maskURI(where))
				fmt.Fprintf(c.out, "%-70s %8s\n", "QUEUE", "EVENTS")
				for _, q := range queues {
					if strings.HasSuffix(q.Name, ".dlq") {
						fmt.Fprintf(c.out, "%-70s %8d\n", q.Name, q.Ready+q.Unacked)
					}
				}
				return nil
			}
			letters, err := c.peek(cmd.Context(), args[0], max)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "%-5s %-36s %-8s %s\n", "INDEX", "MESSAGE ID", "ATTEMPTS", "ERROR")
			for _, l := range letters {
				fmt.Fprintf(c.out, "%-5d %-36s %-8v %s\n", l.Index, l.MessageID, l.Attempts, firstLine(l.Error))
			}
			return nil
		},
	}
	list.Flags().IntVar(&max, "max", 100, "look at no more than this many events")
	list.Flags().StringVar(&mgmt, "management", "", "the management API's URL (default http://<broker host>:15672)")

	var index int
	show := &cobra.Command{
		Use:     "show QUEUE.dlq",
		Short:   "Print dead-lettered events whole: headers, error and payload",
		Long:    `show prints the events of a dead-letter queue as JSON, one a line, or the one at --index. They stay on the queue.`,
		Example: `  hypha dlq show evt-orders-order_created--mailer.send_confirmation.dlq --index 0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			letters, err := c.peek(cmd.Context(), args[0], max)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(c.out)
			enc.SetEscapeHTML(false) // the body and headers as they are
			if isTerminal(c.out) {
				enc.SetIndent("", "  ")
			}
			for _, l := range letters {
				if index >= 0 && l.Index != index {
					continue
				}
				if err := enc.Encode(l); err != nil {
					return err
				}
			}
			if index >= len(letters) {
				return fmt.Errorf("%s has %d event(s) (looking at --max %d): there is no index %d", args[0], len(letters), max, index)
			}
			return nil
		},
	}
	show.Flags().IntVar(&index, "index", -1, "print only the event at this index (see dlq list)")
	show.Flags().IntVar(&max, "max", 100, "look at no more than this many events")

	var dryRun bool
	var to string
	replay := &cobra.Command{
		Use:   "replay QUEUE.dlq",
		Short: "Send dead-lettered events back to their handler's queue",
		Long: `replay takes the events that are on QUEUE.dlq when it starts and publishes
each, persistent and confirmed, to the handler's own queue (QUEUE, or --to)
through the default exchange: its body and headers exactly as they are on
QUEUE.dlq, but with its x-hypha-* headers (attempts, error) removed, so the
handler gets a fresh set of retries. Only then is the dead letter acked. Each
event is replayed at most once per run: those the handler dead-letters again
meanwhile wait for the next run. An event whose headers could not be read is
skipped, one whose publish fails is counted failed (the exit code is then 1);
both stay on QUEUE.dlq. --dry-run prints what would be replayed and leaves
everything as it is.`,
		Example: `  hypha dlq replay evt-orders-order_created--mailer.send_confirmation.dlq --dry-run
  hypha dlq replay evt-orders-order_created--mailer.send_confirmation.dlq --max 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := to
			if target == "" {
				var ok bool
				if target, ok = strings.CutSuffix(args[0], ".dlq"); !ok {
					return usageError("%q is not a dead-letter queue (<queue>.dlq); --to names the queue to replay to", args[0])
				}
			}
			n, err := c.replay(cmd.Context(), args[0], target, max, dryRun)
			switch {
			case err != nil && n == (replayed{}):
			case dryRun:
				fmt.Fprintf(c.err, "would replay %d event(s) from %s to %s\n", n.replayed, args[0], target)
			default:
				fmt.Fprintf(c.err, "replayed %d event(s) from %s to %s; skipped %d, failed %d\n", n.replayed, args[0], target, n.skipped, n.failed)
			}
			if err == nil && n.failed > 0 {
				err = fmt.Errorf("%d event(s) failed to replay and stay on %s; run replay again to retry them", n.failed, args[0])
			}
			return err
		},
	}
	replay.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be replayed; change nothing")
	replay.Flags().StringVar(&to, "to", "", "the queue to replay to (default QUEUE.dlq without .dlq)")
	replay.Flags().IntVar(&max, "max", 1000, "replay no more than this many events")
	cmd.AddCommand(list, show, replay)
	return cmd
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// noQueue says that queue is not on the broker, and what to do.
func noQueue(queue string, err error) error {
	if errors.Is(err, transport.ErrNoQueue) {
		return fmt.Errorf("no queue %q on this broker and vhost (hypha dlq list shows the dead-letter queues there are)", queue)
	}
	return err
}

// peek reads up to max events of queue without taking them off: each is
// got and held unsettled, and all go back, in order, when the reader closes.
func (c *cli) peek(ctx context.Context, queue string, max int) ([]deadLetter, error) {
	b, _, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	r, err := b.ReadQueue(ctx, queue)
	if err != nil {
		return nil, noQueue(queue, err)
	}
	defer r.Close()
	var out []deadLetter
	for i := 0; i < max; i++ {
		d, ok, err := r.Get(ctx)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		out = append(out, letterOf(i, d))
	}
	return out, nil
}

func letterOf(i int, d transport.Delivery) deadLetter {
	l := deadLetter{Index: i, MessageID: d.MessageID, Headers: jsonSafe(d.Headers), Payload: d.Body}
	l.Attempts = d.Headers[events.AttemptHeader]
	l.Error, _ = d.Headers[events.ErrorHeader].(string)
	if d.Malformed != nil {
		l.Malformed = d.Malformed.Error()
	}
	if utf8.Valid(d.Body) {
		l.Body = string(d.Body)
	} else {
		l.BodyBase64 = d.Body
	}
	if !json.Valid(d.Body) {
		s, _ := json.Marshal(string(d.Body))
		l.Payload = s
	}
	return l
}

// replayed counts what a replay did with each event of its snapshot.
type replayed struct {
	replayed, skipped, failed int
}

// replay moves the events that were on dlq when it started, at most max, to
// target, each at most once: events the failing handler dead-letters again
// meanwhile land behind the snapshot and are not read. An event it cannot
// replay as it was read (its headers unreadable) is skipped, and one whose
// publish fails is counted failed; both stay on dlq, in their places. With
// dryRun it prints the events and moves nothing.
func (c *cli) replay(ctx context.Context, dlq, target string, max int, dryRun bool) (replayed, error) {
	var n replayed
	b, _, err := c.open(ctx)
	if err != nil {
		return n, err
	}
	defer b.Close()
	st, err := b.InspectQueue(ctx, dlq)
	if err != nil {
		return n, noQueue(dlq, err)
	}
	if _, err := b.InspectQueue(ctx, target); err != nil {
		return n, fmt.Errorf("the queue to replay to, %q, does not exist (is the handler's service running? --to names another): %w", target, err)
	}
	r, err := b.ReadQueue(ctx, dlq)
	if err != nil {
		return n, noQueue(dlq, err)
	}
	defer r.Close() // what was skipped or failed, or only looked at, goes back
	enc := json.NewEncoder(c.out)
	enc.SetEscapeHTML(false)
	seen := map[string]bool{}
	for i := range min(st.Messages, max) {
		d, ok, err := r.Get(ctx)
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		switch {
		case dryRun:
			if err := enc.Encode(letterOf(i, d)); err != nil {
				return n, err
			}
			n.replayed++
		case d.MessageID != "" && seen[d.MessageID]:
			n.skipped++
		case d.Malformed != nil:
			fmt.Fprintf(c.err, "skipping event %d (message id %s): it cannot be replayed as it was sent (%v); it stays on %s\n",
				i, d.MessageID, d.Malformed, dlq)
			n.skipped++
		default:
			if err := republish(ctx, b, target, d); err != nil {
				fmt.Fprintf(c.err, "replaying event %d (message id %s) to %s: %v; it stays on %s\n", i, d.MessageID, target, err, dlq)
				n.failed++
				continue
			}
			if err := d.Ack(); err != nil {
				return n, fmt.Errorf("event %d (message id %s) was replayed to %s but stays on %s too: %w", i, d.MessageID, target, dlq, err)
			}
			seen[d.MessageID] = true
			n.replayed++
		}
	}
	return n, nil
}

// republish publishes a copy of d to queue through the default exchange,
// persistent and confirmed: its body and headers exactly as read, without
// Hypha's x-hypha-* headers, so that the handler gets a fresh set of
// retries.
func republish(ctx context.Context, b transport.Broker, queue string, d transport.Delivery) error {
	headers := make(map[string]any, len(d.Headers))
	for k, v := range d.Headers {
		if !strings.HasPrefix(k, "x-hypha-") {
			headers[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return b.Publish(ctx, transport.Publishing{RoutingKey: queue, Mandatory: true, Message: transport.Message{
		Body: d.Body, Headers: headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		CorrelationID: d.CorrelationID, ReplyTo: d.ReplyTo, MessageID: d.MessageID, Persistent: true,
	}})
}
