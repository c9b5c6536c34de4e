package crosslang_test

// Cross-language tests: the real nameko 2.14 (nameko_test.go) calls Hypha
// and is called by it, and a kombu consumer (nameko_events.py) shows what
// a nameko event handler receives. See README.md.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

const python = "/usr/bin/python3"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// needKombu skips t (or fails it under CI=true) when /usr/bin/python3
// cannot import kombu.
func needKombu(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import kombu").CombinedOutput()
	if err == nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	msg := fmt.Sprintf("%s cannot import kombu (%v: %s); run scripts/broker.sh (it installs python3-kombu)",
		python, err, lines[len(lines)-1])
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

const uuidRE = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

var calcMultiplyID = regexp.MustCompile(`^calculator\.multiply\.` + uuidRE + `$`)

// seenCall is what a server interceptor saw of one call.
type seenCall struct {
	service, method string
	data            contextdata.Data // contextdata.From(ctx) in the handler's context
	headers         map[string]any   // the request's AMQP headers as received
}

// stringsOf reads a list of strings as it comes from AMQP headers or Go code.
func stringsOf(v any) []string {
	return contextdata.CallIDStack(contextdata.WithData(context.Background(),
		contextdata.Data{contextdata.KeyCallIDStack: v}))
}

// uploads is a service of raw methods (rpc.HandleRaw), which a nameko client
// calls like any other.
type uploads struct{}

func (uploads) Register(r *entrypoint.Registry) {
	rpc.HandleRaw(r, "store", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		if err := reply.Ack(); err != nil {
			return err
		}
		var in struct {
			Kwargs struct {
				Name string `json:"name"`
				Size int    `json:"size"`
			} `json:"kwargs"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil {
			return reply.Error("ValueError", err.Error())
		}
		return reply.Reply(fmt.Appendf(nil, `{"stored": %q, "size": %d}`, in.Kwargs.Name, in.Kwargs.Size), "application/json")
	})
	rpc.HandleRaw(r, "refuse", func(_ context.Context, _ *rpc.RawRequest, reply *rpc.RawReply) error {
		return reply.Error("QuotaExceeded", "no space left")
	})
}

// readyWriter collects a subprocess's stdout and closes ready at the first
// line that reads READY.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen {
		sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				w.seen = true
				close(w.ready)
				break
			}
		}
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// lockedBuffer is a bytes.Buffer safe to read while the subprocess writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
