package events

import (
	"reflect"
	"strings"
	"testing"
)

type shipment struct {
	ID    int      `json:"id"`
	Items []string `json:"items"`
}

// fragile panics when it decodes the magic input, as a buggy UnmarshalJSON might.
type fragile struct{ S string }

func (f *fragile) UnmarshalJSON(b []byte) error {
	if string(b) == `"boom"` {
		panic("fragile: boom")
	}
	f.S = string(b)
	return nil
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name    string
		decode  func([]byte) (any, error)
		body    string
		want    any
		wantErr string
	}{
		{name: "payload", decode: decodePayload[shipment], body: `{"id": 7, "items": ["a", "[b"]}`,
			want: shipment{ID: 7, Items: []string{"a", "[b"}}},
		{name: "too deep", decode: decodePayload[shipment],
			body:    `{"items": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
			wantErr: "payload does not decode into events.shipment: JSON nested deeper than 128 levels"},
		{name: "not JSON", decode: decodePayload[shipment], body: `{`, wantErr: "payload does not decode into events.shipment"},
		{name: "null into a struct", decode: decodePayload[shipment], body: ` null `,
			wantErr: "payload does not decode into events.shipment: payload is null"},
		{name: "null into a number", decode: decodePayload[int], body: `null`,
			wantErr: "payload does not decode into int: payload is null"},
		{name: "null into a pointer", decode: decodePayload[*shipment], body: `null`, want: (*shipment)(nil)},
		{name: "null into a map", decode: decodePayload[map[string]int], body: `null`, want: map[string]int(nil)},
		{name: "null into a slice", decode: decodePayload[[]int], body: `null`, want: []int(nil)},
		{name: "null into an interface", decode: decodePayload[any], body: `null`, want: nil},
		{name: "null field", decode: decodePayload[shipment], body: `{"id": 1, "items": null}`, want: shipment{ID: 1}},
		{name: "panicking UnmarshalJSON", decode: decodePayload[fragile], body: `"boom"`,
			wantErr: "payload does not decode into events.fragile: decoding panicked: fragile: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.decode([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || got != nil {
					t.Fatalf("decode = %v, %v; want nil and an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}
