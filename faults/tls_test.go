//go:build faults

package faults_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// The solo node's TLS listener, with certificates made by makeCerts.
const (
	tlsAddr = "127.0.0.1:5685"
	// certUser is the common name of the client certificate, the user an
	// EXTERNAL login logs in as.
	certUser = "hypha-cert-user"
)

// tlsDir holds the files makeCerts made: ca.pem, server.pem and server.key
// for the node; client.pem and client.key (certUser), expired.pem and
// expired.key (a client certificate that has expired), other-ca.pem (a CA
// that signed nothing here).
var tlsDir string

// makeCerts makes a CA, the node's certificate and the clients', in a
// directory the node's user can read.
func makeCerts() (string, error) {
	dir, err := os.MkdirTemp("", "hypha-tls-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	now := time.Now()
	ca, caKey, err := makeCert(dir, "ca", &x509.Certificate{
		Subject: pkix.Name{CommonName: "hypha test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	}, nil, nil)
	if err != nil {
		return "", err
	}
	for _, c := range []struct {
		name   string
		tmpl   *x509.Certificate
		signer *x509.Certificate
	}{
		{"server", &x509.Certificate{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, ca},
		{"client", &x509.Certificate{Subject: pkix.Name{CommonName: certUser},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			NotBefore:   now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, ca},
		{"expired", &x509.Certificate{Subject: pkix.Name{CommonName: certUser},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			NotBefore:   now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, ca},
		{"other-ca", &x509.Certificate{Subject: pkix.Name{CommonName: "another CA"}, IsCA: true,
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, nil},
	} {
		if _, _, err := makeCert(dir, c.name, c.tmpl, c.signer, caKey); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// makeCert writes <name>.pem and <name>.key in dir: tmpl signed by signer
// (with signerKey), or by itself when signer is nil.
func makeCert(dir, name string, tmpl, signer *x509.Certificate, signerKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if signer == nil {
		signer, signerKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	for file, block := range map[string]*pem.Block{
		name + ".pem": {Type: "CERTIFICATE", Bytes: der},
		name + ".key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		// Readable by the node's user: these are a test's throwaway keys.
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o644); err != nil {
			return nil, nil, err
		}
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// tlsURI is the package vhost's URI on the TLS listener.
func tlsURI(t *testing.T, user string) string {
	uri := strings.Replace(testbroker.URI(t), "amqp://guest:guest@"+soloAddr, "amqps://"+user+"@"+tlsAddr, 1)
	if !strings.HasPrefix(uri, "amqps://") {
		t.Fatalf("unexpected test URI %s", uri)
	}
	return uri
}

func tlsFile(name string) string { return filepath.Join(tlsDir, name) }

// TestTLS runs calculator over amqps:// with the CA from AMQP_SSL, logging
// in with a password, and a client logging in with its certificate
// (LOGIN_METHOD EXTERNAL); a wrong CA and an expired client certificate
// fail the start at once with errors that say so.
func TestTLS(t *testing.T) {
	if tlsDir == "" {
		t.Fatal("the TLS certificates were not made; see TestMain's output")
	}
	vh := testbroker.VHost(t)
	if out, err := rabbitmqctl(30*time.Second, "add_user", certUser, "unused-password"); err != nil {
		t.Fatalf("add_user: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = rabbitmqctl(30*time.Second, "delete_user", certUser) })
	if out, err := rabbitmqctl(30*time.Second, "set_permissions", "-p", vh, certUser, ".*", ".*", ".*"); err != nil {
		t.Fatalf("set_permissions: %v\n%s", err, out)
	}
	ssl := func(ca, cert string) map[string]any {
		m := map[string]any{"CA_CERTS": tlsFile(ca)}
		if cert != "" {
			m["CERTFILE"], m["KEYFILE"] = tlsFile(cert+".pem"), tlsFile(cert+".key")
		}
		return m
	}
	hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(map[string]any{
		"AMQP_URI": tlsURI(t, "guest:guest"), "AMQP_SSL": ssl("ca.pem", ""),
	}), framework.Service(calculator.Name, calculator.New))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := openClient(ctx, t, map[string]any{
		"AMQP_URI": tlsURI(t, ""), "AMQP_SSL": ssl("ca.pem", "client"), "LOGIN_METHOD": "external", "RPC_TIMEOUT": 10,
	}, nil)
	if err != nil {
		t.Fatalf("EXTERNAL login with the client certificate: %v", err)
	}
	sum, err := rpc.Call[float64](ctx, client.Proxy(calculator.Name), "add", calculator.Operands{A: 2, B: 3})
	if err != nil || sum != 5 {
		t.Fatalf("add over TLS = %v, %v", sum, err)
	}

	for _, tt := range []struct {
		name string
		ssl  map[string]any
		want []string
	}{
		{"wrong CA", ssl("other-ca.pem", ""), []string{"TLS handshake with 127.0.0.1", "certificate signed by unknown authority"}},
		{"expired client certificate", ssl("ca.pem", "expired"),
			[]string{"config AMQP_SSL.CERTFILE: " + tlsFile("expired.pem") + `: the certificate of "` + certUser + `" expired at`}},
	} {
		start := time.Now()
		app, err := framework.New(framework.Logger(quiet),
			framework.ConfigValues(map[string]any{"AMQP_URI": tlsURI(t, "guest:guest"), "AMQP_SSL": tt.ssl}),
			framework.Service(calculator.Name, calculator.New))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err = app.Start(ctx)
			cancel()
			if err == nil {
				app.Stop(context.Background())
			}
		}
		if err == nil {
			t.Errorf("%s: the app started", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want it to contain %q", tt.name, err, w)
			}
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: failed after %s, not at once", tt.name, took)
		}
		t.Logf("%s: %v", tt.name, err)
	}
}
