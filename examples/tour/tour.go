// Package tour is the tour of the example services that examples/client and
// examples/quickstart print: calls to "calculator", "user_service", "orders"
// and "mailer" showing keyword and positional arguments, a remote error with
// its exc_type, a service calling another, a parallel fan-out, context data,
// and an event handled by another service.
package tour

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/rpc"
)

// Wait bounds for the services to come up.
const (
	readyTimeout = 30 * time.Second
	retryEvery   = 200 * time.Millisecond
)

// How long the client waits for the mailer to confirm an order, polling sent().
const (
	confirmTimeout = 5 * time.Second
	pollEvery      = 100 * time.Millisecond
)

// operands are the calculator's keyword arguments.
type operands struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// scoreIn are calculate_user_score's keyword arguments.
type scoreIn struct {
	UserID     any     `json:"user_id"`
	BaseScore  float64 `json:"base_score"`
	Multiplier float64 `json:"multiplier"`
}

// score is calculate_user_score's result.
type score struct {
	UserID any     `json:"user_id"`
	Score  float64 `json:"score"`
}

// orderIn are create_order's keyword arguments.
type orderIn struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// order is create_order's result, and the order_created event's payload.
type order struct {
	ID       string `json:"id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// confirmation is one of mailer.sent()'s results.
type confirmation struct {
	OrderID  string `json:"order_id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	Text     string `json:"text"`
}

// waitConfirmation polls mailer.sent() until it holds the confirmation of
// order id, for at most confirmTimeout.
func waitConfirmation(ctx context.Context, mailer *rpc.Proxy, id string) (confirmation, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	for {
		sent, err := rpc.Call[[]confirmation](ctx, mailer, "sent", struct{}{})
		if err == nil {
			for _, c := range sent {
				if c.OrderID == id {
					return c, time.Since(start), nil
				}
			}
		} else if ctx.Err() == nil {
			return confirmation{}, 0, fmt.Errorf("mailer.sent: %w", err)
		}
		select {
		case <-ctx.Done():
			return confirmation{}, 0, fmt.Errorf("mailer.sent() did not confirm order %s within %s", id, confirmTimeout)
		case <-time.After(pollEvery):
		}
	}
}

// waitReady calls each service until it answers, retrying while its queue
// does not exist yet, for at most readyTimeout.
func waitReady(ctx context.Context, w io.Writer, calc, users, orders, mailer *rpc.Proxy) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	probes := []struct {
		proxy  *rpc.Proxy
		method string
		in     any
		cmd    string // how to start the service
		answer string // an exc_type that counts as an answer too
	}{
		{calc, "add", operands{A: 0, B: 0}, "./examples/calculator", ""},
		// calculate_user_score calls calculator too, so this waits for the whole chain.
		{users, "calculate_user_score", scoreIn{UserID: 0, BaseScore: 0, Multiplier: 0}, "./examples/users", ""},
		// mailer first: its event queues must exist before an order is dispatched.
		{mailer, "sent", struct{}{}, "./examples/mailer", ""},
		// An empty order is refused with a ValueError and dispatches nothing.
		{orders, "create_order", orderIn{}, "./examples/orders", "ValueError"},
	}
	start := time.Now()
	for _, p := range probes {
		for {
			err := p.proxy.Call(ctx, p.method, p.in, nil)
			var re *rpc.RemoteError
			if err == nil || (p.answer != "" && errors.As(err, &re) && re.ExcType == p.answer) {
				break
			}
			notYet := errors.Is(err, rpc.ErrServiceNotFound)
			if !notYet && !errors.Is(err, rpc.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("waiting for %s: %w", p.proxy.Service(), err)
			}
			if notYet {
				select {
				case <-ctx.Done():
				case <-time.After(retryEvery):
					continue
				}
			}
			return fmt.Errorf("%s did not answer in %s; is it running? (go run %s): %w",
				p.proxy.Service(), time.Since(start).Round(time.Millisecond), p.cmd, err)
		}
	}
	fmt.Fprintf(w, "calculator, user_service, mailer and orders answer (waited %s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// asJSON renders v as compact JSON for printing.
func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// Run makes the tour's calls through c, printing one line per call to w,
// once every service answers (waiting up to 30 s for them); it returns the
// first call that did not go as the tour expects.
func Run(ctx context.Context, c *rpc.Client, w io.Writer) error {
	calc := c.Proxy("calculator")
	users := c.Proxy("user_service")
	orders := c.Proxy("orders")
	mailer := c.Proxy("mailer")

	if err := waitReady(ctx, w, calc, users, orders, mailer); err != nil {
		return err
	}

	// Keyword arguments from a map.
	sum, err := rpc.Call[float64](ctx, calc, "add", map[string]any{"a": 2, "b": 3})
	if err != nil {
		return fmt.Errorf("calculator.add: %w", err)
	}
	fmt.Fprintf(w, "calculator.add(a=2, b=3) = %v\n", sum)

	// Keyword arguments from a struct.
	diff, err := rpc.Call[float64](ctx, calc, "subtract", operands{A: 10, B: 4})
	if err != nil {
		return fmt.Errorf("calculator.subtract: %w", err)
	}
	fmt.Fprintf(w, "calculator.subtract(a=10, b=4) = %v\n", diff)

	// Positional arguments.
	prod, err := rpc.Call[float64](ctx, calc, "multiply", rpc.Args(6, 7))
	if err != nil {
		return fmt.Errorf("calculator.multiply: %w", err)
	}
	fmt.Fprintf(w, "calculator.multiply(6, 7) = %v\n", prod)

	// An error the service sends: a *rpc.RemoteError.
	quot, err := rpc.Call[float64](ctx, calc, "divide", operands{A: 1, B: 0})
	var re *rpc.RemoteError
	switch {
	case err == nil:
		return fmt.Errorf("calculator.divide(a=1, b=0) = %v: want a ZeroDivisionError", quot)
	case !errors.As(err, &re) || re.ExcType != "ZeroDivisionError":
		return fmt.Errorf("calculator.divide(a=1, b=0): want a ZeroDivisionError, got: %w", err)
	}
	fmt.Fprintf(w, "calculator.divide(a=1, b=0) → %s: %s\n", re.ExcType, re.Value)

	// A service that calls another: user_service → calculator.
	s, err := rpc.Call[score](ctx, users, "calculate_user_score", scoreIn{UserID: 7, BaseScore: 10, Multiplier: 3})
	if err != nil {
		return fmt.Errorf("user_service.calculate_user_score: %w", err)
	}
	fmt.Fprintf(w, "user_service.calculate_user_score(user_id=7, base_score=10, multiplier=3) = %s\n", asJSON(s))

	// Parallel calls inside the service.
	bases := []float64{1, 2, 3, 4}
	batch, err := rpc.Call[[]float64](ctx, users, "batch_scores", map[string]any{"base_scores": bases, "multiplier": 2.5})
	if err != nil {
		return fmt.Errorf("user_service.batch_scores: %w", err)
	}
	fmt.Fprintf(w, "user_service.batch_scores(%v, multiplier=2.5) = %v\n", bases, batch)

	// Context data: the user id travels as the AMQP header nameko.user_id, and
	// on to the calls user_service makes to calculator.
	userCtx := contextdata.WithUserID(ctx, "u-42")
	s, err = rpc.Call[score](userCtx, users, "calculate_user_score", scoreIn{UserID: "u-42", BaseScore: 4, Multiplier: 5})
	if err != nil {
		return fmt.Errorf("user_service.calculate_user_score with context user_id: %w", err)
	}
	fmt.Fprintf(w, "user_service.calculate_user_score(user_id=\"u-42\", base_score=4, multiplier=5) [context user_id=%s] = %s\n",
		contextdata.UserID(userCtx), asJSON(s))

	// Events: orders dispatches order_created, which mailer handles.
	o, err := rpc.Call[order](ctx, orders, "create_order", orderIn{Item: "socks", Quantity: 2})
	if err != nil {
		return fmt.Errorf("orders.create_order: %w", err)
	}
	fmt.Fprintf(w, "orders.create_order(item=\"socks\", quantity=2) = %s\n", asJSON(o))
	conf, waited, err := waitConfirmation(ctx, mailer, o.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "mailer.sent() holds the confirmation of order %s (after %s): %s\n",
		o.ID, waited.Round(time.Millisecond), asJSON(conf))
	return nil
}
