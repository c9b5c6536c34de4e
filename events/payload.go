package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/hypha-go/hypha/internal/jsonlimit"
)

// decodePayload decodes an event body into T. It refuses JSON nested deeper
// than jsonlimit.MaxDepth, and a null payload when T cannot hold null (a
// struct, a number, a string: encoding/json would leave the zero value, and
// the handler would act on an event that says nothing). It turns a panic in
// T's UnmarshalJSON into an error: decoding runs outside the handler's
// recover, and a payload that crashed the service would come back to crash
// every instance.
func decodePayload[T any](body []byte) (payload any, err error) {
	defer func() {
		if p := recover(); p != nil {
			payload, err = nil, fmt.Errorf("payload does not decode into %s: decoding panicked: %v", reflect.TypeFor[T](), p)
		}
	}()
	var v T
	err = jsonlimit.CheckDepth(body, jsonlimit.MaxDepth)
	if err == nil {
		err = json.Unmarshal(body, &v)
	}
	if err == nil && !nullable(reflect.TypeFor[T]()) && bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		err = fmt.Errorf("payload is null; take a pointer, map, slice or interface to accept null events")
	}
	if err != nil {
		return nil, fmt.Errorf("payload does not decode into %s: %w", reflect.TypeFor[T](), err)
	}
	return v, nil
}

// nullable reports whether a JSON null decodes into a value of t that says
// so: nil.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return true
	}
	return false
}
