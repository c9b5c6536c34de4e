package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/jsonlimit"
)

// fuzzOrder is a typical event payload: scalars, optional fields, a time,
// nested lists and maps.
type fuzzOrder struct {
	ID       int64             `json:"id"`
	Customer string            `json:"customer"`
	Total    float64           `json:"total"`
	Paid     bool              `json:"paid"`
	Coupon   *string           `json:"coupon,omitempty"`
	PlacedAt time.Time         `json:"placed_at"`
	Lines    []fuzzLine        `json:"lines"`
	Meta     map[string]any    `json:"meta,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

type fuzzLine struct {
	SKU   string `json:"sku"`
	Qty   uint16 `json:"qty"`
	Price int32  `json:"price"`
}

func FuzzDecodePayload(f *testing.F) {
	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	for _, b := range []string{
		`{"id": 1, "customer": "ann", "total": 9.5, "paid": true, "placed_at": "2024-05-01T12:00:00Z",
		  "lines": [{"sku": "a-1", "qty": 2, "price": 300}], "meta": {"src": ["web", {"v": 2}]}}`,
		`{"id": 3000000000, "lines": [{"qty": 3000000000, "price": 3000000000}]}`,
		`{"id": 1e400}`,
		`{"placed_at": "not a time"}`,
		`{"coupon": null, "lines": null, "meta": null}`,
		`{"meta": {"x": ` + deep + `}}`,
		`{"lines": [` + strings.Repeat(`{},`, 8192) + `{}]}`,
		`{"customer": "\u00e9\ud800\u0000\"[{", "labels": {"\u005b": "\\"}}`,
		"{\"customer\": \"\xff\xfe\"}",
		`{"ID": 2, "id": 3, "Id": 4}`,
		``, `null`, `[]`, `"order"`, `3000000000`, `{`, `{"id": 1} {"id": 2}`,
	} {
		f.Add([]byte(b))
	}
	r := entrypoint.NewRegistry("fuzz")
	Handle(r, "on_order", "orders", "placed", func(context.Context, fuzzOrder) error { return nil })
	if err := r.Err(); err != nil {
		f.Fatal(err)
	}
	decode := entrypoint.Of[*Handler](r)[0].decode
	f.Fuzz(func(t *testing.T, body []byte) {
		payload, err := decode(body)
		// The model: encoding/json's answer, refused when nested too deep
		// or null (fuzzOrder cannot hold null).
		var plain fuzzOrder
		plainErr := json.Unmarshal(body, &plain)
		depthErr := jsonlimit.CheckDepth(body, jsonlimit.MaxDepth)
		null := bytes.Equal(bytes.TrimSpace(body), []byte("null"))
		if err != nil {
			if payload != nil || !strings.HasPrefix(err.Error(), "payload does not decode into events.fuzzOrder: ") {
				t.Fatalf("decode(%q) = %v, %q", body, payload, err)
			}
			var de *jsonlimit.DepthError
			if errors.As(err, &de) != (depthErr != nil) {
				t.Fatalf("decode(%q) failed with %v; the depth check says %v", body, err, depthErr)
			}
			if plainErr == nil && depthErr == nil && !null {
				t.Fatalf("decode(%q) failed with %v, but the body decodes", body, err)
			}
			return
		}
		if depthErr != nil || plainErr != nil || null {
			t.Fatalf("decode(%q) succeeded; depth check: %v, json.Unmarshal: %v, null: %v", body, depthErr, plainErr, null)
		}
		order, ok := payload.(fuzzOrder)
		if !ok {
			t.Fatalf("decode(%q) = %T, want fuzzOrder", body, payload)
		}
		if !reflect.DeepEqual(order, plain) {
			t.Fatalf("decode(%q) = %#v; json.Unmarshal gives %#v", body, order, plain)
		}
	})
}
