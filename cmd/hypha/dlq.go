package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/events"
)

// deadLetter is one dead-lettered event as `dlq list` and `dlq show` print it.
type deadLetter struct {
	Index     int             `json:"index"`
	MessageID string          `json:"message_id,omitempty"`
	Attempts  any             `json:"attempts,omitempty"`
	Error     string          `json:"error,omitempty"`
	Headers   map[string]any  `json:"headers,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

func (c *cli) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Look at and replay dead-lettered events",
		Long: `An event whose handler failed past its retries goes to the dead-letter queue
of the handler's queue, "<queue>.dlq", with the error in the x-hypha-error
header. dlq list and dlq show print them without taking them off the queue;
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
			letters, err := peek(cmd.Context(), cfg.AMQPURI, args[0], max)
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
			cfg, err := c.config()
			if err != nil {
				return err
			}
			letters, err := peek(cmd.Context(), cfg.AMQPURI, args[0], max)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(c.out)
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
		Long: `replay takes the events off QUEUE.dlq and publishes each, persistent and
confirmed, to the handler's own queue (QUEUE, or --to) through the default
exchange, with its x-hypha-* headers (attempts, error) removed, so the handler
gets a fresh set of retries. Only then is the dead letter acked. --dry-run
prints what would be replayed and leaves everything as it is.`,
		Example: `  hypha dlq replay evt-orders-order_created--mailer.send_confirmation.dlq --dry-run
  hypha dlq replay evt-orders-order_created--mailer.send_confirmation.dlq --max 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			target := to
			if target == "" {
				var ok bool
				if target, ok = strings.CutSuffix(args[0], ".dlq"); !ok {
					return usageError("%q is not a dead-letter queue (<queue>.dlq); --to names the queue to replay to", args[0])
				}
			}
			n, err := c.replay(cmd.Context(), cfg.AMQPURI, args[0], target, max, dryRun)
			if err != nil {
				return err
			}
			verb := "replayed"
			if dryRun {
				verb = "would replay"
			}
			fmt.Fprintf(c.err, "%s %d event(s) from %s to %s\n", verb, n, args[0], target)
			return nil
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

// openQueue connects and checks that queue exists, giving a clear error when it does not.
func openQueue(ctx context.Context, uri, queue string) (*amqp.Connection, *amqp.Channel, amqp.Queue, error) {
	conn, err := amqpDial(ctx, uri)
	if err != nil {
		return nil, nil, amqp.Queue{}, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, amqp.Queue{}, err
	}
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		conn.Close()
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return nil, nil, q, fmt.Errorf("no queue %q on this broker and vhost (hypha dlq list shows the dead-letter queues there are)", queue)
		}
		return nil, nil, q, err
	}
	return conn, ch, q, nil
}

// peek reads up to max events of queue without taking them off: each is
// got unacked, and all go back when the channel closes.
func peek(ctx context.Context, uri, queue string, max int) ([]deadLetter, error) {
	conn, ch, _, err := openQueue(ctx, uri, queue)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []deadLetter
	for i := 0; i < max; i++ {
		m, ok, err := ch.Get(queue, false)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		out = append(out, letterOf(i, m))
	}
	return out, nil // closing the connection requeues them, in order
}

func letterOf(i int, m amqp.Delivery) deadLetter {
	l := deadLetter{Index: i, MessageID: m.MessageId, Headers: jsonSafe(m.Headers), Payload: m.Body}
	l.Attempts = m.Headers[events.AttemptHeader]
	l.Error, _ = m.Headers[events.ErrorHeader].(string)
	if !json.Valid(m.Body) {
		s, _ := json.Marshal(string(m.Body))
		l.Payload = s
	}
	return l
}

// replay moves up to max events from dlq to target; with dryRun it prints
// them and moves nothing.
func (c *cli) replay(ctx context.Context, uri, dlq, target string, max int, dryRun bool) (int, error) {
	conn, ch, _, err := openQueue(ctx, uri, dlq)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := ch.QueueDeclarePassive(target, false, false, false, false, nil); err != nil {
		return 0, fmt.Errorf("the queue to replay to, %q, does not exist (is the handler's service running? --to names another): %w", target, err)
	}
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	enc := json.NewEncoder(c.out)
	n := 0
	for ; n < max; n++ {
		m, ok, err := ch.Get(dlq, false)
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		if dryRun {
			if err := enc.Encode(letterOf(n, m)); err != nil {
				return n, err
			}
			continue // left unacked: back on the queue when the connection closes
		}
		if err := republish(ctx, ch, target, m); err != nil {
			_ = m.Nack(false, true)
			return n, fmt.Errorf("replaying event %d (message id %s) to %s: %w; it stays on %s", n, m.MessageId, target, err, dlq)
		}
		if err := m.Ack(false); err != nil {
			return n, err
		}
	}
	return n, nil
}

// republish publishes a copy of m to queue through the default exchange,
// without Hypha's x-hypha-* headers, and waits for the broker's confirm.
func republish(ctx context.Context, ch *amqp.Channel, queue string, m amqp.Delivery) error {
	headers := amqp.Table{}
	for k, v := range m.Headers {
		if !strings.HasPrefix(k, "x-hypha-") && k != "x-death" {
			headers[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{
		Headers: headers, ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, DeliveryMode: amqp.Persistent,
		CorrelationId: m.CorrelationId, MessageId: m.MessageId, Timestamp: m.Timestamp, Type: m.Type, AppId: m.AppId, Body: m.Body,
	})
	if err != nil {
		return err
	}
	ok, err := conf.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the broker refused the message (nack)")
	}
	return nil
}
