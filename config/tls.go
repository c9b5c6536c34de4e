package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// TLSConfig builds the TLS configuration of amqps:// connections from AMQP_SSL, reading its files
// now; nil when AMQP_SSL sets nothing (the URI's cacertfile, certfile and keyfile then apply, and the
// system's roots). An unreadable file, a file without a certificate, or a client certificate that has
// expired or is not valid yet is an error naming the key.
func (t SSLSettings) TLSConfig() (*tls.Config, error) {
	if t.CACerts == "" && t.CertFile == "" && t.KeyFile == "" && t.CertReqs == defaultCertReqs {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.CertReqs == "none"}
	if t.CACerts != "" {
		pem, err := os.ReadFile(t.CACerts)
		if err != nil {
			return nil, fmt.Errorf("config AMQP_SSL.CA_CERTS: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config AMQP_SSL.CA_CERTS: no PEM certificate in %s", t.CACerts)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("config AMQP_SSL.CERTFILE and KEYFILE: %w", err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("config AMQP_SSL.CERTFILE: %w", err)
		}
		if err := validNow(leaf, time.Now()); err != nil {
			return nil, fmt.Errorf("config AMQP_SSL.CERTFILE: %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// validNow reports a certificate outside its validity period at now.
func validNow(c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("the certificate of %q expired at %s; renew it", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("the certificate of %q is not valid before %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
