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

// TestWhatCannotTravelIs400 runs the gateway with the real calculator and
// user_service on the embedded broker, which refuses what RabbitMQ would
// (and there, would have closed the connection over): a path value that
// makes a routing key over 255 bytes and a context header whose name is
// over 255 bytes are answered 400 at once, and the next request works.
func TestWhatCannotTravelIs400(t *testing.T) {
	app := hyphatest.Start(t,
		framework.ConfigValues(map[string]any{"HTTP.ADDRESS": "127.0.0.1:0", "RPC_TIMEOUT": 60}),
		framework.Service(gateway.Name, gateway.New),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New))
	base := "http://" + app.Framework().HTTPAddress()
	for _, tc := range []struct {
		name, method, path, header, body string
		status                           int
		want                             []string
	}{
		// The gateway forwards its four operations only: a long name is
		// refused before any call.
		{"routing key", "GET", "/calculator/" + strings.Repeat("m", 250) + "?a=1&b=2", "", "", http.StatusNotFound,
			[]string{"NoSuchOperation"}},
		{"context header", "POST", "/users/7/score", "X-Hypha-" + strings.Repeat("K", 260), `{"base_score": 1, "multiplier": 2}`,
			http.StatusBadRequest, []string{"header", "267 bytes", "255"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set(tc.header, "1")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s; want %d", resp.StatusCode, b, tc.status)
			}
			for _, s := range tc.want {
				if !strings.Contains(string(b), s) {
					t.Errorf("%s does not say %q", b, s)
				}
			}
			if status, body := send(t, "GET", base+"/calculator/add?a=2&b=3", ""); status != 200 || body != "5" {
				t.Fatalf("the next request: %d %s", status, body)
			}
		})
	}
}
