// Package jsonscan walks the top level of a JSON object or array that is
// already known to be valid (json.Valid), handing out its members and
// elements as sub-slices of the input, without decoding or copying them.
//
// encoding/json validates every byte of its input each time it is called,
// so decoding an RPC request into a map of raw members, then its args into
// a slice of raw elements, then each element into its Go type, scans the
// large values three times and copies them twice. With the body validated
// once, jsonscan finds the members and elements in one light pass:
//
//	if !json.Valid(body) {
//		return errNotJSON
//	}
//	for key, value := range jsonscan.Members(body) {
//		// key is the member's name, unescaped; value is its raw JSON
//	}
//
// Given input that is not valid JSON, the functions stop early or yield
// nonsense, but never panic or read out of bounds.
package jsonscan

import (
	"encoding/json"
	"iter"
)

// Kind is what a JSON value is, told by its first byte.
func Kind(value []byte) string {
	value = value[skipSpace(value, 0):]
	if len(value) == 0 {
		return "nothing"
	}
	switch value[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// Members yields the name and raw value of each member of the JSON object
// obj, in order (a repeated name is yielded each time it occurs). Names are
// unescaped as encoding/json unescapes them. It yields nothing when obj is
// not an object.
func Members(obj []byte) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		i := skipSpace(obj, 0)
		if i >= len(obj) || obj[i] != '{' {
			return
		}
		i = skipSpace(obj, i+1)
		for i < len(obj) && obj[i] == '"' {
			end := stringEnd(obj, i+1)
			if end >= len(obj) {
				return
			}
			name := key(obj[i : end+1])
			i = skipSpace(obj, end+1)
			if i >= len(obj) || obj[i] != ':' {
				return
			}
			i = skipSpace(obj, i+1)
			vend := valueEnd(obj, i)
			if vend <= i || !yield(name, obj[i:vend]) {
				return
			}
			i = skipSpace(obj, vend)
			if i >= len(obj) || obj[i] != ',' {
				return
			}
			i = skipSpace(obj, i+1)
		}
	}
}

// Elements yields the raw value of each element of the JSON array arr, in
// order. It yields nothing when arr is not an array.
func Elements(arr []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		i := skipSpace(arr, 0)
		if i >= len(arr) || arr[i] != '[' {
			return
		}
		i = skipSpace(arr, i+1)
		for i < len(arr) && arr[i] != ']' {
			vend := valueEnd(arr, i)
			if vend <= i || !yield(arr[i:vend]) {
				return
			}
			i = skipSpace(arr, vend)
			if i >= len(arr) || arr[i] != ',' {
				return
			}
			i = skipSpace(arr, i+1)
		}
	}
}

// key unescapes a quoted member name; names with escapes or bytes outside
// ASCII go through encoding/json, so that they read as it reads them.
func key(quoted []byte) string {
	for _, c := range quoted {
		if c == '\\' || c >= 0x80 {
			var s string
			if json.Unmarshal(quoted, &s) == nil {
				return s
			}
			break
		}
	}
	return string(quoted[1 : len(quoted)-1])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote that closes the string whose
// contents start at i, or len(b) when it is not closed.
func stringEnd(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value that starts at i.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return min(stringEnd(b, i+1)+1, len(b))
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			case '"':
				i = stringEnd(b, i+1)
			}
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
