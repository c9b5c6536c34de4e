// Package orders is the "orders" example service: its RPC method create_order
// creates an order and dispatches an order_created event with it, which the
// mailer example handles.
//
// Order ids are random UUIDs, not a counter: several instances of the
// service, or one restarted, never hand out the same id twice, so handlers
// can tell orders apart (and drop a redelivered event) by id alone.
package orders

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
)

// Name is the service's name on the wire; its events go to the exchange
// "orders.events".
const Name = "orders"

// EventOrderCreated is the type of event dispatched for every new order; its
// payload is the Order.
const EventOrderCreated = "order_created"

// ErrInvalidOrder is returned for an order without an item or with a
// quantity below 1; it crosses the wire as exc_type "ValueError".
var ErrInvalidOrder = rpc.NewError("ValueError", "an order needs an item and a quantity of at least 1")

// Order is create_order's result and the order_created event's payload.
type Order struct {
	ID       string `json:"id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// CreateIn are create_order's arguments: orders.create_order("socks", 2) or
// orders.create_order(item="socks", quantity=2).
type CreateIn struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// Service is the orders service.
type Service struct {
	events events.EventDispatcher
	log    *slog.Logger
}

// New builds the service; the container injects its event dispatcher (whose
// source is "orders") and its logger. The dispatcher is an
// events.EventDispatcher, so that a unit test can pass a fake.
func New(d events.EventDispatcher, log *slog.Logger) *Service {
	return &Service{events: d, log: log}
}

// Register declares the service's RPC methods.
func (s *Service) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "create_order", s.CreateOrder,
		rpc.Doc("Creates an order of quantity × item, dispatches order_created with it, and returns it."),
		rpc.Expected(ErrInvalidOrder))
}

// CreateOrder creates an order with a new id and dispatches order_created
// with it. It returns the order once the broker has confirmed the event; when
// the event cannot be dispatched it returns that error instead, so a caller
// never sees an order nobody else heard of.
func (s *Service) CreateOrder(ctx context.Context, in CreateIn) (Order, error) {
	if in.Item == "" || in.Quantity < 1 {
		return Order{}, ErrInvalidOrder
	}
	o := Order{ID: uuid.NewString(), Item: in.Item, Quantity: in.Quantity}
	if err := s.events.Dispatch(ctx, EventOrderCreated, o); err != nil {
		return Order{}, err
	}
	s.log.InfoContext(ctx, "order created", "order_id", o.ID, "item", o.Item, "quantity", o.Quantity)
	return o, nil
}
