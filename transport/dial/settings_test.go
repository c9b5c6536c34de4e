package dial_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// TestSettingsTakesEveryKey: each connection-level key of the loaded
// config reaches the connection Dial makes with Settings, as the broker runs it;
// HEARTBEAT 0 turns heartbeats off, as config documents.
func TestSettingsTakesEveryKey(t *testing.T) {
	ca, key := writeCA(t)
	cfg, err := config.Load("", map[string]any{
		"AMQP_URI":             "amqps://broker.example:5671/prod",
		"HEARTBEAT":            0,
		"MAX_MESSAGE_SIZE":     12345,
		"AMQP_SSL":             map[string]any{"CA_CERTS": ca, "CERTFILE": ca, "KEYFILE": key},
		"LOGIN_METHOD":         "EXTERNAL",
		"RECONNECT":            map[string]any{"INTERVAL_START": 0.25, "INTERVAL_MAX": 3, "MAX_ELAPSED": 40},
		"RPC_RETRY_POLICY":     map[string]any{"MAX_RETRIES": 5, "INTERVAL_START": 0.1, "INTERVAL_STEP": 0.2, "INTERVAL_MAX": 0.5},
		"QUEUE_TYPE":           "quorum",
		"QUEUE_DELIVERY_LIMIT": 9,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dial.Dial(t.Context(), cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name("keys"), dial.Lazy())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := b.(interface{ Options() amqp.Options }).Options()
	for _, tt := range []struct {
		key       string
		got, want any
	}{
		{"HEARTBEAT 0 (off)", got.Heartbeat, time.Duration(0)},
		{"MAX_MESSAGE_SIZE", got.MaxMessageSize, int64(12345)},
		{"AMQP_SSL.CA_CERTS", got.TLS != nil && got.TLS.RootCAs != nil, true},
		{"AMQP_SSL.CERTFILE", got.TLS != nil && len(got.TLS.Certificates) == 1, true},
		{"LOGIN_METHOD", got.LoginMethod, "EXTERNAL"},
		{"RECONNECT", got.Reconnect, transport.ReconnectPolicy{IntervalStart: 250 * time.Millisecond, IntervalMax: 3 * time.Second, MaxElapsed: 40 * time.Second}},
		{"RPC_RETRY_POLICY", got.Retry, transport.RetryPolicy{MaxRetries: 5, IntervalStart: 100 * time.Millisecond, IntervalStep: 200 * time.Millisecond, IntervalMax: 500 * time.Millisecond}},
		{"QUEUE_TYPE", got.QueueType, "quorum"},
		{"QUEUE_DELIVERY_LIMIT", got.DeliveryLimit, 9},
		{"connection name", got.Name, "keys"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: the connection has %v, want %v", tt.key, tt.got, tt.want)
		}
	}

	cfg.Heartbeat = 7 * time.Second
	b7, err := dial.Dial(t.Context(), "amqp://localhost/", dial.Settings(cfg.Settings), dial.Lazy())
	if err != nil {
		t.Fatal(err)
	}
	defer b7.Close()
	if hb := b7.(interface{ Options() amqp.Options }).Options().Heartbeat; hb != 7*time.Second {
		t.Errorf("HEARTBEAT 7: the connection has %s", hb)
	}
	if hb := amqp.New("amqp://localhost/", amqp.Options{}).Options().Heartbeat; hb != config.DefaultSettings().Heartbeat {
		t.Errorf("amqp.Options' default heartbeat %s is not config's %s", hb, config.DefaultSettings().Heartbeat)
	}
}

// TestSettingsEmbedded: the embedded broker takes MAX_MESSAGE_SIZE too.
func TestSettingsEmbedded(t *testing.T) {
	s := config.DefaultSettings()
	s.AMQPURI, s.MaxMessageSize = "memory://from-settings", 4
	defer memory.Reset("from-settings")
	b, err := dial.Dial(t.Context(), s.AMQPURI, dial.Settings(s))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Publish(t.Context(), transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("12345")}})
	if err == nil || !strings.Contains(err.Error(), "MAX_MESSAGE_SIZE 4") {
		t.Errorf("a 5-byte body got %v, want MAX_MESSAGE_SIZE 4 to refuse it", err)
	}
}

// TestSettingsNamesBadKeys: a bad AMQP_SSL file or AMQP_URI is an error
// naming the key.
func TestSettingsNamesBadKeys(t *testing.T) {
	s := config.DefaultSettings()
	s.AMQPSSL.CACerts = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := dial.Dial(t.Context(), s.AMQPURI, dial.Settings(s), dial.Lazy()); err == nil || !strings.Contains(err.Error(), "AMQP_SSL.CA_CERTS") {
		t.Errorf("a missing CA file gave %v, want an error naming AMQP_SSL.CA_CERTS", err)
	}
	s = config.DefaultSettings()
	s.AMQPURI = "redis://localhost"
	if _, err := dial.Dial(t.Context(), s.AMQPURI, dial.Settings(s), dial.Lazy()); err == nil || !strings.Contains(err.Error(), "AMQP_URI") {
		t.Errorf("a redis:// URI gave %v, want an error naming AMQP_URI", err)
	}
}

// writeCA writes a self-signed CA certificate and its key, and returns
// their files: a client certificate too, for LOGIN_METHOD EXTERNAL.
func writeCA(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
