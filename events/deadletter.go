package events

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/hypha-go/hypha/transport"
)

// A dead letter keeps the event it stands for. Two ways lead there:
//
//   - An event Hypha holds whole (a payload that does not decode, a handler
//     that failed past its retries, headers over their bounds) is copied to
//     "<queue>.dlq" with its body, every header it arrived with and the
//     properties transport.Message holds (content type and encoding,
//     message id, correlation id, reply-to), plus x-hypha-attempt and
//     x-hypha-error, then acked.
//   - An event the transport could not hand over whole (a body over
//     MAX_MESSAGE_SIZE, dropped as it streamed in; headers the client
//     library cannot read), or whose copy the broker would never take, is
//     rejected without requeue: the broker itself moves it, byte for byte,
//     through the queue's x-dead-letter-exchange, adding x-death (reason
//     "rejected"). Why is in the log, as Hypha cannot add a header there.

// How an event went to its dead-letter queue, as the metric
// hypha.events.dead_lettered says it.
const (
	// deadLetterCopy: a copy with every header, plus x-hypha-attempt and
	// x-hypha-error.
	deadLetterCopy = "copy"
	// deadLetterWhole: rejected, and moved whole by the broker.
	deadLetterWhole = "whole"
	// deadLetterRecord: on a queue without a dead-letter exchange, only a
	// record of what arrived, with x-hypha-error.
	deadLetterRecord = "record"
)

// declareQueue declares the handler's queue q with its dead-letter arguments
// and reports whether the broker dead-letters its rejected events. With
// NamekoQueues, or when the queue exists without those arguments (declared by
// nameko, or by a Hypha from before them), it is declared as nameko declares
// it and reports false, with a warning that says how to get them.
func (s *server) declareQueue(ctx context.Context, q transport.Queue) (bool, error) {
	plain := q
	plain.Args = nil
	if s.cfg.NamekoQueues {
		if err := s.broker.DeclareQueue(ctx, plain); err != nil {
			if errors.Is(err, transport.ErrInequivalent) {
				return false, fmt.Errorf("%w; EVENTS.NAMEKO_QUEUES is on, so the queue %q is declared as nameko declares it, "+
					"but it exists with Hypha's dead-letter arguments: turn EVENTS.NAMEKO_QUEUES off, or drain and delete "+
					"the queue so that it is declared again without them", err, q.Name)
			}
			return false, err
		}
		return false, nil
	}
	err := s.broker.DeclareQueue(ctx, q)
	if err == nil || !errors.Is(err, transport.ErrInequivalent) {
		return err == nil, err
	}
	if s.broker.DeclareQueue(ctx, plain) != nil {
		return false, err // not the dead-letter arguments: the first refusal says what
	}
	s.log.Warn("hypha: event queue exists without a dead-letter exchange (declared by nameko, or by an older Hypha); "+
		"an event it cannot hand over whole (over MAX_MESSAGE_SIZE, unreadable headers) is not kept whole. "+
		"Drain and delete the queue so that it is declared again with x-dead-letter-exchange, "+
		"or set EVENTS.NAMEKO_QUEUES when nameko services consume it too",
		"queue", q.Name, "dead_letter_queue", q.Args["x-dead-letter-routing-key"])
	return false, nil
}

// refuse settles an event that cannot be served (see
// entrypoint.ConsumerConfig): one the transport could not hand over whole is
// rejected, for the broker to move whole; any other is dead-lettered as a
// failed one is.
func (s *server) refuse(h *eventHandler, d transport.Delivery, cause error) {
	if d.Malformed != nil {
		s.reject(h, d, attemptOf(d.Headers), cause)
		return
	}
	s.deadLetter(h, d, attemptOf(d.Headers), cause)
}

// retry sends the event, with the attempt counted, to the delay queue that
// gives it back to its queue after the attempt's delay, then acks this
// delivery: no worker waits.
func (s *server) retry(h *eventHandler, d transport.Delivery, attempt int) {
	headers := copyHeaders(d.Headers)
	headers[AttemptHeader] = int64(attempt + 1)
	msg := d.Message
	msg.Headers = headers
	s.republish(h, d, attempt, s.cfg.RetryDelay.queue(h.queue(s.cfg.Service), attempt).Name, msg)
}

// deadLetter sends a copy of the event to "<queue>.dlq", all its headers
// kept, plus why (cut to maxErrorHeader bytes) and how often it failed, then
// acks this delivery, so the queue keeps flowing.
func (s *server) deadLetter(h *eventHandler, d transport.Delivery, attempt int, cause error) {
	dlq := deadLetterQueue(h, s.cfg.Service)
	headers := copyHeaders(d.Headers)
	headers[AttemptHeader] = int64(attempt)
	headers[ErrorHeader] = truncate(cause.Error(), maxErrorHeader)
	s.log.Warn("hypha: event dead-lettered", "handler", h.name, "event", h.eventType, "message_id", d.MessageID,
		"attempts", attempt, "queue", dlq, "error", headers[ErrorHeader])
	msg := d.Message
	msg.Headers = headers
	msg.Expiration = 0 // a dead letter waits to be read, as the broker's own do
	if s.republish(h, d, attempt, dlq, msg) {
		s.counted(h, deadLetterCopy)
	}
}

// counted reports a dead letter to OnDeadLetter.
func (s *server) counted(h *eventHandler, how string) {
	if s.cfg.OnDeadLetter != nil {
		s.cfg.OnDeadLetter(h.name, h.source+"."+h.eventType, how)
	}
}

// reject gives the event up to the broker, which moves it whole to the
// dead-letter queue. On a queue declared without a dead-letter exchange the
// broker would drop it, so a record of it goes there instead: what of it
// arrived, with Hypha's headers only.
func (s *server) reject(h *eventHandler, d transport.Delivery, attempt int, cause error) {
	dlq := deadLetterQueue(h, s.cfg.Service)
	if s.whole[h] {
		s.log.Warn("hypha: event rejected; the broker moves it whole to the dead-letter queue", "handler", h.name,
			"event", h.eventType, "message_id", d.MessageID, "attempts", attempt, "queue", dlq, "error", cause)
		if err := d.Nack(false); err != nil {
			s.log.Warn("hypha: reject failed; the event will come again", "handler", h.name, "error", err)
			return
		}
		s.counted(h, deadLetterWhole)
		return
	}
	why := fmt.Sprintf("%v (only this record of the event is kept: its queue has no dead-letter exchange)", cause)
	s.log.Error("hypha: event dead-lettered but not kept whole: its queue has no dead-letter exchange", "handler", h.name,
		"event", h.eventType, "message_id", d.MessageID, "attempts", attempt, "queue", dlq, "error", cause)
	msg := d.Message
	msg.Headers = map[string]any{AttemptHeader: int64(attempt), ErrorHeader: truncate(why, maxErrorHeader)}
	msg.Expiration = 0
	err := s.publish(dlq, msg)
	if err != nil && !transient(err) {
		s.log.Error("hypha: the broker refused the record of a dead letter; dropping the event", "handler", h.name,
			"queue", dlq, "message_id", d.MessageID, "error", err)
		_ = d.Nack(false)
		return
	}
	if s.settle(h, d, dlq, err) {
		s.counted(h, deadLetterRecord)
	}
}

// republish publishes msg, a copy of d, to queue, then acks d. A copy the
// broker cannot take now sends d back to its queue (see settle); one it
// never would (too large, once Hypha's headers are added) leaves d to be
// rejected, and moved whole by the broker. It reports whether the copy went
// out.
func (s *server) republish(h *eventHandler, d transport.Delivery, attempt int, queue string, msg transport.Message) bool {
	err := s.publish(queue, msg)
	if err != nil && !transient(err) {
		s.reject(h, d, attempt, fmt.Errorf("its copy for queue %q was refused: %w", queue, err))
		return false
	}
	return s.settle(h, d, queue, err)
}

// publish sends msg, persistent, to queue through the default exchange.
func (s *server) publish(queue string, msg transport.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	msg.Persistent = true
	return s.broker.Publish(ctx, transport.Publishing{RoutingKey: queue, Mandatory: true, Message: msg})
}

// settle acks d once err, its copy's publish, is nil; else d goes back to
// its queue after a pause, so that a broker refusing the copy cannot make
// the event loop hot. Drain cuts the pause short. It reports whether the
// copy went out.
func (s *server) settle(h *eventHandler, d transport.Delivery, queue string, err error) bool {
	if err != nil {
		s.log.Error("hypha: could not republish the event; it goes back to its queue", "handler", h.name, "queue", queue, "error", err)
		select {
		case <-time.After(requeuePause):
		case <-s.draining.Done():
		}
		_ = d.Nack(true)
		return false
	}
	if err := d.Ack(); err != nil {
		s.log.Warn("hypha: ack failed; the event will come again", "handler", h.name, "error", err)
	}
	return true
}

// transient reports whether a copy's publish may succeed later: the
// connection was lost or the broker did not answer in time, or the queue it
// goes to is missing (declared again at the next start). Any other failure
// (a copy over the size limits, say) would only repeat.
func transient(err error) bool {
	return errors.Is(err, transport.ErrUnroutable) || errors.Is(err, transport.ErrUncertain) ||
		errors.Is(err, transport.ErrClosed) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// deadLetterQueue is the dead-letter queue of a handler: "<queue>.dlq", but
// for a broadcast handler without reliable delivery, whose queue name changes
// with every instance, one shared name without the identifier, so restarts
// do not leave a durable queue behind each.
func deadLetterQueue(h *eventHandler, service string) string {
	if h.handlerType == Broadcast && !h.reliable {
		return DeadLetterQueueName(fmt.Sprintf("evt-%s-%s--%s.%s", h.source, h.eventType, service, h.name))
	}
	return DeadLetterQueueName(h.namekoQueue(service).Name)
}

// copyHeaders is a copy of h that Hypha's headers can be set in; every
// header of the event goes with its retries and dead letters.
func copyHeaders(h map[string]any) map[string]any {
	out := make(map[string]any, len(h)+2)
	maps.Copy(out, h)
	return out
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "… (truncated)"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
