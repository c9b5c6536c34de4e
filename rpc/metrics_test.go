package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hypha-go/hypha/rpc"
)

// The client metrics' target_service and method labels are bounded whatever
// the calls: declared targets and those that answered, methods that answered.
func TestClientMetricLabelsAreBounded(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	ic, err := rpc.ClientMetrics(mp, "caller", "calc")
	if err != nil {
		t.Fatal(err)
	}
	call := func(service, method string, err error) {
		_, _ = ic(context.Background(), &rpc.CallInfo{Service: service, Method: method},
			func(context.Context, *rpc.CallInfo) (json.RawMessage, error) { return nil, err })
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
	if len(targets) != 1+rpc.MaxMetricTargets+1 || !targets["calc"] || !targets["_OTHER"] || targets["ghost0"] {
		t.Errorf("%d target_service values, want calc, %d others that answered and _OTHER: %v", len(targets), rpc.MaxMetricTargets, targets)
	}
	if len(methods) != rpc.MaxMetricMethods+1 || !methods["add"] || !methods["_OTHER"] || methods["nope"] || methods["missing0"] {
		t.Errorf("%d method values of calc, want %d that answered and _OTHER: %v", len(methods), rpc.MaxMetricMethods, methods)
	}
}
