// Package jsonlimit bounds what encoding/json is asked to decode. Go's decoder
// accepts 10000 levels of nesting; a message from the network should not get
// to spend that much of a worker's CPU and stack, so decoders check the depth
// first:
//
//	if err := jsonlimit.CheckDepth(body, jsonlimit.MaxDepth); err != nil {
//		return err // "JSON nested deeper than 128 levels"
//	}
//	err := json.Unmarshal(body, &v)
package jsonlimit

import "fmt"

// MaxDepth is the deepest nesting of arrays and objects Hypha decodes from
// the wire. Real requests, replies and events stay far below it.
const MaxDepth = 128

// DepthError reports JSON nested deeper than Max levels.
type DepthError struct {
	Max int // the limit that was exceeded
}

// Error says how deep the limit is: "JSON nested deeper than <Max> levels".
func (e *DepthError) Error() string {
	return fmt.Sprintf("JSON nested deeper than %d levels", e.Max)
}

// CheckDepth returns a *DepthError when data opens more than max arrays or
// objects inside one another, and nil otherwise. It only counts brackets
// outside strings and does not validate the JSON: that is left to the
// decoder that runs next. It does not allocate unless it fails.
func CheckDepth(data []byte, max int) error {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '[', '{':
			depth++
			if depth > max {
				return &DepthError{Max: max}
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		case '"':
			i = stringEnd(data, i+1)
		}
	}
	return nil
}

// stringEnd returns the index of the quote that closes the string whose
// contents start at i, skipping escaped characters, or len(data)-1 when the
// string is not closed.
func stringEnd(data []byte, i int) int {
	for ; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(data) - 1
}
