package jsonscan

import (
	"bytes"
	"encoding/json"
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
		// Members: every member in order, a repeated name each time, or
		// nothing for what is not an object.
		if want := orderedMembers(t, data); !slices.Equal(gotMembers, want) {
			t.Fatalf("Members(%q) = %q, encoding/json: %q", data, gotMembers, want)
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil || arr == nil {
			if len(gotElems) > 0 {
				t.Fatalf("Elements(%q) = %q of what is not an array", data, gotElems)
			}
		} else {
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

// orderedMembers is each member of the JSON object data, in order, as
// encoding/json's tokenizer reads it; none when data is not an object.
func orderedMembers(t *testing.T, data []byte) [][2]string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var members [][2]string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatalf("valid JSON %q: %v", data, err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatalf("valid JSON %q: %v", data, err)
		}
		members = append(members, [2]string{key.(string), string(value)})
	}
	return members
}
