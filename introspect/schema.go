package introspect

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// schemaOf is a JSON Schema (draft 2020-12) of a Go type as encoding/json
// encodes and decodes it: structs are objects whose properties are the
// fields' JSON names (embedded structs flattened), pointers may be null, a
// type that encodes itself is left open ({}), and a recursive type refers to
// its own definition in $defs.
func schemaOf(t reflect.Type) map[string]any {
	g := &schemaGen{defs: map[string]map[string]any{}, onStack: map[reflect.Type]bool{}, wanted: map[reflect.Type]bool{}}
	s := g.schema(t)
	for len(g.pending) > 0 {
		dt := g.pending[0]
		g.pending = g.pending[1:]
		g.onStack[dt] = true
		g.defs[defName(dt)] = g.structSchema(dt)
		delete(g.onStack, dt)
	}
	if len(g.defs) > 0 {
		defs := map[string]any{}
		for k, v := range g.defs {
			defs[k] = v
		}
		s["$defs"] = defs
	}
	return s
}

type schemaGen struct {
	defs    map[string]map[string]any
	onStack map[reflect.Type]bool // structs being described: seeing one again is recursion
	wanted  map[reflect.Type]bool // recursive structs that go to $defs
	pending []reflect.Type
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

func defName(t reflect.Type) string {
	return strings.NewReplacer("/", ".", "[", "_", "]", "_", "*", "", " ", "").Replace(t.PkgPath() + "." + t.Name())
}

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == nil:
		return map[string]any{}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawMessageType:
		return map[string]any{}
	case t.Kind() != reflect.Pointer && (t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType)):
		return map[string]any{} // it encodes itself: its form is its own
	case t.Kind() != reflect.Pointer && (t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Pointer:
		inner := g.schema(t.Elem())
		return map[string]any{"anyOf": []any{inner, map[string]any{"type": "null"}}}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": []any{"array", "null"}, "items": g.schema(t.Elem())}
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() != "" && g.onStack[t] {
			if !g.wanted[t] {
				g.wanted[t] = true
				g.pending = append(g.pending, t)
			}
			return map[string]any{"$ref": "#/$defs/" + defName(t)}
		}
		g.onStack[t] = true
		defer delete(g.onStack, t)
		return g.structSchema(t)
	}
	return map[string]any{} // an interface: any JSON value
}

// structSchema describes a struct as an object, its fields found as
// encoding/json finds them.
func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []any{}
	for _, f := range jsonFields(t) {
		props[f.name] = g.schema(f.typ)
		if f.required {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	if t.Name() != "" {
		s["title"] = t.Name()
	}
	return s
}

type jsonField struct {
	name     string
	typ      reflect.Type
	required bool
}

// jsonFields lists the fields encoding/json encodes for struct t, in order:
// embedded structs without a JSON name are flattened into it, and a
// shallower field hides a deeper one of the same name.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	seen := map[string]bool{}
	current := []reflect.Type{t}
	visited := map[reflect.Type]bool{}
	for len(current) > 0 {
		var next []reflect.Type
		var here []jsonField
		for _, st := range current {
			if visited[st] {
				continue
			}
			visited[st] = true
			for i := range st.NumField() {
				f := st.Field(i)
				ft := f.Type
				if f.Anonymous && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				tag := f.Tag.Get("json")
				if tag == "-" || (!f.IsExported() && !(f.Anonymous && ft.Kind() == reflect.Struct)) {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
					next = append(next, ft)
					continue
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if seen[name] {
					continue
				}
				optional := f.Type.Kind() == reflect.Pointer ||
					strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
				here = append(here, jsonField{name: name, typ: f.Type, required: !optional})
			}
		}
		for _, f := range here {
			seen[f.name] = true
		}
		out = append(out, here...)
		current = next
	}
	return out
}
