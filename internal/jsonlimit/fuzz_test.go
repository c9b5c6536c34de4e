package jsonlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzCheckDepth checks CheckDepth against the depth encoding/json's own
// tokenizer sees, on every input that is valid JSON.
func FuzzCheckDepth(f *testing.F) {
	for _, s := range []string{
		``, `null`, `3000000000`, `{"args": [1, 2], "kwargs": {}}`,
		`["[", "{", "\"[", "\\", "\u005b"]`,
		strings.Repeat("[", 200) + strings.Repeat("]", 200),
		strings.Repeat(`{"a":`, 129) + "1" + strings.Repeat("}", 129),
		"[" + strings.Repeat("0,", 8192) + "0]",
		`["\`, "[\"\xff\"]", `]]][[[`,
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		max := int(limit)
		err := CheckDepth(data, max)
		var de *DepthError
		if err != nil && (!errors.As(err, &de) || de.Max != max || err.Error() == "") {
			t.Fatalf("CheckDepth returned %#v", err)
		}
		if !json.Valid(data) {
			return
		}
		depth := tokenDepth(t, data)
		if (depth > max) != (err != nil) {
			t.Fatalf("CheckDepth(%q, %d) = %v, but the JSON is %d deep", data, max, err, depth)
		}
	})
}

// tokenDepth is the deepest nesting in valid JSON data, as json.Decoder sees it.
func tokenDepth(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // 1E700 is valid JSON but no float64
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			t.Fatalf("valid JSON %q does not tokenize: %v", data, err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}
