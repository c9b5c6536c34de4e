package config

import (
	"os"
	"strings"
	"testing"
)

// TestLoadEnvFile: with no config file at all, HYPHA_AMQP_URI_FILE names the file holding AMQP_URI, and
// HYPHA_<KEY>_FILE does the same for any key, nested ones included; a key whose name ends in _FILE
// stays itself.
func TestLoadEnvFile(t *testing.T) {
	isolateConfig(t)
	secret := writeConfig(t, "uri", "amqp://svc:s3cret@rabbit-1:5672/prod\n")
	key := writeConfig(t, "key", "/run/secrets/key.pem\n")
	setEnv(t, map[string]string{"HYPHA_AMQP_URI_FILE": secret, "HYPHA_AMQP_SSL__KEYFILE_FILE": key,
		"HYPHA_AMQP_SSL__CERTFILE": "/run/secrets/cert.pem"})
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AMQPURI != "amqp://svc:s3cret@rabbit-1:5672/prod" {
		t.Fatalf("AMQPURI = %q", cfg.AMQPURI)
	}
	if cfg.AMQPSSL.KeyFile != "/run/secrets/key.pem" {
		t.Fatalf("AMQP_SSL.KEYFILE = %q", cfg.AMQPSSL.KeyFile)
	}
	if src := cfg.Source("AMQP_URI"); src != "$HYPHA_AMQP_URI_FILE" {
		t.Errorf("Source = %q, want $HYPHA_AMQP_URI_FILE", src)
	}
	if cfg.Get("AMQP_URI_FILE") != nil {
		t.Errorf("AMQP_URI_FILE became a key: %v", cfg.Get("AMQP_URI_FILE"))
	}

	t.Setenv("HYPHA_AMQP_URI", "amqp://other/")
	_, err = Load("", nil)
	wantErr(t, err, "config AMQP_URI: both HYPHA_AMQP_URI and HYPHA_AMQP_URI_FILE are set; set one")
	os.Unsetenv("HYPHA_AMQP_URI")
	t.Setenv("HYPHA_AMQP_URI_FILE", "missing")
	_, err = Load("", nil)
	wantErr(t, err, "config AMQP_URI: reading HYPHA_AMQP_URI_FILE: open missing: no such file or directory")
	os.Unsetenv("HYPHA_AMQP_URI_FILE")

	// A service's own key named *_FILE is a key, not a file to read.
	cfgFile := writeConfig(t, "c.yaml", "CERT_FILE: a.pem\n")
	t.Setenv("HYPHA_CERT_FILE", "b.pem")
	cfg, err = Load(cfgFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cfg.String("CERT_FILE"); got != "b.pem" {
		t.Errorf("CERT_FILE = %q, want b.pem", got)
	}
}

// TestErrorsHideThePassword: a malformed AMQP_URI or TRACING.ENDPOINT is named in the error with its
// password hidden, even when the password is what makes it malformed.
func TestErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t"
	for _, uri := range []string{
		"amqp://u:s3cr3t/x@host/",      // an unencoded "/"
		"amqp://u:s3cr3t%zz@host/",     // a bad escape
		"amqp//u:s3cr3t@host/",         // no scheme
		"amqp:u:s3cr3t@host/",          // opaque
		"ftp://u:s3cr3t@host/",         // another scheme
		"amqp://u:s3cr3t@host:port/",   // a bad port
		"amqp://u:s3cr3t@h/,memory://", // memory:// in a list
		"amqp://u:s3cr3t@h/,u:s3cr3t@h2",
	} {
		s := DefaultSettings()
		s.AMQPURI = uri
		err := s.Validate()
		if err == nil {
			t.Errorf("%q: no error", uri)
			continue
		}
		if strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), "AMQP_URI") {
			t.Errorf("%q: error %q", uri, err)
		}
	}
	s := DefaultSettings()
	s.Tracing.Exporter, s.Tracing.Endpoint = "otlp", "http//u:s3cr3t@collector:4318"
	if err := s.Validate(); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("TRACING.ENDPOINT: error %v", err)
	}
}
