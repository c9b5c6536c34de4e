package httpentry

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// binder fills an In from a request: path values, query parameters, JSON body.
type binder struct {
	typ    reflect.Type
	fields []boundField // the fields tagged path or query
}

type boundField struct {
	index []int
	name  string // the path wildcard or query parameter
	query bool
}

var (
	wildcard        = regexp.MustCompile(`\{([^{}.]*)(\.\.\.)?\}`)
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// newBinder checks that In can be filled from requests to pattern.
func newBinder(typ reflect.Type, pattern string) (*binder, error) {
	if typ.Kind() != reflect.Struct {
		return nil, fmt.Errorf("the input type must be a struct, got %s", typ)
	}
	wildcards := map[string]bool{}
	for _, m := range wildcard.FindAllStringSubmatch(pattern, -1) {
		wildcards[m[1]] = true
	}
	b := &binder{typ: typ}
	for _, f := range reflect.VisibleFields(typ) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		path, isPath := f.Tag.Lookup("path")
		query, isQuery := f.Tag.Lookup("query")
		switch {
		case isPath && isQuery:
			return nil, fmt.Errorf("field %s is tagged both path and query: pick one", f.Name)
		case isPath:
			if !wildcards[path] {
				return nil, fmt.Errorf("field %s takes path value %q, which the pattern has no {%s} for", f.Name, path, path)
			}
			if !settable(f.Type) {
				return nil, fmt.Errorf("field %s (%s) cannot take a path value: use a string, bool or number", f.Name, f.Type)
			}
			b.fields = append(b.fields, boundField{index: f.Index, name: path})
		case isQuery:
			if !settable(f.Type) && !(f.Type.Kind() == reflect.Slice && settable(f.Type.Elem())) {
				return nil, fmt.Errorf("field %s (%s) cannot take a query parameter: use a string, bool, number or a slice of them", f.Name, f.Type)
			}
			b.fields = append(b.fields, boundField{index: f.Index, name: query, query: true})
		}
	}
	return b, nil
}

// settable reports whether a value of t can be parsed from one string.
func settable(t reflect.Type) bool {
	if t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	case reflect.Pointer:
		return settable(t.Elem())
	}
	return false
}

// bind fills dst, a pointer to In, from r: the JSON body first, then path
// values and query parameters over it.
func (b *binder) bind(r *http.Request, dst any) error {
	if err := b.decodeBody(r, dst); err != nil {
		return err
	}
	v := reflect.ValueOf(dst).Elem()
	query := r.URL.Query()
	for _, f := range b.fields {
		fv := v.FieldByIndex(f.index)
		if !f.query {
			if err := parseInto(fv, r.PathValue(f.name)); err != nil {
				return fmt.Errorf("path value %s: %w", f.name, err)
			}
			continue
		}
		values, ok := query[f.name]
		if !ok {
			continue
		}
		if fv.Kind() == reflect.Slice && !settable(fv.Type()) {
			s := reflect.MakeSlice(fv.Type(), len(values), len(values))
			for i, q := range values {
				if err := parseInto(s.Index(i), q); err != nil {
					return fmt.Errorf("query parameter %s: %w", f.name, err)
				}
			}
			fv.Set(s)
			continue
		}
		if err := parseInto(fv, values[len(values)-1]); err != nil {
			return fmt.Errorf("query parameter %s: %w", f.name, err)
		}
	}
	return nil
}

// errMediaType marks a body whose content type is not JSON: 415, not 400.
var errMediaType = errors.New("unsupported media type")

// decodeBody decodes a JSON body into dst; an empty body leaves it as it is.
// The server has read the body already, within its size bound.
func (b *binder) decodeBody(r *http.Request, dst any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("the JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("the JSON body has more than one value")
	}
	return nil
}

// checkContentType accepts a JSON body's content type: none, or
// application/json in any case, with charset utf-8 if any. Media types are
// case-insensitive (RFC 9110); a +json suffix names another format, and
// another charset another encoding, which encoding/json would misread.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: content type %q: send application/json", errMediaType, ct)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return fmt.Errorf("%w: content type %q: send application/json; charset=utf-8, with no other parameter",
				errMediaType, ct)
		}
	}
	return nil
}

// parseInto sets v from s, as its type reads text.
func parseInto(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if err := parseInto(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	var err error
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		var b bool
		b, err = strconv.ParseBool(s)
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		n, err = strconv.ParseInt(s, 10, v.Type().Bits())
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var n uint64
		n, err = strconv.ParseUint(s, 10, v.Type().Bits())
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		var f float64
		f, err = strconv.ParseFloat(s, v.Type().Bits())
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			// JSON has no NaN or Inf: the value could go no further.
			return fmt.Errorf("%q is not a finite number", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot set a %s from text", v.Type())
	}
	if err != nil {
		return fmt.Errorf("%q is not a %s", s, v.Type())
	}
	return nil
}
