package amqp

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
)

// The queue types Options.QueueType names.
const (
	// QueueClassic is RabbitMQ's default queue type: a queue on one node.
	QueueClassic = "classic"
	// QueueQuorum is a queue replicated on (up to five of) a cluster's
	// nodes, which survives the loss of a minority of them.
	QueueQuorum = "quorum"
)

// isQuorum reports whether q is declared as a quorum queue under queueType:
// durable, neither exclusive nor auto-delete (RabbitMQ allows those only as
// classic queues), and not naming its own x-queue-type.
func isQuorum(q transport.Queue, queueType string) bool {
	if queueType != QueueQuorum || !q.Durable || q.Exclusive || q.AutoDelete {
		return false
	}
	_, own := q.Args["x-queue-type"]
	return !own
}

// typed is q with the arguments Options.QueueType gives it.
func (b *connection) typed(q transport.Queue) transport.Queue {
	if !isQuorum(q, b.opts.QueueType) {
		return q
	}
	args := maps.Clone(q.Args)
	if args == nil {
		args = map[string]any{}
	}
	args["x-queue-type"] = QueueQuorum
	if _, own := args["x-delivery-limit"]; !own {
		args["x-delivery-limit"] = int32(b.opts.DeliveryLimit)
	}
	q.Args = args
	return q
}

// typeClash reads RabbitMQ's refusal to declare a queue again with another
// type: "inequivalent arg 'x-queue-type' for queue 'q' in vhost '/':
// received the value 'quorum' of type 'longstr' but current is none".
var typeClash = regexp.MustCompile(`inequivalent arg 'x-queue-type'.*received (none|the value '(\w+)').*current is (none|the value '(\w+)')`)

// declareError is the error for a refused declaration of q: for a queue that
// exists with another type, one that says which and what to do.
func (b *connection) declareError(q transport.Queue, err error) error {
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.PreconditionFailed && strings.Contains(amqpErr.Reason, "inequivalent arg") {
		err = inequivalent{err}
		if m := typeClash.FindStringSubmatch(amqpErr.Reason); m != nil {
			existing := m[4]
			if existing == "" {
				existing = QueueClassic
			}
			want := m[2]
			if want == "" {
				want = QueueClassic
			}
			return fmt.Errorf("hypha: queue %q exists as a %s queue, but QUEUE_TYPE is %s: every app on a vhost "+
				"must use the same QUEUE_TYPE; set QUEUE_TYPE to %s, or drain and delete the queue so that it is "+
				"declared again as %s (%w)", q.Name, existing, want, existing, want, err)
		}
	}
	need := fmt.Sprintf("configure on queue %q", q.Name)
	if dlx, ok := q.Args["x-dead-letter-exchange"].(string); ok {
		need += fmt.Sprintf(" (with a dead-letter exchange, also read on the queue and write on exchange %q)", exchangeName(dlx))
	}
	return fmt.Errorf("hypha: declaring queue %q: %w", q.Name, refused(err, need))
}

// inequivalent is RabbitMQ's refusal to declare a queue again otherwise than
// it exists; it matches transport.ErrInequivalent.
type inequivalent struct{ error }

func (e inequivalent) Unwrap() error { return e.error }

func (e inequivalent) Is(target error) bool { return target == transport.ErrInequivalent }
