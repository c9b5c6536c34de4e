package redact

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"amqp://guest:s3cr3t@localhost:5672/vh", "amqp://guest:xxxxx@localhost:5672/vh"},
		{"amqp://guest@localhost/", "amqp://guest@localhost/"},
		{"amqp://localhost/", "amqp://localhost/"},
		{"memory://test", "memory://test"},
		{"amqp://u:s3cr3t/x@host/vh", "amqp://xxxxx@host/vh"},     // "/" unencoded ends the authority
		{"amqp://u:12/s3cr3t@host/vh", "amqp://xxxxx@host/vh"},    // parses, with the password in the path
		{"amqp://u:s3%zzcr3t@host/", "amqp://xxxxx@host/"},        // a bad escape
		{"amqp//u:s3cr3t@host/", "xxxxx@host/"},                   // no scheme
		{"amqp:u:s3cr3t@host/", "xxxxx@host/"},                    // opaque
		{"amqp://u:s3c r3t@host/", "amqp://xxxxx@host/"},          // a space
		{"amqp://u:s3cr3t@host:port/", "amqp://xxxxx@host:port/"}, // a bad port
		{"u:s3cr3t@host", "xxxxx@host"},                           // no scheme at all
		{"amqp://host:bad/", "(not a valid URI)"},
	}
	for _, tt := range tests {
		if got := URI(tt.in); got != tt.want {
			t.Errorf("URI(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(URI(tt.in), "s3") {
			t.Errorf("URI(%q) = %q shows the password", tt.in, URI(tt.in))
		}
	}
	if got, want := URIs("amqp://a:s3cr3t@n1/, amqp://a:s3cr3t@n2/"), "amqp://a:xxxxx@n1/, amqp://a:xxxxx@n2/"; got != want {
		t.Errorf("URIs = %q, want %q", got, want)
	}
}

func TestParseError(t *testing.T) {
	for _, uri := range []string{"amqp://u:s3cr3t/x@host/", "amqp://u:s3%zz@host/"} {
		_, err := url.Parse(uri)
		if err == nil {
			t.Fatalf("%q parsed", uri)
		}
		if got := ParseError(uri, err); strings.Contains(got, "s3") || !strings.Contains(got, "percent-encoded") {
			t.Errorf("ParseError(%q) = %q", uri, got)
		}
	}
	for _, badPort := range []string{"amqp://u:s3cr3t@host:bad/"} {
		_, err := url.Parse(badPort)
		if got := ParseError(badPort, err); got != `invalid port ":bad" after host` {
			t.Errorf("ParseError of a bad port = %q, want the reason", got)
		}
	}
	if got := ParseError("amqp://host/", errors.New("other")); got != "other" {
		t.Errorf("ParseError without credentials = %q, want the error itself", got)
	}
}

func TestScheme(t *testing.T) {
	for in, want := range map[string]string{"amqp://x": "amqp", "amqps://x": "amqps", "u:pw@h": "", "u:p w@h://": "", "a/b://c": "", "://x": "", "x": "", "1a:b": ""} {
		if got := Scheme(in); got != want {
			t.Errorf("Scheme(%q) = %q, want %q", in, got, want)
		}
	}
}
