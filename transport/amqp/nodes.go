package amqp

import (
	"net"
	"net/url"
	"strings"

	"github.com/hypha-go/hypha/internal/redact"
)

// SplitURIs splits a comma-separated list of broker URIs, the form
// AMQP_URI takes for the nodes of a cluster, dropping blanks. A comma inside
// a password must be percent-encoded (%2C).
func SplitURIs(uris string) []string {
	var out []string
	for _, u := range strings.Split(uris, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// uri is the URI of the node to connect to next.
func (b *connection) uri() string {
	if len(b.uris) == 0 {
		return ""
	}
	return b.uris[int(b.node.Load())%len(b.uris)]
}

// nextNode moves on to the next node of the list.
func (b *connection) nextNode() {
	if len(b.uris) > 1 {
		b.node.Store(int32((int(b.node.Load()) + 1) % len(b.uris)))
	}
}

// nodeName is the host:port of the node in use, for the log.
func (b *connection) nodeName() string {
	return hostPort(b.uri())
}

// nodes lists the nodes, passwords redacted, for messages.
func (b *connection) nodes() string {
	out := make([]string, len(b.uris))
	for i, u := range b.uris {
		out[i] = redact.URI(u)
	}
	return strings.Join(out, ", ")
}

// hostPort is uri's host:port, or its redacted form when it has none.
func hostPort(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || strings.Contains(u.Host, "@") || redact.URI(uri) != u.Redacted() {
		return redact.URI(uri)
	}
	if u.Port() == "" {
		port := "5672"
		if u.Scheme == "amqps" {
			port = "5671"
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	return u.Host
}
