// Package mailer is the "mailer" example service: it handles the orders
// service's order_created events twice over,
//
//   - send_confirmation, a service-pool handler: one instance of mailer
//     "sends" a confirmation for each order (it logs it and keeps it);
//   - audit, a broadcast handler without reliable delivery: every running
//     instance of mailer logs each order,
//
// and its RPC method sent() returns the confirmations this instance sent
// lately, so that a test or a client can see an event arrive.
package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
)

// Name is the service's name on the wire.
const Name = "mailer"

// The events mailer handles: the orders service's order_created.
const (
	Source    = "orders"
	EventType = "order_created"
)

// Keep is how many confirmations sent() remembers, newest last.
const Keep = 100

// Order is the order_created event's payload, as the orders service sends it.
// mailer declares it itself: services share the wire format, not Go types.
type Order struct {
	ID       string `json:"id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// Confirmation is a confirmation sent for an order.
type Confirmation struct {
	OrderID  string `json:"order_id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	Text     string `json:"text"`
}

// Service is the mailer service. Its memory of confirmations is its own: with
// several instances, each remembers those it sent.
type Service struct {
	log *slog.Logger

	mu   sync.Mutex
	sent []Confirmation // the last Keep, oldest first
}

// New builds the service; the container injects its logger.
func New(log *slog.Logger) *Service { return &Service{log: log} }

// Register declares the service's event handlers and RPC methods.
func (s *Service) Register(r *entrypoint.Registry) {
	// Service pool (the default): each event once per mailer, shared among its
	// instances, on the durable queue evt-orders-order_created--mailer.send_confirmation.
	events.Handle(r, "send_confirmation", Source, EventType, s.SendConfirmation)
	// Broadcast: each event to every running instance, on a queue of its own
	// that goes away with it (no stable identifier needed without reliable delivery).
	events.Handle(r, "audit", Source, EventType, s.Audit,
		events.Type(events.Broadcast), events.UnreliableDelivery())
	rpc.Handle(r, "sent", s.Sent,
		rpc.Doc("Returns the last confirmations this instance sent, oldest first."))
}

// SendConfirmation "sends" the confirmation of an order: it logs it and
// remembers it for Sent. Events arrive at least once, so an order already
// confirmed (a redelivered event) is skipped.
func (s *Service) SendConfirmation(ctx context.Context, o Order) error {
	c := Confirmation{
		OrderID: o.ID, Item: o.Item, Quantity: o.Quantity,
		Text: fmt.Sprintf("Your order of %d × %s is confirmed.", o.Quantity, o.Item),
	}
	s.mu.Lock()
	dup := slices.ContainsFunc(s.sent, func(c Confirmation) bool { return c.OrderID == o.ID })
	if !dup {
		if len(s.sent) == Keep {
			s.sent = slices.Delete(s.sent, 0, 1)
		}
		s.sent = append(s.sent, c)
	}
	s.mu.Unlock()
	if dup {
		s.log.InfoContext(ctx, fmt.Sprintf("order %s already confirmed; skipping the duplicate event", o.ID),
			"handler", "send_confirmation", "order_id", o.ID)
		return nil
	}
	s.log.InfoContext(ctx, fmt.Sprintf("sending confirmation for order %s (%d × %s)", o.ID, o.Quantity, o.Item),
		"handler", "send_confirmation", "order_id", o.ID)
	return nil
}

// Audit logs every order this instance hears of.
func (s *Service) Audit(ctx context.Context, o Order) error {
	s.log.InfoContext(ctx, fmt.Sprintf("audit: order %s created (%d × %s)", o.ID, o.Quantity, o.Item),
		"handler", "audit", "order_id", o.ID)
	return nil
}

// SentIn are sent()'s arguments: none.
type SentIn struct{}

// Sent returns the last Keep confirmations this instance sent, oldest first.
func (s *Service) Sent(context.Context, SentIn) ([]Confirmation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Confirmation{}, s.sent...), nil // [] rather than null when none
}
