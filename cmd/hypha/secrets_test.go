package main

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/internal/testbroker"
)

func init() { cliTests["secrets"] = testSecrets }

// testSecrets runs every command as a user with a distinctive password,
// given with --broker, HYPHA_AMQP_URI or HYPHA_AMQP_URI_FILE, and fails them
// with a wrong password, a closed port and URIs the password malforms: the
// password shows in no output and no error.
func testSecrets(t *testing.T) {
	vhost := testbroker.VHost(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	user, password := "hypha-cli-audit-"+id, "s3cr3t-"+id
	if out, err := testbroker.Rabbitmqctl("add_user", user, password); err != nil {
		t.Fatalf("add_user: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = testbroker.Rabbitmqctl("delete_user", user) })
	if out, err := testbroker.Rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"); err != nil {
		t.Fatalf("set_permissions: %v\n%s", err, out)
	}
	if out, err := testbroker.Rabbitmqctl("set_user_tags", user, "management"); err != nil {
		t.Fatalf("set_user_tags: %v\n%s", err, out)
	}
	u, err := url.Parse(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	uri := u.String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "amqp-uri")
	if err := os.WriteFile(file, []byte(uri+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's own ${AMQP_URI} reads AMQP_URI_FILE; HYPHA_AMQP_URI_FILE works beside any file.
	nameko := filepath.Join(t.TempDir(), "nameko.yaml")
	plain := filepath.Join(t.TempDir(), "plain.yaml")
	if os.WriteFile(nameko, []byte("AMQP_URI: ${AMQP_URI}\n"), 0o600) != nil || os.WriteFile(plain, []byte("MAX_WORKERS: 2\n"), 0o600) != nil {
		t.Fatal("cannot write the config files")
	}
	wrong := strings.Replace(uri, password, password+"-wrong", 1)
	down := "amqp://" + user + ":" + password + "@" + closed + "/"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		ok   bool
	}{
		{"config", nil, []string{"--broker", uri, "config"}, true},
		{"config json", nil, []string{"--broker", uri, "config", "--json"}, true},
		{"config from a file", []string{"HYPHA_AMQP_URI_FILE=" + file}, []string{"--config", plain, "config"}, true},
		{"config from ${AMQP_URI}", []string{"AMQP_URI_FILE=" + file}, []string{"--config", nameko, "config"}, true},
		{"config of a list", nil, []string{"--broker", down + "," + uri, "config"}, true},
		{"call", []string{"HYPHA_AMQP_URI=" + uri}, []string{"--config", plain, "call", "calculator.add", "1", "2"}, true},
		{"call from a file", []string{"HYPHA_AMQP_URI_FILE=" + file}, []string{"--config", plain, "call", "calculator.add", "1", "2"}, true},
		{"call from ${AMQP_URI}", []string{"AMQP_URI_FILE=" + file}, []string{"--config", nameko, "call", "calculator.add", "1", "2"}, true},
		{"services", nil, []string{"--broker", uri, "services"}, true},
		{"inspect", nil, []string{"--broker", uri, "inspect", "calculator"}, true},
		{"dlq list", nil, []string{"--broker", uri, "dlq", "list"}, true},
		{"dispatch", nil, []string{"--broker", uri, "events", "dispatch", "audit", "checked", "{}"}, true},
		{"wrong password", nil, []string{"--broker", wrong, "call", "calculator.add", "1", "2"}, false},
		{"wrong password services", nil, []string{"--broker", wrong, "services"}, false},
		{"closed port", nil, []string{"--broker", down, "call", "calculator.add", "1", "2"}, false},
		{"unencoded slash", nil, []string{"--broker", "amqp://" + user + ":" + password + "/x@" + u.Host + "/", "call", "calculator.add", "1", "2"}, false},
		{"bad escape", nil, []string{"--broker", "amqp://" + user + ":" + password + "%zz@" + u.Host + "/", "config"}, false},
		{"management", nil, []string{"--broker", uri, "services", "--management", "http://" + user + ":" + password + "%zz@127.0.0.1:1/"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := hyphaEnv(t, tc.env, "", tc.args...)
			if tc.ok && r.code != 0 || !tc.ok && r.code == 0 {
				t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			for _, form := range []string{password, url.QueryEscape(password)} {
				if strings.Contains(r.stdout+r.stderr, form) {
					t.Errorf("the output shows the password; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
				}
			}
			if tc.name == "config from a file" && !strings.Contains(r.stdout, "$HYPHA_AMQP_URI_FILE") ||
				tc.name == "config from ${AMQP_URI}" && !strings.Contains(r.stdout, "$AMQP_URI_FILE") {
				t.Errorf("config does not say AMQP_URI came from the file:\n%s", r.stdout)
			}
			if strings.HasPrefix(tc.name, "call") && r.stdout != "3\n" {
				t.Errorf("stdout = %q, want 3", r.stdout)
			}
		})
	}
}
