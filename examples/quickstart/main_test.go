package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestQuickstartNeedsNoBroker runs the whole tour on the embedded broker.
func TestQuickstartNeedsNoBroker(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Setenv("AMQP_URI", "")
	t.Setenv("HYPHA_CONFIG", "") // the defaults; the package folder has no config.yaml
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"on memory://quickstart",
		"calculator.add(a=2, b=3) = 5",
		"→ ZeroDivisionError: division by zero",
		"user_service.batch_scores([1 2 3 4], multiplier=2.5) = [2.5 5 7.5 10]",
		"[context user_id=u-42]",
		"mailer.sent() holds the confirmation of order",
		"curl 'http://127.0.0.1:",
		"/calculator/add?a=2&b=3' → 200 5",
		`→ 422 {"error":{"exc_type":"ZeroDivisionError"`,
		`/users/7/score' → 200 {"user_id":"7","score":30}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the tour lacks %q:\n%s", want, out.String())
		}
	}
}
