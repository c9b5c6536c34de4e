package tour

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// httpTimeout bounds each request to the gateway.
const httpTimeout = 10 * time.Second

// HTTP calls the gateway at base ("http://127.0.0.1:8000") with Go's HTTP
// client, printing to w each request as the curl that sends it and the
// response: calculator and user_service over HTTP, an expected error as a
// 4xx, and context data from an X-Hypha-User-Id header. It waits up to 30 s
// for the gateway to answer.
func HTTP(ctx context.Context, base string, w io.Writer) error {
	client := &http.Client{Timeout: httpTimeout}
	if err := waitGateway(ctx, client, base); err != nil {
		return err
	}
	for _, c := range []struct {
		method, path, body string
		header             [2]string
		want               int
	}{
		{method: "GET", path: "/calculator/add?a=2&b=3", want: http.StatusOK},
		{method: "GET", path: "/calculator/divide?a=1&b=0", want: http.StatusUnprocessableEntity},
		{method: "POST", path: "/users/7/score", body: `{"base_score": 10, "multiplier": 3}`,
			header: [2]string{"X-Hypha-User-Id", "u-42"}, want: http.StatusOK},
	} {
		status, body, err := send(ctx, client, c.method, base+c.path, c.body, c.header)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s → %d %s\n", curl(c.method, base+c.path, c.body, c.header), status, body)
		if status != c.want {
			return fmt.Errorf("gateway: %s %s answered %d, want %d", c.method, c.path, status, c.want)
		}
	}
	return nil
}

// waitGateway polls the gateway until it answers a request other than 503.
func waitGateway(ctx context.Context, client *http.Client, base string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		status, _, err := send(ctx, client, "GET", base+"/calculator/add?a=0&b=0", "", [2]string{})
		if err == nil && status != http.StatusServiceUnavailable {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("503 Service Unavailable")
			}
			return fmt.Errorf("the gateway at %s did not answer in %s; is it running? (go run ./examples/gateway): %w", base, readyTimeout, err)
		case <-time.After(retryEvery):
		}
	}
}

// send makes one request and returns its status and body, trimmed.
func send(ctx context.Context, client *http.Client, method, url, body string, header [2]string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if header[0] != "" {
		req.Header.Set(header[0], header[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// curl is the command line that sends the same request.
func curl(method, url, body string, header [2]string) string {
	var b strings.Builder
	b.WriteString("curl")
	if method != "GET" {
		b.WriteString(" -X " + method)
	}
	if header[0] != "" {
		fmt.Fprintf(&b, " -H '%s: %s'", header[0], header[1])
	}
	if body != "" {
		fmt.Fprintf(&b, " -H 'Content-Type: application/json' -d '%s'", body)
	}
	fmt.Fprintf(&b, " '%s'", url)
	return b.String()
}
