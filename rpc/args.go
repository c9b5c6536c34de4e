package rpc

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/hypha-go/hypha/internal/jsonscan"
)

// binder decodes a request's args and kwargs into a method's input struct,
// checking the call's signature as Python would: positional arguments fill the
// struct's fields in order, keyword arguments go by JSON name. The fields are
// those encoding/json would fill, embedded structs' flattened into them.
type binder struct {
	typ    reflect.Type // the input type (a struct, or a pointer to one)
	fields []param
	byName map[string]int
}

type param struct {
	name     string
	index    []int // field index path in the struct, through embedded structs
	required bool  // neither a pointer nor tagged omitempty or omitzero
	nullable bool  // null is a value of its own: an interface, or a type that decodes JSON itself
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func newBinder(t reflect.Type) (*binder, error) {
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return nil, fmt.Errorf("input type %s is not a struct: declare the arguments as fields of a struct", t)
	}
	fields, err := argFields(st)
	if err != nil {
		return nil, fmt.Errorf("input type %s: %w", t, err)
	}
	if len(fields) == 0 && st.NumField() > 0 {
		return nil, fmt.Errorf("input type %s has no field arguments can fill (unexported fields and fields tagged `json:\"-\"` are not filled): export them, or use struct{} for a method without arguments", t)
	}
	b := &binder{typ: t, fields: fields, byName: map[string]int{}}
	for i, p := range fields {
		b.byName[p.name] = i
	}
	return b, nil
}

// argFields lists the fields of st that arguments fill, as encoding/json
// finds them: embedded structs without a JSON name are flattened, a shallower
// field hides a deeper one of the same name, and a name given twice at the
// same depth is refused (encoding/json would silently ignore both).
func argFields(st reflect.Type) ([]param, error) {
	type level struct {
		typ   reflect.Type
		index []int
	}
	var out []param
	seen := map[string]int{} // name → depth it was found at
	visited := map[reflect.Type]bool{}
	for depth, current := 0, []level{{typ: st}}; len(current) > 0; depth++ {
		var next []level
		found := map[string]int{} // names found at this depth, with how often
		var here []param
		for _, l := range current {
			if visited[l.typ] {
				continue
			}
			visited[l.typ] = true
			for i := range l.typ.NumField() {
				f := l.typ.Field(i)
				index := append(append([]int(nil), l.index...), i)
				ft := f.Type
				if f.Anonymous && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !f.IsExported() && !(f.Anonymous && ft.Kind() == reflect.Struct) {
					continue
				}
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
					if f.Type.Kind() == reflect.Pointer && !f.IsExported() {
						return nil, fmt.Errorf("embedded field %s is a pointer to an unexported struct, which decoding cannot allocate: embed it by value", f.Name)
					}
					next = append(next, level{typ: ft, index: index})
					continue
				}
				if !f.IsExported() {
					continue // an embedded struct of an unexported type, named by its tag: not settable
				}
				if name == "" {
					name = f.Name
				}
				if _, hidden := seen[name]; hidden {
					continue // a shallower field of that name wins
				}
				if err := checkDecodable(f.Type); err != nil {
					return nil, fmt.Errorf("field %s: %w", f.Name, err)
				}
				optional := f.Type.Kind() == reflect.Pointer ||
					strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
				nullable := f.Type.Kind() == reflect.Interface || reflect.PointerTo(f.Type).Implements(unmarshalerType)
				found[name]++
				here = append(here, param{name: name, index: index, required: !optional, nullable: nullable})
			}
		}
		for name, n := range found {
			if n > 1 {
				return nil, fmt.Errorf("argument name %q is given to %d fields: give each field a JSON name of its own", name, n)
			}
			seen[name] = depth
		}
		out = append(out, here...)
		current = next
	}
	slices.SortFunc(out, func(a, b param) int { return slices.Compare(a.index, b.index) })
	return out, nil
}

// checkDecodable refuses a field type no JSON value can decode into.
func checkDecodable(t reflect.Type) error {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("no JSON value decodes into a %s", t)
	case reflect.Interface:
		if t.NumMethod() > 0 {
			return fmt.Errorf("no JSON value decodes into the interface %s: use a concrete type or any", t)
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkDecodable(t.Elem())
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !reflect.PointerTo(t.Key()).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
				return fmt.Errorf("no JSON object key decodes into a %s", t.Key())
			}
		}
		return checkDecodable(t.Elem())
	}
	return nil
}

// bind returns a new input value filled from req's args and kwargs, or an
// error saying how the arguments do not fit. It checks the call's shape
// first, walking args and kwargs in place: too many positional arguments, an
// unknown keyword or one given twice are refused before any argument is
// decoded, so that a request of millions of items for a method of two costs
// a scan, not millions of values. A keyword repeated in kwargs takes its
// last value, as a JSON object's member does.
func (b *binder) bind(req request) (reflect.Value, error) {
	values := make([]json.RawMessage, len(b.fields))
	positional := 0
	for value := range jsonscan.Elements(req.args) {
		if positional < len(values) {
			values[positional] = value
		}
		positional++
	}
	if positional > len(b.fields) {
		return reflect.Value{}, fmt.Errorf("takes %d positional arguments but %d were given", len(b.fields), positional)
	}
	for name, raw := range jsonscan.Members(req.kwargs) {
		i, ok := b.byName[name]
		if !ok {
			return reflect.Value{}, fmt.Errorf("unexpected keyword argument %q", name)
		}
		if i < positional {
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
		field := fieldOf(in.Elem(), p.index)
		if p.required && !p.nullable && string(bytes.TrimSpace(values[i])) == "null" {
			return reflect.Value{}, fmt.Errorf("argument %q: want %s, got null", p.name, jsonKind(field.Type()))
		}
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

// fieldOf is the field at index in v, allocating the embedded structs that
// pointers on the way lead to.
func fieldOf(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
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
