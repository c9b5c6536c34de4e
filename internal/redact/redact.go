// Package redact hides the passwords in broker URIs before they reach a log
// line, an error, a span or a command's output.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Mask is what replaces a password: the same as net/url's URL.Redacted.
const Mask = "xxxxx"

// URI returns uri with its password replaced by [Mask]. A URI that does not
// parse cleanly, or whose "@" is not where the user information ends, keeps
// only its scheme and what follows its last "@", so that no part of a
// password written unencoded can show: "amqp://xxxxx@host/vhost".
func URI(uri string) string {
	u, err := url.Parse(uri)
	at := strings.LastIndex(uri, "@")
	if at < 0 {
		if err != nil {
			return "(not a valid URI)"
		}
		return uri
	}
	if err == nil && u.Scheme != "" && u.Opaque == "" && u.User != nil && !strings.ContainsAny(u.Host+u.RawPath+u.Path+u.RawQuery+u.Fragment, "@") {
		return u.Redacted()
	}
	s := Scheme(uri)
	if s != "" {
		s += "://"
	}
	return s + Mask + "@" + uri[at+1:]
}

// URIs is [URI] for each of a comma-separated list of URIs.
func URIs(uris string) string {
	if !strings.Contains(uris, ",") {
		return URI(uris)
	}
	parts := strings.Split(uris, ",")
	for i, p := range parts {
		lead := p[:len(p)-len(strings.TrimLeft(p, " \t"))]
		parts[i] = lead + URI(strings.TrimLeft(p, " \t"))
	}
	return strings.Join(parts, ",")
}

// Scheme returns the scheme uri starts with ("amqp" of "amqp://..."), or ""
// when it starts with no scheme and "://": never anything else of uri.
func Scheme(uri string) string {
	s, _, ok := strings.Cut(uri, "://")
	if !ok || s == "" {
		return ""
	}
	for i, c := range s {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return ""
		}
	}
	return s
}

// HasUserInfo reports whether uri may hold credentials: whether it has an "@".
func HasUserInfo(uri string) bool { return strings.Contains(uri, "@") }

// ParseError is the text of err, an error from parsing uri, that is safe to
// show. net/url's errors repeat the URI, so only the reason is kept, and that
// reason quotes the piece that failed (`invalid port ":5x" after host`): when
// that piece may be part of the credentials, as when a password holds an
// unencoded "/" or "%", the reason is a hint instead.
func ParseError(uri string, err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		if HasUserInfo(uri) {
			return encodeHint
		}
		return err.Error()
	}
	msg := ue.Err.Error()
	if !HasUserInfo(uri) {
		return msg
	}
	creds := uri[:strings.LastIndex(uri, "@")]
	if _, after, ok := strings.Cut(creds, "://"); ok {
		creds = after
	}
	if _, pw, ok := strings.Cut(creds, ":"); ok && pw != "" && strings.Contains(msg, pw) {
		return encodeHint
	}
	for _, q := range quoted.FindAllString(msg, -1) {
		if piece, err := strconv.Unquote(q); err != nil || piece != "" && strings.Contains(creds, piece) {
			return encodeHint
		}
	}
	return msg
}

// encodeHint replaces a parse error that could show a piece of a password.
const encodeHint = "not a valid URI (a user name or password holding a reserved character such as " +
	`"/", "?", "#", "@", ":" or "%" must be percent-encoded)`

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
