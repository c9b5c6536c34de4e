package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/gateway/gateway"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRoutes runs the gateway on the embedded broker, its calculator and
// user_service faked, and calls it over HTTP.
func TestRoutes(t *testing.T) {
	calc := hyphatest.NewFakeProxy(calculator.Name).Answer("add", 5).Fail("divide", calculator.ErrDivisionByZero)
	usr := hyphatest.NewFakeProxy(users.Name).Answer("calculate_user_score", users.Score{UserID: "7", Score: 30})
	app := hyphatest.Start(t,
		framework.ConfigValues(map[string]any{"HTTP.ADDRESS": "127.0.0.1:0"}),
		framework.Service(gateway.Name, gateway.New,
			hyphatest.ReplaceProxy(calculator.Name, calc), hyphatest.ReplaceProxy(users.Name, usr)))
	base := "http://" + app.Framework().HTTPAddress()
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/calculator/add?a=2&b=3", "", 200, "5"},
		{"GET", "/calculator/divide?a=1&b=0", "", 422, `"exc_type":"ZeroDivisionError"`},
		{"GET", "/calculator/add?a=two", "", 400, `"exc_type":"IncorrectSignature"`},
		{"GET", "/calculator/add?a=NaN&b=1", "", 400, `"exc_type":"IncorrectSignature"`},
		{"GET", "/calculator/add?a=1&b=-Inf", "", 400, `"exc_type":"IncorrectSignature"`},
		{"GET", "/calculator/_hypha_introspect", "", 404, `"exc_type":"NoSuchOperation"`},
		{"GET", "/calculator/%ff%fe?a=1&b=2", "", 404, `"exc_type":"NoSuchOperation"`},
		{"GET", "/calculator/power?a=1&b=2", "", 404, `"exc_type":"NoSuchOperation"`},
		{"POST", "/users/7/score", `{"base_score": 10, "multiplier": 3}`, 200, `{"user_id":"7","score":30}`},
	} {
		status, body := send(t, tc.method, base+tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s; want %d with %s", tc.method, tc.path, status, body, tc.status, tc.want)
		}
	}
	call := usr.Calls()[0]
	var in users.ScoreIn
	if err := call.Decode(&in); err != nil || in.UserID != "7" || in.BaseScore != 10 || in.Multiplier != 3 {
		t.Errorf("user_service got %+v, %v", in, err)
	}
	if call.Data["user_id"] != "u-42" {
		t.Errorf("X-Hypha-User-Id did not become context data: %v", call.Data)
	}
}

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Hypha-User-Id", "u-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
