package framework

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/contextdata"
)

// newLogger logs to w in LOG_FORMAT (text or json) at LOG_LEVEL.
func newLogger(w io.Writer, s config.Settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// contextHandler adds to every record logged with a worker's context the
// trace and span ids and the call-id stack, so that a log line can be found
// from a trace and back. Log with the context: log.InfoContext(ctx, ...).
type contextHandler struct{ slog.Handler }

// Handle adds the context's ids to r.
func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if stack := contextdata.CallIDStack(ctx); len(stack) > 0 {
		r.AddAttrs(slog.Any("call_id_stack", stack))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the handler adding context ids.
func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the handler adding context ids.
func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
