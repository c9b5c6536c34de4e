package introspect_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDescribeCalculator(t *testing.T) {
	t.Parallel()
	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	d, err := introspect.Fetch(context.Background(), app.Proxy(calculator.Name))
	if err != nil {
		t.Fatal(err)
	}
	if d.Service != calculator.Name || len(d.Methods) != 4 || len(d.Handlers) != 0 {
		t.Fatalf("description = %+v, want calculator's 4 methods and no handlers", d)
	}
	div, ok := d.Method("divide")
	if !ok {
		t.Fatalf("no divide in %+v", d.Methods)
	}
	if div.Doc != "Returns a ÷ b." || div.Signature() != "divide(a, b)" {
		t.Errorf("divide: doc %q, signature %q", div.Doc, div.Signature())
	}
	if len(div.Errors) != 1 || div.Errors[0].ExcType != "ZeroDivisionError" ||
		!strings.HasSuffix(div.Errors[0].ExcPath, "calculator.ZeroDivisionError") {
		t.Errorf("divide's errors = %+v, want ZeroDivisionError", div.Errors)
	}
	if got := div.Input["required"]; !reflect.DeepEqual(got, []any{"a", "b"}) {
		t.Errorf("args_schema required = %v, want [a b]", got)
	}
	if got := div.Result["type"]; got != "number" {
		t.Errorf("result_schema type = %v, want number", got)
	}
	if _, ok := d.Method(introspect.Method); ok {
		t.Error("the built-in method lists itself")
	}
}

// TestEventsOnlyServiceAnswers: a service with only event handlers answers
// the built-in method too.
func TestEventsOnlyServiceAnswers(t *testing.T) {
	t.Parallel()
	app := hyphatest.Start(t, framework.Service("listener", func() listener { return listener{} }))
	d, err := introspect.Fetch(context.Background(), app.Proxy("listener"))
	if err != nil {
		t.Fatal(err)
	}
	want := []introspect.HandlerInfo{{
		Name: "on_paid", Source: "billing", EventType: "paid", HandlerType: "service pool",
		Queue: "evt-billing-paid--listener.on_paid", Reliable: true, RequeueOnError: true,
	}}
	if len(d.Methods) != 0 || len(d.Handlers) != 1 {
		t.Fatalf("description = %+v, want one handler and no method", d)
	}
	got := d.Handlers[0]
	got.Payload = nil
	if !reflect.DeepEqual([]introspect.HandlerInfo{got}, want) {
		t.Errorf("handlers = %+v, want %+v", got, want[0])
	}
	if props := d.Handlers[0].Payload["properties"].(map[string]any); props["invoice"] == nil {
		t.Errorf("payload_schema = %v, want the invoice property", d.Handlers[0].Payload)
	}
}

type listener struct{}

type paid struct {
	Invoice string `json:"invoice"`
}

func (listener) Register(r *entrypoint.Registry) {
	events.Handle(r, "on_paid", "billing", "paid", func(context.Context, paid) error { return nil }, events.RequeueOnError())
}

// TestReservedName: rpc.Handle refuses the built-in method's name.
func TestReservedName(t *testing.T) {
	r := entrypoint.NewRegistry("svc")
	rpc.Handle(r, introspect.Method, func(context.Context, struct{}) (int, error) { return 0, nil })
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("Err = %v, want the name refused as reserved", err)
	}
	if strings.Contains(introspect.Method, ".") {
		t.Fatalf("%q has a dot: requests are routed by <service>.<method>", introspect.Method)
	}
}

// stub answers every call with one error, as a nameko service without the method does.
type stub struct {
	calls int
	err   error
}

func (s *stub) Call(context.Context, string, any, any) error { s.calls++; return s.err }
func (s *stub) CallAsync(context.Context, string, any) *rpc.Reply {
	return rpc.ReplyError(s.err)
}

// TestFetchNotHypha: a service that does not know the method is asked three
// times (another instance may be a Hypha one), then reported as not Hypha.
func TestFetchNotHypha(t *testing.T) {
	s := &stub{err: &rpc.RemoteError{ExcType: "MethodNotFound", ExcPath: "nameko.exceptions.MethodNotFound", Value: introspect.Method}}
	_, err := introspect.Fetch(context.Background(), s)
	if !errors.Is(err, introspect.ErrNotHypha) || s.calls != 3 {
		t.Fatalf("Fetch: %v after %d calls, want ErrNotHypha after 3", err, s.calls)
	}
	s = &stub{err: rpc.ErrTimeout}
	if _, err := introspect.Fetch(context.Background(), s); !errors.Is(err, rpc.ErrTimeout) || s.calls != 1 {
		t.Fatalf("Fetch: %v after %d calls, want the timeout at once", err, s.calls)
	}
}

type node struct {
	Name     string    `json:"name"`
	Children []node    `json:"children,omitempty"`
	Parent   *node     `json:"parent"`
	At       time.Time `json:"at"`
	Raw      json.RawMessage
	Tags     map[string]int `json:"tags,omitzero"`
	Data     []byte         `json:"data"`
	hidden   int
	Skipped  int `json:"-"`
	Embedded
}

type Embedded struct {
	Extra uint8 `json:"extra"`
	Name  string
}

func TestSchema(t *testing.T) {
	s := introspect.Schema(reflect.TypeFor[node]())
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`"$defs":{"github.com.hypha-go.hypha.introspect_test.node":`,
		`"children":{"items":{"$ref":"#/$defs/github.com.hypha-go.hypha.introspect_test.node"}`,
		`"at":{"format":"date-time","type":"string"}`,
		`"data":{"contentEncoding":"base64","type":"string"}`,
		`"extra":{"minimum":0,"type":"integer"}`,
		`"Raw":{}`,
		`"required":["name","at","Raw","data","extra","Name"]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("schema lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") || strings.Contains(got, "Skipped") {
		t.Errorf("schema has a field JSON leaves out:\n%s", got)
	}
	_ = node{}.hidden
}

func TestDescribeListsRawMethods(t *testing.T) {
	r := entrypoint.NewRegistry("files")
	rpc.HandleRaw(r, "upload", func(context.Context, *rpc.RawRequest, *rpc.RawReply) error { return nil },
		rpc.Doc("Stores the body."))
	d := introspect.Describe(r)
	m, ok := d.Method("upload")
	if !ok || !m.Raw || m.Doc != "Stores the body." || m.Args == nil || m.Errors == nil {
		t.Fatalf("Describe listed %+v (found %v), want the raw method upload with its doc", m, ok)
	}
}

// Every kind of entrypoint is described, as it describes itself: timers and
// HTTP routes too; the built-in method is left out.
func TestDescribeEveryKind(t *testing.T) {
	r := entrypoint.NewRegistry("shop")
	rpc.Handle(r, "price", func(context.Context, struct {
		Item string `json:"item"`
	}) (float64, error) {
		return 0, nil
	}, rpc.Doc("Prices an item."))
	events.Handle(r, "on_sold", "till", "sold", func(context.Context, string) error { return nil })
	timer.Handle(r, "restock", time.Minute, func(context.Context) error { return nil }, timer.Once(), timer.Eager())
	httpentry.Handle(r, "GET /items/{id}", func(context.Context, struct{}) (string, error) { return "", nil })
	introspect.Register(r)
	body, err := json.Marshal(introspect.Describe(r))
	if err != nil {
		t.Fatal(err)
	}
	var d introspect.Description
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range d.Entrypoints {
		got = append(got, string(e.Kind)+" "+e.Name)
	}
	want := []string{"rpc price", "event on_sold", "timer restock", "http GET /items/{id}"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("described %q, want %q", got, want)
	}
	price, sold, restock, route := d.Entrypoints[0], d.Entrypoints[1], d.Entrypoints[2], d.Entrypoints[3]
	if args, _ := price.Detail["args"].([]any); price.Doc != "Prices an item." || len(args) != 1 {
		t.Errorf("price described as %+v", price)
	}
	if sold.Detail["source"] != "till" || sold.Detail["event_type"] != "sold" || sold.Detail["handler_type"] != "service pool" {
		t.Errorf("on_sold described as %+v", sold)
	}
	if restock.Detail["interval"] != "1m0s" || restock.Detail["interval_seconds"] != 60.0 ||
		restock.Detail["once"] != true || restock.Detail["eager"] != true {
		t.Errorf("restock described as %+v", restock)
	}
	if route.Detail["pattern"] != "GET /items/{id}" || route.Detail["typed"] != true {
		t.Errorf("the route described as %+v", route)
	}
	if len(d.Methods) != 1 || len(d.Handlers) != 1 {
		t.Errorf("methods %+v and handlers %+v, want price and on_sold", d.Methods, d.Handlers)
	}
}
