package memory

import (
	"fmt"
	"math"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// queueArgs are the queue arguments the embedded broker acts on.
type queueArgs struct {
	ttl          time.Duration // x-message-ttl
	hasTTL       bool
	expires      time.Duration // x-expires; zero: never
	dlx, dlk     string        // x-dead-letter-exchange, x-dead-letter-routing-key
	hasDLX       bool
	hasDLK       bool
	singleActive bool // x-single-active-consumer
}

// equivalentArgs are the arguments RabbitMQ compares when a queue is
// declared again; others are not checked.
var equivalentArgs = []string{
	"x-message-ttl", "x-expires", "x-dead-letter-exchange", "x-dead-letter-routing-key",
	"x-single-active-consumer", "x-queue-type",
}

// unsupportedArgs change what RabbitMQ does in ways the embedded broker does
// not follow, so declaring them fails rather than be silently ignored.
var unsupportedArgs = []string{
	"x-max-length", "x-max-length-bytes", "x-overflow", "x-max-priority", "x-delivery-limit",
	"x-dead-letter-strategy", "x-queue-mode",
}

// maxExpiry is the largest x-message-ttl and x-expires taken here, in
// milliseconds: the most time.Duration holds (292 years), which a larger
// one would overflow into a negative or wrapped-around time. RabbitMQ
// refuses such values too, with the same PRECONDITION_FAILED.
const maxExpiry = math.MaxInt64 / int64(time.Millisecond)

// parseArgs reads normalized queue arguments, refusing bad values as
// RabbitMQ does with PRECONDITION_FAILED.
func parseArgs(args map[string]any) (queueArgs, error) {
	var a queueArgs
	for _, k := range unsupportedArgs {
		if _, ok := args[k]; ok {
			return a, fmt.Errorf("queue argument %q is %w", k, errUnsupported)
		}
	}
	if v, ok := args["x-queue-type"]; ok && v != "classic" && v != "quorum" {
		return a, fmt.Errorf("x-queue-type %v is %w (only classic and quorum)", v, errUnsupported)
	}
	if v, ok := args["x-message-ttl"]; ok {
		n, ok := integer(v)
		if !ok || n < 0 || n > maxExpiry {
			return a, fmt.Errorf("%w - invalid arg 'x-message-ttl': %v (%T)", errPrecondition, v, v)
		}
		a.ttl, a.hasTTL = time.Duration(n)*time.Millisecond, true
	}
	if v, ok := args["x-expires"]; ok {
		n, ok := integer(v)
		if !ok || n <= 0 || n > maxExpiry {
			return a, fmt.Errorf("%w - invalid arg 'x-expires': %v (%T)", errPrecondition, v, v)
		}
		a.expires = time.Duration(n) * time.Millisecond
	}
	var err error
	if a.dlx, a.hasDLX, err = stringArg(args, "x-dead-letter-exchange"); err != nil {
		return a, err
	}
	if a.dlk, a.hasDLK, err = stringArg(args, "x-dead-letter-routing-key"); err != nil {
		return a, err
	}
	if v, ok := args["x-single-active-consumer"]; ok {
		b, ok := v.(bool)
		if !ok {
			return a, fmt.Errorf("%w - invalid arg 'x-single-active-consumer': %v (%T)", errPrecondition, v, v)
		}
		a.singleActive = b
	}
	return a, nil
}

func stringArg(args map[string]any, key string) (string, bool, error) {
	v, ok := args[key]
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("%w - invalid arg '%s': %v (%T)", errPrecondition, key, v, v)
	}
	return s, true, nil
}

// integer reads an AMQP integer of any width.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// sameArg reports whether two argument values are equivalent as RabbitMQ
// judges them: integers by value whatever their width, others exactly.
func sameArg(a, b any) bool {
	if x, ok := integer(a); ok {
		y, ok := integer(b)
		return ok && x == y
	}
	return a == b
}

// checkEquivalent refuses a declaration of an existing queue that differs
// from it, as RabbitMQ does with 406 PRECONDITION_FAILED.
func checkEquivalent(old, q transport.Queue) error {
	for _, c := range []struct {
		arg       string
		was, want bool
	}{{"durable", old.Durable, q.Durable}, {"exclusive", old.Exclusive, q.Exclusive}, {"auto_delete", old.AutoDelete, q.AutoDelete}} {
		if c.was != c.want {
			return inequivalent{fmt.Errorf("%w - inequivalent arg '%s' for queue '%s': received '%v' but current is '%v'",
				errPrecondition, c.arg, q.Name, c.want, c.was)}
		}
	}
	for _, k := range equivalentArgs {
		was, hadIt := old.Args[k]
		want, hasIt := q.Args[k]
		if hadIt != hasIt || (hasIt && !sameArg(was, want)) {
			return inequivalent{fmt.Errorf("%w - inequivalent arg '%s' for queue '%s': received %s but current is %s",
				errPrecondition, k, q.Name, describe(want, hasIt), describe(was, hadIt))}
		}
	}
	return nil
}

func describe(v any, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("'%v' (%T)", v, v)
}

// inequivalent is a refusal to declare a queue again otherwise than it
// exists; it matches transport.ErrInequivalent.
type inequivalent struct{ error }

func (e inequivalent) Unwrap() error { return e.error }

func (e inequivalent) Is(target error) bool { return target == transport.ErrInequivalent }
