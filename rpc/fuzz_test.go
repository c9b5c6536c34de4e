package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/internal/jsonlimit"
)

// hostileBodies are JSON (and not-quite-JSON) bodies every decoder's fuzz
// corpus starts from, besides its own well-formed ones.
func hostileBodies() []string {
	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	long := "[" + strings.Repeat("0,", 8192) + "0]" // 8193 elements
	return []string{
		``, `null`, `{}`, `[]`, `"args"`, `3000000000`, `{`, `not json`, "\xff\xfe",
		`{"args": [3000000000, -3000000000, 1e400, 123456789012345678901234567890], "kwargs": {}}`,
		`{"args": ` + deep + `, "kwargs": {}}`,
		`{"args": ` + long + `, "kwargs": {"x": ` + long + `}}`,
		`{"args": null, "kwargs": null}`,
		`{"args": [], "kwargs": [], "args": {}}`,
		`{"args": [1], "kwargs": {}, "ARGS": [1, 2]}`,
		`{"args": ["\u0000\ud800\u005b\"["], "kwargs": {"\u006e": "\\"}}`,
		"{\"args\": [\"\xff\xc0\"], \"kwargs\": {\"\xfe\": 1}}",
		`{"args": [1, 2], "kwargs": {}} trailing`,
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, ct := range []string{contentTypeJSON, "", contentTypeJSON + "; charset=utf-8", "application/x-pickle"} {
		f.Add(ct, []byte(`{"args": [1, 2], "kwargs": {}}`))
		f.Add(ct, []byte(`{"args": [], "kwargs": {"a": 1, "b": {"c": [true, null]}}}`))
		f.Add(ct, []byte(`{"args": [1], "kwargs": {"a": 2, "a" : [ 3 ]}, "args": [ "x" , {"y": null} ]}`))
		f.Add(ct, []byte(`{"args": {"a": 1}, "kwargs": {}}`))
	}
	for _, b := range hostileBodies() {
		f.Add(contentTypeJSON, []byte(b))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, err := decodeRequest(contentType, body)
		wantArgs, wantKwargs, whyNot := requestModel(contentType, body)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("decodeRequest(%q, %q) failed with an empty message", contentType, body)
			}
			if whyNot == nil {
				t.Fatalf("decodeRequest(%q, %q) failed: %v; want %q and %q", contentType, body, err, wantArgs, wantKwargs)
			}
			return
		}
		if whyNot != nil {
			t.Fatalf("decodeRequest(%q, %q) succeeded; want an error: %v", contentType, body, whyNot)
		}
		if args := argsOf(req); !slices.EqualFunc(args, wantArgs, sameJSON) {
			t.Fatalf("decodeRequest(%q): args %q, want %q", body, args, wantArgs)
		}
		if kwargs := kwargsOf(req); !maps.EqualFunc(kwargs, wantKwargs, sameJSON) {
			t.Fatalf("decodeRequest(%q): kwargs %q, want %q", body, kwargs, wantKwargs)
		}
	})
}

// sameJSON reports whether a and b are the same bytes of JSON.
func sameJSON(a, b json.RawMessage) bool { return bytes.Equal(a, b) }

// requestModel reads a nameko request with encoding/json alone: its args and
// kwargs, or why nameko refuses it.
func requestModel(contentType string, body []byte) (args []json.RawMessage, kwargs map[string]json.RawMessage, whyNot error) {
	if ct := strings.TrimSpace(strings.Split(contentType, ";")[0]); ct != "" && ct != contentTypeJSON {
		return nil, nil, errors.New("content type")
	}
	if err := jsonlimit.CheckDepth(body, jsonlimit.MaxDepth); err != nil {
		return nil, nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, nil, fmt.Errorf("not an object: %v", err)
	}
	if err := json.Unmarshal(top["args"], &args); err != nil || args == nil {
		return nil, nil, fmt.Errorf("args not a list: %v", err)
	}
	if err := json.Unmarshal(top["kwargs"], &kwargs); err != nil || kwargs == nil {
		return nil, nil, fmt.Errorf("kwargs not an object: %v", err)
	}
	return args, kwargs, nil
}

func FuzzDecodeReply(f *testing.F) {
	for _, b := range []string{
		`{"result": 3, "error": null}`,
		`{"result": null, "error": {"exc_type": "ZeroDivisionError", "exc_path": "builtins.ZeroDivisionError", "exc_args": ["division by zero"], "value": "division by zero"}}`,
		`{"result": null, "error": {"exc_type": "MethodNotFound", "exc_path": "nameko.exceptions.MethodNotFound", "exc_args": ["nope"], "value": "nope"}}`,
		`{"result": null, "error": {"exc_type": "X", "exc_path": "x.X", "exc_args": "not a list", "value": "v"}}`,
		`{"result": null, "error": {"exc_type": "X", "exc_path": "x.X", "exc_args": [{"a": [1]}, 3000000000, null, true], "value": "v"}}`,
		`{"result": null, "error": {"exc_type": 1, "exc_path": null, "exc_args": null, "value": []}}`,
		`{"result": null, "error": {}}`,
		`{"result": [1, {"a": "b"}], "error": false}`,
		`{"result": 1, "result": {"b": 2}, "error": {"exc_type": "X"}, "error": null}`,
		`{"r\u0065sult": "escaped", "Result": 1, "ERROR": {}}`,
		` { "error" : null , "result" : [ 1 , "x" ] } `,
		`{"error": {"exc_type": "X", "exc_args": ["a"]}, "result": 5}`,
		`{"result": {"deep": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}, "error": null}`,
	} {
		f.Add([]byte(b))
	}
	for _, b := range hostileBodies() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		result, err := decodeReply(body)
		if err != nil && err.Error() == "" {
			t.Fatalf("decodeReply(%q) failed with an empty message (%#v)", body, err)
		}
		wantResult, wantRemote, wantErr := replyModel(body)
		var remote *RemoteError
		switch {
		case wantErr != nil:
			if err == nil || errors.As(err, &remote) || result != nil {
				t.Fatalf("decodeReply(%q) = %q, %v; want a local error (%v)", body, result, err, wantErr)
			}
		case wantRemote != nil:
			if !errors.As(err, &remote) || result != nil || !reflect.DeepEqual(*remote, *wantRemote) {
				t.Fatalf("decodeReply(%q) = %q, %#v; want the remote error %#v", body, result, err, wantRemote)
			}
		default:
			if err != nil || !bytes.Equal(result, wantResult) {
				t.Fatalf("decodeReply(%q) = %q, %v; want the result %q", body, result, err, wantResult)
			}
		}
	})
}

// replyModel is what a nameko reply body says, read with encoding/json
// alone: a result, a remote error, or why it is no reply.
func replyModel(body []byte) (result json.RawMessage, remote *RemoteError, err error) {
	if err := jsonlimit.CheckDepth(body, jsonlimit.MaxDepth); err != nil {
		return nil, nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, nil, err
	}
	if fields == nil {
		return nil, nil, errors.New("null is not an object")
	}
	if raw, ok := fields["error"]; ok && string(raw) != "null" {
		var e RemoteError
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, nil, err
		}
		return nil, &e, nil
	}
	if raw, ok := fields["result"]; ok {
		return raw, nil, nil
	}
	return json.RawMessage("null"), nil, nil
}

func FuzzRemoteError(f *testing.F) {
	for _, b := range []string{
		`{"exc_type": "ZeroDivisionError", "exc_path": "builtins.ZeroDivisionError", "exc_args": ["division by zero"], "value": "division by zero"}`,
		`{"exc_type": "IncorrectSignature", "exc_path": "nameko.exceptions.IncorrectSignature", "exc_args": [], "value": ""}`,
		`{"exc_type": "X", "exc_args": [3000000000, 1e300, -0.0, {"k": [null, true]}, "\u00e9\ud83d\ude00"], "extra": 1}`,
		`{"exc_args": null}`,
		`{"exc_type": "X", "exc_args": "not a list", "EXC_TYPE": "Y", "value": "v"}`,
		`{"exc_type": "\ud800", "value": "\u0000"}`,
	} {
		f.Add([]byte(b))
	}
	for _, b := range hostileBodies() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in RemoteError
		if json.Unmarshal(body, &in) != nil {
			return
		}
		// The model: the four fields as encoding/json reads them, exc_args
		// as any value, a list of one when it is not a list.
		var model struct {
			ExcType string `json:"exc_type"`
			ExcPath string `json:"exc_path"`
			ExcArgs any    `json:"exc_args"`
			Value   string `json:"value"`
		}
		if err := json.Unmarshal(body, &model); err != nil {
			t.Fatalf("%q decodes as %#v, but not as the four fields: %v", body, in, err)
		}
		want := RemoteError{ExcType: model.ExcType, ExcPath: model.ExcPath, Value: model.Value}
		switch args := model.ExcArgs.(type) {
		case nil:
		case []any:
			want.ExcArgs = args
		default:
			want.ExcArgs = []any{args}
		}
		if !reflect.DeepEqual(in, want) {
			t.Fatalf("%q decodes as %#v, want %#v", body, in, want)
		}
		out, err := json.Marshal(&in)
		if err != nil {
			t.Fatalf("%#v decoded from %q does not encode: %v", in, body, err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(out, &fields); err != nil {
			t.Fatal(err)
		}
		names := []string{"exc_args", "exc_path", "exc_type", "value"}
		if got := sortedKeys(fields); !reflect.DeepEqual(got, names) {
			t.Fatalf("%q encodes as %s: fields %v, want %v", body, out, got, names)
		}
		if !bytes.HasPrefix(fields["exc_args"], []byte("[")) {
			t.Fatalf("%q encodes as %s: exc_args is not a list", body, out)
		}
		var back RemoteError
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s does not decode: %v", out, err)
		}
		if in.ExcArgs == nil {
			in.ExcArgs = []any{}
		}
		if !reflect.DeepEqual(in, back) {
			t.Fatalf("round trip of %q: %#v became %#v", body, in, back)
		}
	})
}

// fragileArg panics when it decodes the magic input, as a buggy UnmarshalJSON might.
type fragileArg struct{ S string }

func (a *fragileArg) UnmarshalJSON(b []byte) error {
	if string(b) == `"boom"` {
		panic("fragileArg: boom")
	}
	a.S = string(b)
	return nil
}

type bindInner struct {
	Street string `json:"street"`
	Zip    *int   `json:"zip"`
}

// bindTarget has a field of every kind a method's input commonly has.
type bindTarget struct {
	Name    string             `json:"name"`
	Count   int32              `json:"count"`
	Ratio   float64            `json:"ratio,omitempty"`
	Note    *string            `json:"note"`
	Tags    []string           `json:"tags,omitempty"`
	Home    bindInner          `json:"home,omitzero"`
	Work    *bindInner         `json:"work"`
	Meta    map[string]any     `json:"meta,omitempty"`
	Raw     json.RawMessage    `json:"raw,omitempty"`
	Scores  map[string]uint8   `json:"scores,omitempty"`
	Fragile fragileArg         `json:"fragile,omitempty"`
	Plain   bool               // named by its Go name
	Ignored string             `json:"-"`
	Nested  [][]map[string]int `json:"nested,omitempty"`
}

func FuzzBind(f *testing.F) {
	for _, b := range []string{
		`{"args": ["ann", 3], "kwargs": {"Plain": true}}`,
		`{"args": [], "kwargs": {"name": "bo", "count": 1, "Plain": false, "note": null, "home": {"street": "x", "zip": 12345}}}`,
		`{"args": ["ann", 3000000000], "kwargs": {"Plain": true}}`,
		`{"args": ["ann", 1, 0.5, "n", ["t"], {}, null, {"k": [1]}, {"raw": [1]}, {"a": 255}, "boom", true], "kwargs": {}}`,
		`{"args": ["a", 1, 1, null, null, null, null, null, null, null, null, true, 1, 2], "kwargs": {}}`,
		`{"args": ["ann"], "kwargs": {"name": "again", "count": 1, "Plain": true}}`,
		`{"args": [], "kwargs": {"Ignored": "x", "hidden": 1}}`,
		`{"args": [], "kwargs": {"name": "x", "count": 1, "Plain": true, "fragile": "boom"}}`,
		`{"args": [], "kwargs": {"name": "x", "count": 1, "Plain": true, "scores": {"a": 256}, "nested": [[{"a": 1}], null]}}`,
		`{"args": [null, null], "kwargs": {"Plain": null}}`,
		`{"args": [], "kwargs": {"name": "a", "count": 1, "name": "b", "Plain": true, "count": 2}}`,
		`{"args": [ "a" , 1 ], "kwargs": {"Plain": true, "fragile": "x" , "raw": [ 1 ], "work": {"zip": 7}}}`,
		`{"args": ["a", 1, null, "n"], "kwargs": {"Plain": false, "meta": {"x": [1.5, "y", null]}, "tags": null}}`,
	} {
		f.Add([]byte(b))
	}
	for _, b := range hostileBodies() {
		f.Add([]byte(b))
	}
	byValue, err := newBinder(reflect.TypeFor[bindTarget]())
	if err != nil {
		f.Fatal(err)
	}
	byPointer, err := newBinder(reflect.TypeFor[*bindTarget]())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRequest(contentTypeJSON, body)
		if err != nil {
			return
		}
		for _, b := range []*binder{byValue, byPointer} {
			v, err := b.bind(req)
			if err != nil {
				if v.IsValid() || err.Error() == "" {
					t.Fatalf("bind(%q) = %v, %q: want no value with a non-empty error", body, v, err)
				}
				continue
			}
			if !v.IsValid() || v.Type() != b.typ || (v.Kind() == reflect.Pointer && v.IsNil()) {
				t.Fatalf("bind(%q) = %v without an error, want a %s", body, v, b.typ)
			}
			if len(argsOf(req)) > len(b.fields) {
				t.Fatalf("bind(%q) took %d positional arguments for %d fields", body, len(argsOf(req)), len(b.fields))
			}
			for i, p := range b.fields {
				_, named := kwargsOf(req)[p.name]
				if p.required && i >= len(argsOf(req)) && !named {
					t.Fatalf("bind(%q) succeeded without required argument %q", body, p.name)
				}
				if i < len(argsOf(req)) && named {
					t.Fatalf("bind(%q) succeeded with two values for %q", body, p.name)
				}
			}
		}
		want, whyNot := bindModel(argsOf(req), kwargsOf(req))
		for _, b := range []*binder{byValue, byPointer} {
			v, err := b.bind(req)
			switch {
			case whyNot != "" && err == nil:
				t.Fatalf("bind(%q) succeeded; want an error: %s", body, whyNot)
			case whyNot == "" && err != nil:
				t.Fatalf("bind(%q) failed: %v; want %#v", body, err, want)
			case err == nil:
				got := reflect.Indirect(v).Interface()
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("bind(%q) = %#v; want %#v", body, got, want)
				}
			}
		}
	})
}

type bindParam struct {
	name     string
	required bool
}

// bindParams are bindTarget's arguments in order, as a Python signature
// would list them, and whether each is required.
var bindParams = []bindParam{
	{"name", true}, {"count", true}, {"ratio", false}, {"note", false}, {"tags", false}, {"home", false},
	{"work", false}, {"meta", false}, {"raw", false}, {"scores", false}, {"fragile", false}, {"Plain", true},
	{"nested", false},
}

// bindModel binds args and kwargs to bindTarget as Python binds a call to a
// signature, then decodes the arguments as one JSON object with
// encoding/json. It returns the bound value, or why the call does not fit.
func bindModel(args []json.RawMessage, kwargs map[string]json.RawMessage) (want bindTarget, whyNot string) {
	if len(args) > len(bindParams) {
		return want, "too many positional arguments"
	}
	values := map[string]json.RawMessage{}
	for i, a := range args {
		values[bindParams[i].name] = a
	}
	for name, v := range kwargs {
		if !slices.ContainsFunc(bindParams, func(p bindParam) bool { return p.name == name }) {
			return want, "unexpected keyword " + name
		}
		if _, twice := values[name]; twice {
			return want, "two values for " + name
		}
		values[name] = v
	}
	object := []byte("{")
	for _, p := range bindParams {
		v, ok := values[p.name]
		if p.required && (!ok || string(bytes.TrimSpace(v)) == "null") {
			return want, "no value for required " + p.name
		}
		if ok {
			if len(object) > 1 {
				object = append(object, ',')
			}
			object = fmt.Appendf(object, "%q:%s", p.name, v)
		}
	}
	object = append(object, '}')
	if err := unmarshalNoPanic(object, &want); err != nil {
		return bindTarget{}, err.Error()
	}
	return want, ""
}

func unmarshalNoPanic(b []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return json.Unmarshal(b, v)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
