package httpentry

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/hypha-go/hypha/rpc"
)

// errorBody is the "error" of an error response.
type errorBody struct {
	ExcType string `json:"exc_type"`
	Value   string `json:"value"`
	ErrorID string `json:"error_id,omitempty"`
}

// excType is the exc_type of err: a RemoteError's own (errors of
// rpc.NewError, errors relayed from calls), else "Error".
func excType(err error) string {
	if re, ok := errors.AsType[*rpc.RemoteError](err); ok && re.ExcType != "" {
		return re.ExcType
	}
	return "Error"
}

// message is err's text; for a RemoteError as it came, its value alone,
// without the exc_type Error puts before it.
func message(err error) string {
	if re, ok := err.(*rpc.RemoteError); ok && re.Value != "" {
		return re.Value
	}
	return err.Error()
}

func writeError(w http.ResponseWriter, status int, body errorBody) {
	b, _ := json.Marshal(map[string]errorBody{"error": body})
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
