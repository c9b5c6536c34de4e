// Package gateway is the "gateway" example service: it exposes calculator and
// user_service over HTTP, and logs a heartbeat once per interval across all
// its instances (a timer.Once).
//
//	curl 'http://127.0.0.1:8000/calculator/add?a=2&b=3'
//	curl -X POST -H 'X-Hypha-User-Id: u-42' -H 'Content-Type: application/json' -d '{"base_score": 10, "multiplier": 3}' http://127.0.0.1:8000/users/7/score
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"go.uber.org/fx"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
)

// Name is the service's name.
const Name = "gateway"

// HeartbeatInterval is how often one instance of the gateway logs a heartbeat.
const HeartbeatInterval = 10 * time.Second

// Operations are the calculator's methods that GET /calculator/{op}
// forwards to. A path names one of them or gets 404: the path is any
// client's choice, and must not reach the calculator's other methods, its
// built-in introspection included.
var Operations = []string{"add", "subtract", "multiply", "divide"}

// ErrNoSuchOperation answers GET /calculator/{op} for an op not in Operations.
var ErrNoSuchOperation = rpc.NewError("NoSuchOperation", "no such operation: use add, subtract, multiply or divide")

// Deps are what the container injects: proxies to the services the gateway
// exposes, and its logger.
type Deps struct {
	fx.In
	Calc  rpc.Caller `name:"calculator"`
	Users rpc.Caller `name:"user_service"`
	Log   *slog.Logger
}

// Service is the gateway.
type Service struct {
	calc, users rpc.Caller
	log         *slog.Logger
	host        string
}

// New builds the gateway from its dependencies.
func New(d Deps) *Service {
	host, _ := os.Hostname()
	return &Service{calc: d.Calc, users: d.Users, log: d.Log, host: host}
}

// Register declares the gateway's HTTP routes and its heartbeat.
func (s *Service) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /calculator/{op}", s.Calculate,
		httpentry.Status(http.StatusUnprocessableEntity, calculator.ErrDivisionByZero),
		httpentry.Status(http.StatusNotFound, ErrNoSuchOperation, rpc.ErrMethodNotFound))
	httpentry.Handle(r, "POST /users/{user_id}/score", s.Score, httpentry.ContextHeaders())
	timer.Handle(r, "heartbeat", HeartbeatInterval, s.Heartbeat, timer.Once(), timer.Eager())
}

// CalculateIn is GET /calculator/{op}'s input: the calculator's method and
// its operands, from the query.
type CalculateIn struct {
	Op string  `path:"op"`
	A  float64 `query:"a"`
	B  float64 `query:"b"`
}

// Calculate calls calculator.<op>(a, b): 404 for an op not in Operations,
// 422 for a division by zero.
func (s *Service) Calculate(ctx context.Context, in CalculateIn) (float64, error) {
	if !slices.Contains(Operations, in.Op) {
		return 0, ErrNoSuchOperation
	}
	return rpc.Call[float64](ctx, s.calc, in.Op, calculator.Operands{A: in.A, B: in.B})
}

// ScoreIn is POST /users/{user_id}/score's input: the user from the path,
// the rest from the JSON body.
type ScoreIn struct {
	UserID     string  `path:"user_id" json:"-"`
	BaseScore  float64 `json:"base_score"`
	Multiplier float64 `json:"multiplier"`
}

// Score calls user_service.calculate_user_score, with the context data the
// request's X-Hypha-* headers set (X-Hypha-User-Id, say).
func (s *Service) Score(ctx context.Context, in ScoreIn) (users.Score, error) {
	s.log.InfoContext(ctx, "scoring", "user_id", in.UserID, "caller", contextdata.UserID(ctx))
	return rpc.Call[users.Score](ctx, s.users, "calculate_user_score",
		users.ScoreIn{UserID: in.UserID, BaseScore: in.BaseScore, Multiplier: in.Multiplier})
}

// Heartbeat logs that the gateway is alive: once per HeartbeatInterval for
// all instances together.
func (s *Service) Heartbeat(ctx context.Context) error {
	s.log.InfoContext(ctx, "gateway heartbeat", "host", s.host, "pid", os.Getpid())
	return nil
}
