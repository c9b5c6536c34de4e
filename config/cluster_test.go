package config

import (
	"os"
	"strings"
	"testing"
)

// TestLoadConfigAMQPURIList: a cluster's nodes are a YAML list in the file and comma-separated text in
// the environment; both become the comma-separated form, and memory:// cannot be one of several.
func TestLoadConfigAMQPURIList(t *testing.T) {
	isolateConfig(t)
	file := writeConfig(t, "c.yaml", "AMQP_URI:\n  - amqp://u:p@n1:5681/\n  - ' amqp://u:p@n2:5682/ '\n")
	cfg, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "amqp://u:p@n1:5681/,amqp://u:p@n2:5682/"; cfg.AMQPURI != want {
		t.Fatalf("AMQPURI = %q, want %q", cfg.AMQPURI, want)
	}
	t.Setenv("AMQP_URI", "amqp://u:p@n1:5681/,amqps://u:p@n2:5682/")
	cfg, err = Load(writeConfig(t, "e.yaml", "AMQP_URI: ${AMQP_URI}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "amqp://u:p@n1:5681/,amqps://u:p@n2:5682/"; cfg.AMQPURI != want {
		t.Fatalf("AMQPURI = %q, want %q", cfg.AMQPURI, want)
	}
	_, err = Load(writeConfig(t, "m.yaml", "AMQP_URI: [amqp://u:secret@n1/, 'memory://x']\n"), nil)
	wantErr(t, err, `config AMQP_URI: a list of URLs names a cluster's nodes, amqp:// or amqps:// only, got "memory://x" as URL 2`)
	_, err = Load(writeConfig(t, "n.yaml", "AMQP_URI: [amqp://u:secret@n1/, 5]\n"), nil)
	wantErr(t, err, "config AMQP_URI: want an amqp://, amqps:// or memory:// URL, got 5 as item 2")
	_, err = Load(writeConfig(t, "h.yaml", "AMQP_URI: [amqp://u:secret@n1/, 'http://u:secret@n2/']\n"), nil)
	wantErr(t, err, `config AMQP_URI: want an amqp://, amqps:// or memory:// URL, got "http://u:xxxxx@n2/"`)
}

// TestLoadConfigQueueType: QUEUE_TYPE is classic unless config says quorum, in any case; other values
// and a delivery limit under 1 are refused by name.
func TestLoadConfigQueueType(t *testing.T) {
	isolateConfig(t)
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueType != "classic" || cfg.QueueDeliveryLimit != defaultQueueDeliveryLimit {
		t.Fatalf("defaults: QueueType %q, QueueDeliveryLimit %d", cfg.QueueType, cfg.QueueDeliveryLimit)
	}
	cfg, err = Load("", map[string]any{"queue_type": " Quorum ", "QUEUE_DELIVERY_LIMIT": 5})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueType != "quorum" || cfg.QueueDeliveryLimit != 5 {
		t.Fatalf("QueueType %q, QueueDeliveryLimit %d; want quorum, 5", cfg.QueueType, cfg.QueueDeliveryLimit)
	}
	_, err = Load("", map[string]any{"QUEUE_TYPE": "stream"})
	wantErr(t, err, `config QUEUE_TYPE: want classic or quorum, got "stream"`)
	_, err = Load("", map[string]any{"QUEUE_DELIVERY_LIMIT": 0})
	wantErr(t, err, "config QUEUE_DELIVERY_LIMIT: want a whole number >= 1, got 0")
}

// TestLoadConfigAMQPSSL: nameko's AMQP_SSL keys and LOGIN_METHOD, cert_reqs as Python's number too;
// a certificate without its key, an unknown login method, EXTERNAL without a certificate and a
// missing file are refused by name.
func TestLoadConfigAMQPSSL(t *testing.T) {
	isolateConfig(t)
	cfg, err := Load(writeConfig(t, "c.yaml", "amqp_ssl:\n  ca_certs: ca.pem\n  cert_reqs: 0\nlogin_method: plain\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AMQPSSL.CACerts != "ca.pem" || cfg.AMQPSSL.CertReqs != "none" || cfg.LoginMethod != "PLAIN" {
		t.Fatalf("AMQPSSL %+v, LoginMethod %q", cfg.AMQPSSL, cfg.LoginMethod)
	}
	if tc, err := DefaultSettings().AMQPSSL.TLSConfig(); tc != nil || err != nil {
		t.Fatalf("default TLSConfig() = %v, %v; want nil, nil", tc, err)
	}
	_, err = cfg.AMQPSSL.TLSConfig()
	wantErr(t, err, "config AMQP_SSL.CA_CERTS: open ca.pem: no such file or directory")
	for _, tt := range []struct {
		values map[string]any
		want   string
	}{
		{map[string]any{"AMQP_SSL": map[string]any{"CERTFILE": "c.pem"}}, `config AMQP_SSL.KEYFILE: want the key of AMQP_SSL.CERTFILE, got ""`},
		{map[string]any{"AMQP_SSL": map[string]any{"CERT_REQS": "maybe"}}, `config AMQP_SSL.CERT_REQS: want required, optional or none (2, 1 or 0), got "maybe"`},
		{map[string]any{"LOGIN_METHOD": "kerberos"}, `config LOGIN_METHOD: want PLAIN, AMQPLAIN, EXTERNAL, or empty, got "KERBEROS"`},
		{map[string]any{"LOGIN_METHOD": "EXTERNAL"}, "config LOGIN_METHOD: want EXTERNAL with a client certificate"},
	} {
		_, err := Load("", tt.values)
		wantErr(t, err, tt.want)
	}
}

// TestLoadConfigVarFile: ${AMQP_URI} reads the file AMQP_URI_FILE names when AMQP_URI is unset, as
// container platforms deliver secrets; setting both, or a missing file, is an error that shows no
// secret.
func TestLoadConfigVarFile(t *testing.T) {
	isolateConfig(t)
	cfgFile := writeConfig(t, "c.yaml", "AMQP_URI: ${AMQP_URI:amqp://guest:guest@localhost:5672/}\n")
	secret := writeConfig(t, "uri", "amqp://svc:s3cret@rabbit-1:5672/prod\n")
	t.Setenv("AMQP_URI_FILE", secret)
	cfg, err := Load(cfgFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AMQPURI != "amqp://svc:s3cret@rabbit-1:5672/prod" {
		t.Fatalf("AMQPURI = %q", cfg.AMQPURI)
	}
	if src := cfg.Source("AMQP_URI"); !strings.Contains(src, "$AMQP_URI_FILE") {
		t.Errorf("Source = %q, want it to name $AMQP_URI_FILE", src)
	}
	t.Setenv("AMQP_URI", "amqp://other/")
	_, err = Load(cfgFile, nil)
	wantErr(t, err, "config AMQP_URI: both AMQP_URI and AMQP_URI_FILE are set; set one")
	os.Unsetenv("AMQP_URI")
	t.Setenv("AMQP_URI_FILE", "missing")
	_, err = Load(cfgFile, nil)
	wantErr(t, err, "config AMQP_URI: reading AMQP_URI_FILE: open missing: no such file or directory")
}
