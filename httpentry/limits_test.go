package httpentry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
)

// uploads takes bodies, halves numbers, calls a service that never runs,
// and ticks.
type uploads struct {
	ticks  atomic.Int64
	nobody *rpc.Proxy
}

type uploadsDeps struct {
	fx.In
	Nobody *rpc.Proxy `name:"nobody"`
}

func (u *uploads) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "POST /upload", func(_ context.Context, in struct {
		Text string `json:"text"`
	}) (int, error) {
		return len(in.Text), nil
	})
	httpentry.Handle(r, "GET /half", func(_ context.Context, in struct {
		X float64 `query:"x"`
	}) (float64, error) {
		return in.X / 2, nil
	})
	httpentry.Handle(r, "GET /nobody", func(ctx context.Context, _ struct{}) (string, error) {
		return rpc.Call[string](ctx, u.nobody, "hello", nil)
	})
	timer.Handle(r, "tick", 50*time.Millisecond, func(context.Context) error {
		u.ticks.Add(1)
		return nil
	})
}

// startUploads starts the uploads service with MAX_WORKERS 2 and the given
// HTTP settings over those of the test.
func startUploads(t *testing.T, httpCfg map[string]any) (*framework.App, *uploads) {
	t.Helper()
	cfg := map[string]any{"ADDRESS": "127.0.0.1:0"}
	for k, v := range httpCfg {
		cfg[k] = v
	}
	u := &uploads{}
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"HTTP": cfg, "MAX_WORKERS": 2, "RPC_TIMEOUT": 5}),
		framework.Service("uploads", func(d uploadsDeps) *uploads { u.nobody = d.Nobody; return u }),
	)
	return app, u
}

// dial opens a raw connection to address, closed when the test ends.
func dial(t *testing.T, address string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Ten uploads sending a byte now and then hold no worker: with MAX_WORKERS 2
// other requests are answered at once and the timer keeps ticking.
func TestSlowUploadsHoldNoWorker(t *testing.T) {
	app, u := startUploads(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range 10 {
		conn := dial(t, app.HTTPAddress())
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // every upload has begun its body
	before := u.ticks.Load()
	base := "http://" + app.HTTPAddress()
	for i := range 5 {
		start := time.Now()
		r := do(t, "POST", base+"/upload", `{"text": "hello"}`, nil)
		if r.status != 200 || strings.TrimSpace(string(r.body)) != "5" {
			t.Fatalf("request %d beside slow uploads: status %d %s", i, r.status, r.body)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("request %d beside slow uploads took %s: it waited for a worker", i, took)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for u.ticks.Load() < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the timer ticked %d times beside slow uploads in 3 s, every 50 ms", u.ticks.Load()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A body still unread after HTTP.READ_TIMEOUT ends its request, and its
// connection, without a handler ever running.
func TestReadTimeoutEndsASlowBody(t *testing.T) {
	app, _ := startUploads(t, map[string]any{"READ_TIMEOUT": 0.5})
	conn := dial(t, app.HTTPAddress())
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err := io.ReadAll(conn) // an answer, if any, then the close
	if err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("closed after %s, want about READ_TIMEOUT (0.5 s)", took)
	}
}

// An idle keep-alive connection is closed after HTTP.IDLE_TIMEOUT.
func TestIdleConnectionsAreClosed(t *testing.T) {
	app, _ := startUploads(t, map[string]any{"IDLE_TIMEOUT": 0.3})
	conn := dial(t, app.HTTPAddress())
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET /half?x=4 HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("an idle connection: read %v, want EOF once IDLE_TIMEOUT passed", err)
	}
}

// Past HTTP.MAX_CONNECTIONS a connection waits to be served until another closes.
func TestConnectionsOverTheBoundWait(t *testing.T) {
	app, _ := startUploads(t, map[string]any{"MAX_CONNECTIONS": 2})
	held := []net.Conn{dial(t, app.HTTPAddress()), dial(t, app.HTTPAddress())}
	for _, c := range held { // make sure both are accepted and served
		fmt.Fprintf(c, "GET /half?x=4 HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	url := "http://" + app.HTTPAddress() + "/half?x=4"
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served (status %d) while two were open", resp.StatusCode)
	}
	held[0].Close()
	client.Timeout = 10 * time.Second
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("once one closed: %v", err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
}

func TestRequestsRefusedWithTheirStatus(t *testing.T) {
	app, _ := startUploads(t, map[string]any{"MAX_BODY_SIZE": 100})
	base := "http://" + app.HTTPAddress()
	for _, tc := range []struct {
		name, method, path, body, contentType string
		status                                int
		excType                               string
	}{
		{"NaN", "GET", "/half?x=NaN", "", "", 400, "IncorrectSignature"},
		{"Inf", "GET", "/half?x=Inf", "", "", 400, "IncorrectSignature"},
		{"-infinity", "GET", "/half?x=-infinity", "", "", 400, "IncorrectSignature"},
		{"out of range", "GET", "/half?x=1e999", "", "", 400, "IncorrectSignature"},
		{"a number", "GET", "/half?x=3", "", "", 200, ""},
		{"JSON in capitals", "POST", "/upload", `{"text": "a"}`, "APPLICATION/JSON", 200, ""},
		{"charset UTF-8", "POST", "/upload", `{"text": "a"}`, "application/json; charset=UTF-8", 200, ""},
		{"no content type", "POST", "/upload", `{"text": "a"}`, "", 200, ""},
		{"a +json suffix", "POST", "/upload", `{"text": "a"}`, "application/evil+json", 415, "UnsupportedMediaType"},
		{"charset UTF-16", "POST", "/upload", `{"text": "a"}`, "application/json; charset=utf-16", 415, "UnsupportedMediaType"},
		{"another parameter", "POST", "/upload", `{"text": "a"}`, "application/json; boundary=x", 415, "UnsupportedMediaType"},
		{"text", "POST", "/upload", `{"text": "a"}`, "text/plain", 415, "UnsupportedMediaType"},
		{"form", "POST", "/upload", `{"text": "a"}`, "application/x-www-form-urlencoded", 415, "UnsupportedMediaType"},
		{"too large", "POST", "/upload", `{"text": "` + strings.Repeat("a", 200) + `"}`, "application/json", 413, "RequestTooLarge"},
		{"a service not running", "GET", "/nobody", "", "", 503, "ServiceUnavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.contentType != "" {
				h["Content-Type"] = tc.contentType
			}
			r := doRaw(t, tc.method, base+tc.path, tc.body, h)
			if r.status != tc.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.excType != "" && r.errorOf(t)["exc_type"] != tc.excType {
				t.Fatalf("body %s, want exc_type %s", r.body, tc.excType)
			}
		})
	}
}

// doRaw is do without its default content type.
func doRaw(t *testing.T, method, url, body string, header map[string]string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
}
