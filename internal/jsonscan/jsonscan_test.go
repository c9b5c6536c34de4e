package jsonscan

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func TestMembersAndElements(t *testing.T) {
	body := []byte(` { "args" : [1, "a,]}\"", {"x": [2, {}]}, null, -1.5e3, true] ,
		"kw\u0061rgs": {"a": "b"}, "ñ": 1, "args": [] } `)
	var names []string
	var values []string
	for name, v := range Members(body) {
		names = append(names, name)
		values = append(values, string(v))
	}
	if want := []string{"args", "kwargs", "ñ", "args"}; !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	if values[1] != `{"a": "b"}` {
		t.Fatalf("kwargs value %q", values[1])
	}
	var elems []string
	for e := range Elements([]byte(values[0])) {
		elems = append(elems, string(e))
	}
	if want := []string{`1`, `"a,]}\""`, `{"x": [2, {}]}`, `null`, `-1.5e3`, `true`}; !slices.Equal(elems, want) {
		t.Fatalf("elements %q, want %q", elems, want)
	}
	for range Elements([]byte(`[]`)) {
		t.Fatal("an empty array has no elements")
	}
	for range Members([]byte(`[1]`)) {
		t.Fatal("an array has no members")
	}
}

func TestKind(t *testing.T) {
	for in, want := range map[string]string{`{}`: "an object", ` [1]`: "a list", `"s"`: "a string", `true`: "a boolean",
		`false`: "a boolean", `null`: "null", `-1`: "a number", ``: "nothing"} {
		if got := Kind([]byte(in)); got != want {
			t.Errorf("Kind(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzScan checks Members and Elements against encoding/json on valid JSON,
// and that they never panic on anything else.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"args": [1, 2], "kwargs": {}}`, `[1, "x", {"a": [null]}, [[]], "\\\""]`,
		`{"\u00e9": 1, "a\"b": {"c": "}"}, "a": 2, "a": 3}`, `{"a": [1, 2`, `{`, `[`, `"`, `{"a" 1}`, `[1 2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var gotMembers [][2]string
		for k, v := range Members(data) {
			gotMembers = append(gotMembers, [2]string{k, string(v)})
		}
		var gotElems []string
		for e := range Elements(data) {
			gotElems = append(gotElems, string(e))
		}
		if !json.Valid(data) {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) == nil && obj != nil {
			last := map[string]string{}
			for _, m := range gotMembers {
				last[m[0]] = m[1]
			}
			want := map[string]string{}
			for k, v := range obj {
				want[k] = string(v)
			}
			if !maps.Equal(last, want) {
				t.Fatalf("Members(%q) = %q, encoding/json: %q", data, last, want)
			}
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) == nil && arr != nil {
			if len(arr) != len(gotElems) {
				t.Fatalf("Elements(%q) = %q, encoding/json: %q", data, gotElems, arr)
			}
			for i := range arr {
				if !bytes.Equal(arr[i], []byte(gotElems[i])) {
					t.Fatalf("Elements(%q)[%d] = %q, encoding/json: %q", data, i, gotElems[i], arr[i])
				}
			}
		}
	})
}
