package rpc

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

type argsBase struct {
	ID   int    `json:"id"`
	Note string `json:"note,omitempty"`
}

type ArgsAudit struct {
	By string `json:"by"`
}

type argsEmbedded struct {
	argsBase
	*ArgsAudit `json:"audit,omitempty"` // named: an object argument, not flattened
	Qty        int                      `json:"qty"`
}

type ArgsExtra struct {
	Tag string `json:"tag,omitempty"`
	ID  string `json:"id"` // hidden by the outer id
}

type argsShadow struct {
	*ArgsExtra
	ID int `json:"id"`
}

func TestBindEmbeddedAndNull(t *testing.T) {
	tests := []struct {
		name    string
		typ     reflect.Type
		args    string
		kwargs  string
		want    any
		wantErr string
	}{
		{name: "embedded fields by keyword", typ: reflect.TypeFor[argsEmbedded](),
			kwargs: `{"id": 7, "qty": 2, "note": "n"}`,
			want:   argsEmbedded{argsBase: argsBase{ID: 7, Note: "n"}, Qty: 2}},
		{name: "embedded fields by position", typ: reflect.TypeFor[argsEmbedded](),
			args: `[7, "n", {"by": "ann"}, 2]`,
			want: argsEmbedded{argsBase: argsBase{ID: 7, Note: "n"}, ArgsAudit: &ArgsAudit{By: "ann"}, Qty: 2}},
		{name: "embedded required field missing", typ: reflect.TypeFor[argsEmbedded](),
			kwargs: `{"qty": 2}`, wantErr: `missing required argument "id"`},
		{name: "embedded pointer allocated", typ: reflect.TypeFor[*argsShadow](),
			kwargs: `{"id": 1, "tag": "x"}`, want: &argsShadow{ArgsExtra: &ArgsExtra{Tag: "x"}, ID: 1}},
		{name: "outer field hides embedded one", typ: reflect.TypeFor[argsShadow](),
			kwargs: `{"id": "one"}`, wantErr: `argument "id": want integer, got string`},
		{name: "null for a required argument", typ: reflect.TypeFor[argsEmbedded](),
			kwargs: `{"id": null, "qty": 1}`, wantErr: `argument "id": want integer, got null`},
		{name: "null positional", typ: reflect.TypeFor[argsEmbedded](),
			args: `[1, null, null, null]`, wantErr: `argument "qty": want integer, got null`},
		{name: "null for an optional argument", typ: reflect.TypeFor[argsEmbedded](),
			kwargs: `{"id": 1, "qty": 1, "note": null, "audit": null}`, want: argsEmbedded{argsBase: argsBase{ID: 1}, Qty: 1}},
		{name: "null for any", typ: reflect.TypeFor[struct {
			V any `json:"v"`
		}](), kwargs: `{"v": null}`, want: struct {
			V any `json:"v"`
		}{}},
		{name: "null for a type that decodes JSON itself", typ: reflect.TypeFor[struct {
			Raw json.RawMessage `json:"raw"`
		}](), kwargs: `{"raw": null}`, want: struct {
			Raw json.RawMessage `json:"raw"`
		}{Raw: json.RawMessage("null")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := newBinder(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			req := request{args: []byte(cmp.Or(tt.args, "[]")), kwargs: []byte(cmp.Or(tt.kwargs, "{}"))}
			got, err := b.bind(req)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Interface(), tt.want) {
				t.Fatalf("got %#v, want %#v", got.Interface(), tt.want)
			}
		})
	}
}

type ArgsDupA struct {
	Name string `json:"name"`
}

type ArgsDupB struct {
	Name string `json:"name"`
}

func TestNewBinderRefusesWhatCannotBind(t *testing.T) {
	tests := []struct {
		name    string
		typ     reflect.Type
		wantErr string // "" when the type binds
	}{
		{"not a struct", reflect.TypeFor[int](), "is not a struct"},
		{"pointer to a non-struct", reflect.TypeFor[*[]int](), "is not a struct"},
		{"unexported fields only", reflect.TypeFor[struct{ a, b int }](), "has no field arguments can fill"},
		{"ignored fields only", reflect.TypeFor[struct {
			A int `json:"-"`
		}](), "has no field arguments can fill"},
		{"channel field", reflect.TypeFor[struct{ C chan int }](), "field C: no JSON value decodes into a chan int"},
		{"func field", reflect.TypeFor[struct{ F func() }](), "field F: no JSON value decodes into a func()"},
		{"slice of funcs", reflect.TypeFor[struct{ F []func() }](), "field F: no JSON value decodes into a func()"},
		{"interface with methods", reflect.TypeFor[struct{ E error }](), "field E: no JSON value decodes into the interface error"},
		{"map with struct keys", reflect.TypeFor[struct{ M map[ArgsDupA]int }](), "field M: no JSON object key decodes"},
		// Built with StructOf: vet rightly refuses such types in source.
		{"duplicate JSON names", reflect.StructOf([]reflect.StructField{
			{Name: "A", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
			{Name: "B", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
		}), `argument name "x" is given to 2 fields`},
		{"duplicate names from two embedded structs", reflect.StructOf([]reflect.StructField{
			{Name: "ArgsDupA", Type: reflect.TypeFor[ArgsDupA](), Anonymous: true},
			{Name: "ArgsDupB", Type: reflect.TypeFor[ArgsDupB](), Anonymous: true},
		}), `argument name "name" is given to 2 fields`},
		{"embedded pointer to unexported struct", reflect.TypeFor[struct {
			*argsBase
		}](), "embedded field argsBase is a pointer to an unexported struct"},
		{"no arguments", reflect.TypeFor[struct{}](), ""},
		{"time and any", reflect.TypeFor[struct {
			At time.Time `json:"at"`
			V  any       `json:"v"`
		}](), ""},
		{"outer name wins over embedded", reflect.TypeFor[argsShadow](), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newBinder(tt.typ)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestBindRefusesBeforeDecoding sends requests of millions of items that
// cannot bind: each is refused with the Python-style error, allocating less
// than the body's own size (a decoded list of them would take several times
// the body).
func TestBindRefusesBeforeDecoding(t *testing.T) {
	type pair struct {
		A float64 `json:"a"`
		B float64 `json:"b"`
	}
	b, err := newBinder(reflect.TypeFor[pair]())
	if err != nil {
		t.Fatal(err)
	}
	const n = 1 << 20
	var kwargs, repeated strings.Builder
	for i := range n / 8 {
		fmt.Fprintf(&kwargs, `"k%d":0,`, i)
		repeated.WriteString(`"b":1,`)
	}
	tests := []struct {
		name, body, wantErr string
	}{
		{"positional", `{"args":[` + strings.Repeat("0,", n) + `0],"kwargs":{}}`,
			fmt.Sprintf("takes 2 positional arguments but %d were given", n+1)},
		{"unknown keywords", `{"args":[],"kwargs":{` + kwargs.String() + `"a":1}}`, `unexpected keyword argument "k0"`},
		{"keyword after positional", `{"args":[1],"kwargs":{` + repeated.String() + `"a":1}}`,
			`got multiple values for argument "a"`},
		{"repeated keyword", `{"args":[1],"kwargs":{` + repeated.String() + `"b":2}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			req, err := decodeRequest(contentTypeJSON, body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.bind(req)
			runtime.ReadMemStats(&after)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && got.Interface() != pair{A: 1, B: 2}:
				t.Fatalf("got %+v, want the last value of a repeated keyword", got.Interface())
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(body)) {
				t.Errorf("allocated %d bytes for a body of %d", alloc, len(body))
			}
		})
	}
}
