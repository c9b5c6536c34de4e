package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// binder decodes a request's args and kwargs into a method's input struct,
// checking the call's signature as Python would: positional arguments fill the
// struct's exported fields in order, keyword arguments go by JSON name.
type binder struct {
	typ    reflect.Type // the input type (a struct, or a pointer to one)
	fields []param
	byName map[string]int
}

type param struct {
	name     string
	index    int // field index in the struct
	required bool
}

func newBinder(t reflect.Type) (*binder, error) {
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return nil, fmt.Errorf("input type %s is not a struct: declare the arguments as fields of a struct", t)
	}
	b := &binder{typ: t, byName: map[string]int{}}
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := f.Type.Kind() == reflect.Pointer ||
			strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		b.byName[name] = len(b.fields)
		b.fields = append(b.fields, param{name: name, index: i, required: !optional})
	}
	return b, nil
}

// bind returns a new input value filled from args and kwargs, or an error
// saying how the arguments do not fit.
func (b *binder) bind(args []json.RawMessage, kwargs map[string]json.RawMessage) (reflect.Value, error) {
	if len(args) > len(b.fields) {
		return reflect.Value{}, fmt.Errorf("takes %d positional arguments but %d were given", len(b.fields), len(args))
	}
	values := make([]json.RawMessage, len(b.fields))
	copy(values, args)
	for name, raw := range kwargs {
		i, ok := b.byName[name]
		if !ok {
			return reflect.Value{}, fmt.Errorf("unexpected keyword argument %q", name)
		}
		if values[i] != nil {
			return reflect.Value{}, fmt.Errorf("got multiple values for argument %q", name)
		}
		values[i] = raw
	}
	st := b.typ
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	in := reflect.New(st)
	var missing []string
	for i, p := range b.fields {
		if values[i] == nil {
			if p.required {
				missing = append(missing, fmt.Sprintf("%q", p.name))
			}
			continue
		}
		field := in.Elem().Field(p.index)
		if err := unmarshalArg(values[i], field.Addr().Interface()); err != nil {
			return reflect.Value{}, fmt.Errorf("argument %q: %s", p.name, describeDecodeError(err, field.Type()))
		}
	}
	if len(missing) > 0 {
		return reflect.Value{}, fmt.Errorf("missing required argument %s", strings.Join(missing, ", "))
	}
	if b.typ.Kind() == reflect.Pointer {
		return in, nil
	}
	return in.Elem(), nil
}

// unmarshalArg decodes one argument, turning a panic in a type's
// UnmarshalJSON into an error: binding runs before the worker that recovers
// panics, and a request that crashed the service would be redelivered to
// crash every instance in turn.
func unmarshalArg(raw json.RawMessage, dst any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoding panicked: %v", p)
		}
	}()
	return json.Unmarshal(raw, dst)
}

func describeDecodeError(err error, t reflect.Type) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("want %s, got %s", jsonKind(typeErr.Type), typeErr.Value)
	}
	return fmt.Sprintf("want %s: %v", jsonKind(t), err)
}

// jsonKind names a Go type the way a JSON (or Python) caller thinks of it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}
