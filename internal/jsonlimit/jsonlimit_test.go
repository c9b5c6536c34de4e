package jsonlimit

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		name string
		data string
		max  int
		deep bool
	}{
		{"empty", ``, 2, false},
		{"scalar", `42`, 0, false},
		{"flat object at limit", `{"a": 1}`, 1, false},
		{"object over limit", `{"a": 1}`, 0, true},
		{"nested at limit", `{"a": [[1], {"b": 2}]}`, 3, false},
		{"nested over limit", `{"a": [[1], {"b": [2]}]}`, 3, true},
		{"siblings do not add up", `[[1], [2], [3], [4]]`, 2, false},
		{"brackets in strings", `["[[[[", "{{{{"]`, 1, false},
		{"escaped quote in string", `["\"[[[[", "\\"]`, 1, false},
		{"escaped backslash closes string", `["\\", [[1]]]`, 2, true},
		{"unicode escape", `{"\u005b\u007b": "\u0022[["}`, 1, false},
		{"unterminated string", `["[[[[`, 1, false},
		{"trailing backslash", `["\`, 1, false},
		{"stray closers", `]]]}}}[[`, 2, false},
		{"stray closers then deep", `]]][[[`, 2, true},
		{"invalid JSON is not judged", `{{}`, 2, false},
		{"200 levels", strings.Repeat("[", 200) + strings.Repeat("]", 200), MaxDepth, true},
		{"128 levels", strings.Repeat("[", 128) + strings.Repeat("]", 128), MaxDepth, false},
		{"129 levels of objects", strings.Repeat(`{"a":`, 129) + "1" + strings.Repeat("}", 129), MaxDepth, true},
		{"invalid UTF-8", "[\"\xff\xfe[\", [1]]", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDepth([]byte(tt.data), tt.max)
			var de *DepthError
			if got := errors.As(err, &de); got != tt.deep {
				t.Fatalf("CheckDepth(%q, %d) = %v, want deep=%v", tt.data, tt.max, err, tt.deep)
			}
			if tt.deep && de.Max != tt.max {
				t.Errorf("DepthError.Max = %d, want %d", de.Max, tt.max)
			}
		})
	}
}

func TestDepthErrorMessage(t *testing.T) {
	err := CheckDepth([]byte(strings.Repeat("[", 200)), MaxDepth)
	if got, want := err.Error(), "JSON nested deeper than 128 levels"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestCheckDepthDoesNotAllocate(t *testing.T) {
	body := []byte(`{"args": [1, "two", [3, {"four": "[\"{"}]], "kwargs": {"x": null}}`)
	if n := testing.AllocsPerRun(100, func() { _ = CheckDepth(body, MaxDepth) }); n != 0 {
		t.Errorf("CheckDepth allocates %v times per run, want 0", n)
	}
}

func BenchmarkCheckDepth1KB(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"args": [`)
	for sb.Len() < 1000 {
		sb.WriteString(`{"id": 12345, "name": "widget \"[x]\"", "tags": ["a", "b"]}, `)
	}
	sb.WriteString(`{}], "kwargs": {}}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckDepth(body, MaxDepth); err != nil {
			b.Fatal(err)
		}
	}
}
