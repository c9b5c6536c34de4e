package users_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCalculateUserScore runs user_service on the embedded broker with its
// calculator faked.
func TestCalculateUserScore(t *testing.T) {
	calc := hyphatest.NewFakeProxy(calculator.Name).Answer("multiply", 30)
	app := hyphatest.Start(t,
		framework.Service(users.Name, users.New, hyphatest.ReplaceProxy(calculator.Name, calc)))
	score := hyphatest.Hook(t, app, users.Name, "calculate_user_score")

	ctx := contextdata.WithUserID(context.Background(), "u-42")
	var got users.Score
	if err := score(ctx, users.ScoreIn{UserID: "ann", BaseScore: 10, Multiplier: 3}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Score != 30 || got.UserID != "ann" {
		t.Errorf("score = %+v, want ann's 30", got)
	}
	call := calc.Calls()[0]
	var in calculator.Operands
	if err := call.Decode(&in); err != nil || call.Method != "multiply" || in != (calculator.Operands{A: 10, B: 3}) {
		t.Errorf("calculator got %s(%+v), %v", call.Method, in, err)
	}
	if call.Data["user_id"] != "u-42" {
		t.Errorf("the context data did not travel: %v", call.Data)
	}

	calc.Fail("multiply", calculator.ErrDivisionByZero)
	if err := score(ctx, users.ScoreIn{UserID: "ann"}, &got); !errors.Is(err, calculator.ErrDivisionByZero) {
		t.Errorf("err = %v, want calculator's error relayed", err)
	}
}

// TestBatchScores calls the service by hand, with a fake that multiplies.
func TestBatchScores(t *testing.T) {
	calc := hyphatest.NewFakeProxy(calculator.Name).AnswerFunc("multiply", func(_ context.Context, in any) (any, error) {
		var o calculator.Operands
		if err := (hyphatest.Call{In: in}).Decode(&o); err != nil {
			return nil, err
		}
		return o.A * o.B, nil
	})
	s := users.New(users.Deps{Calc: calc})
	ctx := context.Background()
	got, err := s.BatchScores(ctx, users.BatchIn{BaseScores: []float64{1, 2, 3}, Multiplier: 2.5})
	if err != nil || !slices.Equal(got, []float64{2.5, 5, 7.5}) {
		t.Fatalf("BatchScores = %v, %v", got, err)
	}
	if n := len(calc.Calls()); n != 3 {
		t.Errorf("calculator called %d times, want 3", n)
	}
	if _, err := s.BatchScores(ctx, users.BatchIn{BaseScores: make([]float64, users.MaxBatch+1)}); err != users.ErrBatchTooLarge {
		t.Errorf("a batch too large: %v, want ErrBatchTooLarge", err)
	}

	failing := hyphatest.NewFakeProxy(calculator.Name).Fail("multiply", rpc.ErrTimeout)
	if _, err := users.New(users.Deps{Calc: failing}).BatchScores(ctx, users.BatchIn{BaseScores: []float64{1}}); !errors.Is(err, rpc.ErrTimeout) {
		t.Errorf("err = %v, want the calculator's", err)
	}
}

// TestWithTheRealCalculator runs both services on one embedded broker.
func TestWithTheRealCalculator(t *testing.T) {
	app := hyphatest.Start(t,
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New))
	got, err := rpc.Call[[]float64](context.Background(), app.Proxy(users.Name), "batch_scores",
		users.BatchIn{BaseScores: []float64{1, 2}, Multiplier: 3})
	if err != nil || !slices.Equal(got, []float64{3, 6}) {
		t.Fatalf("batch_scores = %v, %v", got, err)
	}
}
