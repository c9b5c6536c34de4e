package framework_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
)

// Requests whose method names a caller chose (random, invalid UTF-8, too
// long), expired before they started or not, count under the service's
// registered methods or "_OTHER", and /metrics stays 200.
func TestServerMetricLabelsComeFromTheRegistry(t *testing.T) {
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"METRICS": map[string]any{"ADDRESS": "127.0.0.1:0"}}),
		framework.Service(calculator.Name, calculator.New),
	)
	ch := rawamqp.Channel(t, testbroker.URI(t), nil)
	names := []string{"\xff\xfe", "\xc3(", strings.Repeat("m", 200)}
	for i := range 50 {
		names = append(names, fmt.Sprintf("random_%d", i))
	}
	past := time.Now().Add(-time.Minute).UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range names {
		for _, headers := range []amqp091.Table{{"x-hypha-deadline": past}, {}} {
			if err := ch.PublishWithContext(ctx, "nameko-rpc", calculator.Name+"."+name, false, false, amqp091.Publishing{
				ContentType: "application/json", Body: []byte(`{"args": [], "kwargs": {}}`), Headers: headers,
				CorrelationId: "c-" + name,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for {
		resp, err := http.Get("http://" + app.MetricsAddress() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics: status %d %s", resp.StatusCode, body)
		}
		if strings.Contains(body, `hypha_rpc_server_expired_total{method="_OTHER"`) &&
			strings.Contains(body, `hypha_rpc_server_calls_total{method="_OTHER"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no expired and handled calls under method _OTHER in\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "hypha_rpc_server_") && strings.Contains(line, "random_") {
			t.Errorf("a caller's method name became a label: %s", line)
		}
	}
}
