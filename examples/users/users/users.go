// Package users is the "user_service" example service: it computes scores by
// calling the calculator service through an injected proxy.
package users

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
)

// Name is the service's name on the wire.
const Name = "user_service"

// Deps are what the container injects: a proxy to "calculator", owned by this
// service. It is declared as an rpc.Caller, so that a unit test can pass a fake.
type Deps struct {
	fx.In
	Calc rpc.Caller `name:"calculator"`
}

// Service is the user service.
type Service struct{ calc rpc.Caller }

// New builds the service from its dependencies.
func New(d Deps) *Service { return &Service{calc: d.Calc} }

// Register declares the service's RPC methods.
func (s *Service) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "calculate_user_score", s.CalculateUserScore,
		rpc.Doc("Returns the user's score: base_score × multiplier, computed by calculator."))
	rpc.Handle(r, "batch_scores", s.BatchScores, rpc.Expected(ErrBatchTooLarge),
		rpc.Doc("Returns base_score × multiplier for each base score, computed in parallel."))
}

// ScoreIn are calculate_user_score's arguments.
type ScoreIn struct {
	UserID     any     `json:"user_id"`
	BaseScore  float64 `json:"base_score"`
	Multiplier float64 `json:"multiplier"`
}

// Score is a user's score.
type Score struct {
	UserID any     `json:"user_id"`
	Score  float64 `json:"score"`
}

type operands struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// CalculateUserScore returns base_score × multiplier for the user, computed by
// calculator.multiply.
func (s *Service) CalculateUserScore(ctx context.Context, in ScoreIn) (Score, error) {
	score, err := rpc.Call[float64](ctx, s.calc, "multiply", operands{in.BaseScore, in.Multiplier})
	if err != nil {
		return Score{}, err
	}
	return Score{UserID: in.UserID, Score: score}, nil
}

// BatchIn are batch_scores' arguments.
type BatchIn struct {
	BaseScores []float64 `json:"base_scores"`
	Multiplier float64   `json:"multiplier"`
}

// MaxBatch bounds batch_scores: one call fans out to at most this many.
const MaxBatch = 1000

// ErrBatchTooLarge is batch_scores' answer to more than MaxBatch base scores.
var ErrBatchTooLarge = rpc.NewError("ValueError", fmt.Sprintf("at most %d base scores at once", MaxBatch))

// BatchScores multiplies every base score in parallel: one CallAsync each,
// then the results in order.
func (s *Service) BatchScores(ctx context.Context, in BatchIn) ([]float64, error) {
	if len(in.BaseScores) > MaxBatch {
		return nil, ErrBatchTooLarge
	}
	replies := make([]*rpc.Reply, len(in.BaseScores))
	for i, b := range in.BaseScores {
		replies[i] = s.calc.CallAsync(ctx, "multiply", operands{b, in.Multiplier})
	}
	out := make([]float64, len(replies))
	for i, r := range replies {
		if err := r.Result(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
