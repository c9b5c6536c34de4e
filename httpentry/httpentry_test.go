package httpentry_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/internal/testbroker"
)

// TestGateway sends real HTTP requests to routes served by a real app,
// whose handlers call a backend service over the broker.
func TestGateway(t *testing.T) {
	f := startGateway(t)

	t.Run("path and query", func(t *testing.T) {
		r := do(t, "GET", f.base+"/users/ann?upper=true&tag=a&tag=b", "", nil)
		got := r.json(t)
		if r.status != 200 || got["name"] != "ANN" || len(got["tags"].([]any)) != 2 || r.contentType != "application/json" {
			t.Fatalf("status %d %s: %s", r.status, r.contentType, r.body)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		r := do(t, "POST", f.base+"/sum?n=2", `{"a": 1, "b": 2.5}`, nil)
		if r.status != 200 || strings.TrimSpace(string(r.body)) != "7" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("binding errors are 400", func(t *testing.T) {
		for _, tc := range []struct{ method, path, body, want string }{
			{"GET", "/users/ann?upper=maybe", "", "query parameter upper"},
			{"POST", "/sum", `{"a": 1, "c": 2}`, "unknown field"},
			{"POST", "/sum", `{"a": "one"}`, "JSON body"},
			{"POST", "/sum", `[1, 2]`, "JSON body"},
		} {
			r := do(t, tc.method, f.base+tc.path, tc.body, nil)
			e := r.errorOf(t)
			if r.status != 400 || e["exc_type"] != "IncorrectSignature" || !strings.Contains(e["value"].(string), tc.want) {
				t.Errorf("%s %s %s: status %d, %s; want 400 IncorrectSignature saying %q", tc.method, tc.path, tc.body, r.status, r.body, tc.want)
			}
		}
	})
	t.Run("relayed expected error", func(t *testing.T) {
		r := do(t, "GET", f.base+"/users/bob", "", nil)
		e := r.errorOf(t)
		if r.status != 404 || e["exc_type"] != "NoSuchUser" {
			t.Fatalf("status %d: %s; want 404 NoSuchUser", r.status, r.body)
		}
	})
	t.Run("unexpected errors are opaque", func(t *testing.T) {
		for _, path := range []string{"/fail", "/downstream-panic", "/plain-panic"} {
			r := do(t, "GET", f.base+path, "", nil)
			e := r.errorOf(t)
			id, _ := e["error_id"].(string)
			if r.status != 500 || id == "" || strings.Contains(string(r.body), "fire") {
				t.Errorf("%s: status %d: %s; want 500 with an error id and no detail", path, r.status, r.body)
				continue
			}
			if !regexp.MustCompile(`error_id=`+id).MatchString(f.logs.String()) && !strings.Contains(f.logs.String(), id) {
				t.Errorf("%s: the log has no line with error id %s", path, id)
			}
		}
		if !strings.Contains(f.logs.String(), "secret.txt is on fire") {
			t.Error("the log lacks the failure's detail")
		}
	})
	t.Run("plain handler", func(t *testing.T) {
		r := do(t, "GET", f.base+"/plain/ann", "", nil)
		if r.status != 200 || string(r.body) != "hello ann" || r.contentType != "text/plain" {
			t.Fatalf("status %d %s: %q", r.status, r.contentType, r.body)
		}
	})
	t.Run("an aborted response", func(t *testing.T) {
		resp, err := http.Get(f.base + "/abort")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("the response was not aborted")
		}
		if r := do(t, "GET", f.base+"/plain/ann", "", nil); r.status != 200 {
			t.Fatalf("after an abort: status %d", r.status)
		}
	})
	t.Run("context headers are opt-in", func(t *testing.T) {
		h := map[string]string{"X-Hypha-User-Id": "ann"}
		if got := do(t, "GET", f.base+"/whoami", "", h).json(t); got["user_id"] != "ann" {
			t.Errorf("opted in: the backend saw user_id %v, want ann", got["user_id"])
		}
		if got := do(t, "GET", f.base+"/whoami-untrusted", "", h).json(t); got["user_id"] != "" {
			t.Errorf("not opted in: the backend saw user_id %v, want none", got["user_id"])
		}
	})
	t.Run("one trace from HTTP through RPC", func(t *testing.T) {
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		h := map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}
		got := do(t, "GET", f.base+"/whoami", "", h).json(t)
		if got["here"] != traceID || got["trace_id"] != traceID {
			t.Fatalf("trace ids: gateway %v, backend %v; want both %s", got["here"], got["trace_id"], traceID)
		}
	})
	t.Run("not found and wrong method", func(t *testing.T) {
		if r := do(t, "GET", f.base+"/nope", "", nil); r.status != 404 {
			t.Errorf("status %d, want 404", r.status)
		}
		if r := do(t, "DELETE", f.base+"/sum", "", nil); r.status != 405 {
			t.Errorf("status %d, want 405", r.status)
		}
	})
	t.Run("health on the same address", func(t *testing.T) {
		if r := do(t, "GET", f.base+"/healthz", "", nil); r.status != 200 {
			t.Fatalf("/healthz: status %d", r.status)
		}
	})
}

type twin struct{}

func (twin) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /same", func(context.Context, struct{}) (string, error) { return "", nil })
}

func TestSamePatternInTwoServicesIsAStartError(t *testing.T) {
	_, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "HTTP": map[string]any{"ADDRESS": "127.0.0.1:0"}}),
		framework.Service("one", func() twin { return twin{} }),
		framework.Service("two", func() twin { return twin{} }),
	)
	if err == nil || !strings.Contains(err.Error(), `"GET /same" is registered by services "one" and "two"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRegistrationErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		register func(r *entrypoint.Registry)
		want     string
	}{
		{"path tag without wildcard", func(r *entrypoint.Registry) {
			httpentry.Handle(r, "GET /users", func(context.Context, struct {
				ID string `path:"id"`
			}) (string, error) {
				return "", nil
			})
		}, "no {id}"},
		{"not a struct", func(r *entrypoint.Registry) {
			httpentry.Handle(r, "GET /n", func(context.Context, int) (string, error) { return "", nil })
		}, "must be a struct"},
		{"bad pattern", func(r *entrypoint.Registry) {
			httpentry.HandleHTTP(r, "GET users", http.NotFoundHandler())
		}, "GET users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := entrypoint.NewRegistry("svc")
			tc.register(r)
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
