package amqp

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/cenkalti/backoff/v4"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
)

// defaultDialTimeout bounds one connection attempt when ctx has no deadline.
const defaultDialTimeout = 10 * time.Second

func newBackoff(p transport.ReconnectPolicy) *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = p.IntervalStart
	bo.MaxInterval = p.IntervalMax
	bo.MaxElapsedTime = p.MaxElapsed
	bo.Reset()
	return bo
}

// sleep waits d, or returns early with an error when ctx ends or done closes.
func sleep(ctx context.Context, done <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return errClosing
	}
}

var (
	errClosing = errors.New("hypha: broker connection closing")
	errBadURI  = errors.New("hypha: malformed broker URI")
)

// dialer connects for one attempt: the TCP connect ends with ctx or Close,
// and a deadline bounds the AMQP handshake (amqp091-go clears it once the
// connection is open, and heartbeats take over).
func (b *connection) dialer(ctx context.Context) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		timeout := defaultDialTimeout
		if deadline, ok := ctx.Deadline(); ok {
			timeout = min(time.Until(deadline), timeout)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		go func() {
			select {
			case <-b.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// permanent reports whether a connection error would recur on every retry:
// refused credentials, a vhost the user may not use, a malformed URI, a
// broker certificate that does not verify.
func permanent(err error) bool {
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) {
		switch amqpErr.Code {
		case amqp091.AccessRefused, amqp091.NotAllowed:
			return true
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
	)
	return errors.Is(err, errBadURI) || errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname)
}

// describe is a connection's close reason for the log.
func describe(e *amqp091.Error) string {
	if e == nil {
		return "closed"
	}
	return e.Error()
}

// Options are the options the connection runs with, defaults filled in: what a
// test or a diagnostic reads to see what reached the connection. Heartbeat
// is zero when heartbeats are off.
func (b *connection) Options() Options { return b.opts }
