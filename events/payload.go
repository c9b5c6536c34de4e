package events

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/hypha-go/hypha/internal/jsonlimit"
)

// decodePayload decodes an event body into T. It refuses JSON nested deeper
// than jsonlimit.MaxDepth, and turns a panic in T's UnmarshalJSON into an
// error: decoding runs outside the handler's recover, and a payload that
// crashed the service would come back to crash every instance.
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
	if err != nil {
		return nil, fmt.Errorf("payload does not decode into %s: %w", reflect.TypeFor[T](), err)
	}
	return v, nil
}
