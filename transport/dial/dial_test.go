package dial_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

func TestSchemes(t *testing.T) {
	tests := []struct {
		uri     string
		want    string // the broker's type, or the error's text
		wantErr bool
	}{
		{"amqp://guest:guest@localhost:5672/", "*amqp.connection", false},
		{"AMQPS://guest:guest@localhost:5671/", "*amqp.connection", false},
		{"memory://", "*memory.connection", false},
		{"memory://tests", "*memory.connection", false},
		{"redis://localhost", `scheme "redis" is not one of amqp://, amqps:// or memory://`, true},
		{"localhost:5672", `scheme ""`, true},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			b, err := dial.Dial(t.Context(), tt.uri, dial.Lazy())
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one saying %s", err, tt.want)
				}
				if strings.Contains(err.Error(), "guest") {
					t.Errorf("error shows the URI's credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := fmt.Sprintf("%T", b); got != tt.want {
				t.Fatalf("got %T, want %s", b, tt.want)
			}
		})
	}
}

func TestDialMemory(t *testing.T) {
	t.Cleanup(func() { memory.Reset("dial") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := config.DefaultSettings()
	s.MaxMessageSize = 1
	b, err := dial.Dial(ctx, "memory://dial", dial.Settings(s))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Connected() || b.Ready() != nil {
		t.Fatal("not connected")
	}
	if err := b.DeclareQueue(ctx, transport.Queue{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	err = b.Publish(ctx, transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("too large")}})
	if err == nil {
		t.Fatal("MaxMessageSize was not passed on")
	}
}

// TestDialLogsToLogger: Dial logs the connection's events to Logger.
func TestDialLogsToLogger(t *testing.T) {
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := dial.Dial(ctx, "amqp://guest:guest@127.0.0.1:1/", dial.Logger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err == nil {
		b.Close()
		t.Fatal("dialled a broker that is not there")
	}
	if !strings.Contains(logs.String(), "broker not reachable yet") {
		t.Errorf("the logger got %q, want the connection's warning", logs.String())
	}
}

// TestLazyConnectsOnConnect: with Lazy, Dial returns the connection
// unconnected, and Connect makes it.
func TestLazyConnectsOnConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := dial.Dial(ctx, testbroker.URI(t), dial.Lazy())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Connected() {
		t.Fatal("connected before Connect")
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Connected() {
		t.Fatal("not connected after Connect")
	}
}
