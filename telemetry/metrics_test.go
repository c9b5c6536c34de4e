package telemetry_test

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
)

// The client metrics' target_service and method labels are bounded whatever
// the calls: declared targets and those that answered, methods that answered.
func TestClientMetricLabelsAreBounded(t *testing.T) {
	mp, reader := readMetrics(t)
	ic, err := telemetry.Metrics(mp, "calc")
	if err != nil {
		t.Fatal(err)
	}
	call := func(service, method string, err error) {
		rc := &rpc.CallInfo{Service: service, Method: method, Caller: "caller"}
		_ = ic(context.Background(), &entrypoint.Call{Kind: entrypoint.KindRPC, Client: true, Service: service, Name: method, Spec: rc},
			func(context.Context) error { return err })
	}
	notFound := &rpc.RemoteError{ExcType: "MethodNotFound", Value: "nope"}
	call("calc", "add", nil)
	call("calc", "nope", notFound)
	call("calc", "\xff\xfe", nil)
	call("\xff\xfe", "add", nil)
	for i := range 300 {
		call("calc", fmt.Sprintf("m%d", i), nil)
		call("calc", fmt.Sprintf("missing%d", i), notFound)
		call(fmt.Sprintf("ghost%d", i), "add", rpc.ErrServiceNotFound)
		call(fmt.Sprintf("other%d", i), "add", nil)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	targets, methods := map[string]bool{}, map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "hypha.rpc.client.calls" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				target, _ := dp.Attributes.Value("target_service")
				method, _ := dp.Attributes.Value("method")
				targets[target.AsString()] = true
				if target.AsString() == "calc" {
					methods[method.AsString()] = true
				}
			}
		}
	}
	if len(targets) != 1+telemetry.MaxMetricTargets+1 || !targets["calc"] || !targets["_OTHER"] || targets["ghost0"] {
		t.Errorf("%d target_service values, want calc, %d others that answered and _OTHER: %v", len(targets), telemetry.MaxMetricTargets, targets)
	}
	if len(methods) != telemetry.MaxMetricMethods+1 || !methods["add"] || !methods["_OTHER"] || methods["nope"] || methods["missing0"] {
		t.Errorf("%d method values of calc, want %d that answered and _OTHER: %v", len(methods), telemetry.MaxMetricMethods, methods)
	}
}

// A kind a plug-in adds is counted too, by kind, service, entrypoint and
// outcome, in hypha_entrypoint_runs; Hypha's own kinds are not counted there.
func TestPluginKindIsCounted(t *testing.T) {
	mp, reader := readMetrics(t)
	ic, err := telemetry.Metrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	errExpected := fmt.Errorf("no such order")
	for _, run := range []error{nil, nil, errExpected, fmt.Errorf("disk full")} {
		call := &entrypoint.Call{Kind: "webhook", Service: "shop", Name: "notify",
			Expected: func(err error) bool { return err == errExpected }}
		_ = ic(context.Background(), call, func(context.Context) error { return run })
	}
	_ = ic(context.Background(), &entrypoint.Call{Kind: entrypoint.KindHTTP, Service: "shop", Name: "GET /"},
		func(context.Context) error { return nil })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "hypha.entrypoint.runs" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				kind, _ := dp.Attributes.Value("kind")
				outcome, _ := dp.Attributes.Value("outcome")
				got[kind.AsString()+"/"+outcome.AsString()] += dp.Value
			}
		}
	}
	want := map[string]int64{"webhook/ok": 2, "webhook/expected_error": 1, "webhook/error": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hypha.entrypoint.runs = %v, want %v", got, want)
	}
}
