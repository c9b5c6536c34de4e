package amqp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/redact"
	"github.com/hypha-go/hypha/transport/amqp/internal/frame"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// defaultFrameSize is the frame_max Hypha asks for: RabbitMQ's own default.
// It is never unlimited, so the frame reader always knows its bound.
const defaultFrameSize = wire.DefaultFrameSize

// open dials the broker on a connection of our own, so that the frame reader
// sees the plaintext frames before amqp091-go does, and opens an AMQP
// connection on it. amqp091.DialConfig would wrap TLS itself and hide them.
func (b *connection) open(ctx context.Context, raw string) (*amqp091.Connection, *frame.Conn, error) {
	uri, err := amqp091.ParseURI(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: %s", errBadURI, redact.URI(raw), redact.ParseError(raw, err))
	}
	cfg, err := b.config(uri, raw)
	if err != nil {
		return nil, nil, err
	}
	addr := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	nc, err := b.dialer(ctx)("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if uri.Scheme == "amqps" {
		nc, err = b.handshakeTLS(ctx, nc, uri)
		if err != nil {
			return nil, nil, err
		}
	}
	fc := frame.NewConn(nc, frame.Limits{
		MaxBody:      b.opts.MaxMessageSize,
		FrameSize:    uint32(cfg.FrameSize),
		HeartbeatOff: b.opts.Heartbeat == 0,
	})
	conn, err := amqp091.Open(fc, cfg)
	if err != nil {
		fc.Close()
		return nil, nil, err
	}
	fc.SetFrameMax(conn.Config.FrameSize)
	return conn, fc, nil
}

// config fills in what amqp091.DialConfig would: credentials and vhost from
// the URI, and Hypha's heartbeat (zero is off: the frame reader makes the
// broker agree) and frame size.
func (b *connection) config(uri amqp091.URI, raw string) (amqp091.Config, error) {
	props := amqp091.NewConnectionProperties()
	if b.opts.Name != "" {
		props.SetClientConnectionName(b.opts.Name)
	}
	cfg := amqp091.Config{
		Vhost:      uri.Vhost,
		ChannelMax: uri.ChannelMax,
		FrameSize:  defaultFrameSize,
		Heartbeat:  b.opts.Heartbeat,
		Properties: props,
		Locale:     "en_US",
	}
	mechs := uri.AuthMechanism
	if b.opts.LoginMethod != "" {
		mechs = []string{b.opts.LoginMethod}
	}
	if len(mechs) == 0 {
		cfg.SASL = []amqp091.Authentication{uri.PlainAuth()}
	}
	for _, mech := range mechs {
		switch strings.ToUpper(mech) {
		case "PLAIN":
			cfg.SASL = append(cfg.SASL, uri.PlainAuth())
		case "AMQPLAIN":
			cfg.SASL = append(cfg.SASL, uri.AMQPlainAuth())
		case "EXTERNAL":
			cfg.SASL = append(cfg.SASL, &amqp091.ExternalAuth{})
		default:
			return cfg, fmt.Errorf("%w %s: unsupported auth_mechanism %q", errBadURI, redact.URI(raw), mech)
		}
	}
	return cfg, nil
}

// handshakeTLS runs the TLS handshake on raw within the dial's deadline.
func (b *connection) handshakeTLS(ctx context.Context, raw net.Conn, uri amqp091.URI) (net.Conn, error) {
	cfg, err := tlsConfig(b.opts.TLS, uri)
	if err != nil {
		raw.Close()
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("hypha: TLS handshake with %s: %w", uri.Host, err)
	}
	return conn, nil
}

// tlsConfig is Options.TLS, or one built from the URI's cacertfile, certfile
// and keyfile, with the server name from the URI when none is set.
func tlsConfig(base *tls.Config, uri amqp091.URI) (*tls.Config, error) {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		if uri.CACertFile != "" {
			pem, err := os.ReadFile(uri.CACertFile)
			if err != nil {
				return nil, fmt.Errorf("hypha: reading the broker URI's cacertfile: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AppendCertsFromPEM(pem)
		}
		if uri.CertFile != "" && uri.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(uri.CertFile, uri.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("hypha: loading the broker URI's client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = uri.ServerName
	}
	if cfg.ServerName == "" {
		cfg.ServerName = uri.Host
	}
	return cfg, nil
}
