package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func init() {
	cliTests["call"] = testCall
	cliTests["call errors"] = testCallErrors
	cliTests["call timeout"] = testTimeoutOverRPCTimeout
	cliTests["call reply key prefix"] = testReplyKeyPrefix
	cliTests["inspect"] = testInspect
	cliTests["config"] = testConfig
	cliTests["usage"] = testUsage
}

func testCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"json", "", []string{"call", "calculator.add", `{"a": 1, "b": 2}`}, "3\n"},
		{"name=value", "", []string{"call", "calculator.add", "a=1", "b=2.5"}, "3.5\n"},
		{"positional", "", []string{"call", "calculator.multiply", "3", "4"}, "12\n"},
		{"json array", "", []string{"call", "calculator.subtract", "[10, 4]"}, "6\n"},
		{"stdin", `{"a": 2, "b": 2}`, []string{"call", "calculator.add"}, "4\n"},
		{"compact when piped", "", []string{"call", "user_service.calculate_user_score", "user_id=ann", "base_score=10", "multiplier=3"},
			`{"user_id":"ann","score":30}` + "\n"},
		{"context", "", []string{"call", "echo.context", "--context", "user_id=ann", "--context", "tenant=7", "--idempotent"},
			`{"tenant":7,"user_id":"ann"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hypha(t, tc.stdin, tc.args...)
			r.want(t, exitOK)
			if r.stdout != tc.want {
				t.Errorf("stdout = %q, want %q", r.stdout, tc.want)
			}
		})
	}
}

// testTimeoutOverRPCTimeout: --timeout may wait longer than RPC_TIMEOUT.
func testTimeoutOverRPCTimeout(t *testing.T) {
	r := hyphaEnv(t, []string{"HYPHA_RPC_TIMEOUT=0.1"}, "", "call", "echo.sleep", "ms=400", "--timeout", "5s")
	r.want(t, exitOK, `"slept"`)
	r = hyphaEnv(t, []string{"HYPHA_RPC_TIMEOUT=0.1"}, "", "call", "echo.sleep", "ms=400")
	r.want(t, exitTimeout)
	r.wantErr(t, "no reply within 100ms")
}

// testReplyKeyPrefix: RPC_REPLY_KEY_PREFIX starts the reply key of the
// command's calls; without it the key is a bare uuid, as nameko's; a prefix
// of one word is refused by name.
func testReplyKeyPrefix(t *testing.T) {
	r := hyphaEnv(t, []string{"HYPHA_RPC_REPLY_KEY_PREFIX=reply.cli"}, "", "call", "echo.reply_to")
	r.want(t, exitOK, `"reply.cli.`)
	r = hypha(t, "", "call", "echo.reply_to")
	r.want(t, exitOK)
	if key, err := strconv.Unquote(strings.TrimSpace(r.stdout)); err != nil || strings.Contains(key, ".") {
		t.Errorf("reply key without a prefix = %s, %v; want a bare uuid", r.stdout, err)
	}
	r = hyphaEnv(t, []string{"HYPHA_RPC_REPLY_KEY_PREFIX=cli"}, "", "call", "echo.reply_to")
	r.want(t, exitError)
	r.wantErr(t, `config RPC_REPLY_KEY_PREFIX: want empty, or two or more dot-separated words`, `got "cli"`)
}

func testCallErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"remote error", []string{"call", "calculator.divide", "a=1", "b=0"}, exitRemoteError,
			[]string{"ZeroDivisionError", "division by zero"}},
		{"service not found", []string{"call", "nobody.add"}, exitServiceNotFound, []string{`service "nobody" not found`, "rpc-nobody"}},
		{"method not found", []string{"call", "calculator.power", "a=1"}, exitMethodNotFound,
			[]string{`no method "power"`, "add, subtract, multiply, divide"}},
		{"method name with a dot", []string{"call", "calculator.add.x", "a=1"}, exitMethodNotFound,
			[]string{`no method "add.x"`, "add, subtract, multiply, divide"}},
		{"incorrect signature", []string{"call", "calculator.add", "a=1"}, exitIncorrectSignature,
			[]string{"incorrect signature", "expected: calculator.add(a, b)", "float64"}},
		{"timeout", []string{"call", "echo.sleep", "ms=5000", "--timeout", "300ms"}, exitTimeout, []string{"no reply within 300ms"}},
		{"not SERVICE.METHOD", []string{"call", "calculator"}, exitUsage, []string{"is not SERVICE.METHOD"}},
		// Sent, these would close the broker connection, and the call would
		// go again after each reconnect until the timeout.
		{"routing key over 255 bytes", []string{"call", "calculator." + strings.Repeat("m", 300), "--timeout", "60s"}, exitUsage,
			[]string{"routing key", "311 bytes", "limit of 255"}},
		{"context key over 255 bytes", []string{"call", "calculator.add", "a=1", "b=2", "--timeout", "60s",
			"--context", strings.Repeat("k", 260) + "=1"}, exitUsage, []string{"header", "267 bytes", "limit of 255"}},
		{"mixed arguments", []string{"call", "calculator.add", "a=1", "2"}, exitUsage, []string{"not both"}},
		{"negative timeout", []string{"call", "calculator.add", "a=1", "b=2", "--timeout", "-2s"}, exitUsage,
			[]string{"--timeout -2s: want a positive duration"}},
		{"negative bench timeout", []string{"bench", "calculator.add", "a=1", "b=2", "--timeout", "-2s"}, exitUsage,
			[]string{"--timeout -2s: want a positive duration"}},
		{"broker unreachable", []string{"--broker", "amqp://guest:secret@127.0.0.1:1/", "call", "calculator.add"}, exitError,
			[]string{"cannot connect to the broker at amqp://guest:****@127.0.0.1:1/", "--broker"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hypha(t, "", tc.args...)
			r.want(t, tc.code)
			r.wantErr(t, tc.stderr...)
			if strings.Contains(r.stderr, "secret") {
				t.Errorf("stderr shows the password:\n%s", r.stderr)
			}
		})
	}
}

func testInspect(t *testing.T) {
	r := hypha(t, "", "inspect", "calculator")
	r.want(t, exitOK, "calculator: 4 RPC method(s), 0 event handler(s)", "add(a, b) -> number", "Returns a + b.",
		"a                float64              required", "raises ZeroDivisionError")

	r = hypha(t, "", "inspect", "mailer")
	r.want(t, exitOK, "send_confirmation <- orders.order_created (service pool)",
		"queue evt-orders-order_created--mailer.send_confirmation", "sent() -> []Confirmation {item, order_id, quantity, text}")

	r = hypha(t, "", "inspect", "calculator", "--json")
	r.want(t, exitOK)
	var d struct {
		Service string `json:"service"`
		Methods []struct {
			Name string `json:"name"`
		} `json:"methods"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Service != "calculator" || len(d.Methods) != 4 {
		t.Errorf("--json gave %+v (%v):\n%s", d, err, r.stdout)
	}

	r = hypha(t, "", "inspect", "nobody")
	r.want(t, exitServiceNotFound)

	// A service without the built-in method, as a nameko one is.
	r = hypha(t, "", "inspect", "legacy")
	r.want(t, exitNotHypha)
	r.wantErr(t, "it is not a Hypha service (a nameko one?)")
	r = hypha(t, "", "call", "legacy.ping")
	r.want(t, exitOK, `"pong"`)
	r = hypha(t, "", "call", "legacy.pong")
	r.want(t, exitMethodNotFound)
	r.wantErr(t, `service "legacy" has no method "pong"`)
}

func testConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/config.yaml"
	writeFile(t, path, "AMQP_URI: ${BROKER:amqp://app:hunter2@rabbit:5672/prod}\nMAX_WORKERS: 4\nMY_SERVICE:\n  DB_PASSWORD: swordfish\n  NAME: shop\n")
	r := hyphaEnv(t, []string{"HYPHA_GRACE_PERIOD=3"}, "", "--config", path, "config")
	r.want(t, exitOK, "amqp://app:****@rabbit:5672/prod", path, "MAX_WORKERS", "$HYPHA_GRACE_PERIOD", "default",
		"MY_SERVICE.DB_PASSWORD", "****", "shop")
	for _, secret := range []string{"hunter2", "swordfish"} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("config shows the secret %q:\n%s", secret, r.stdout)
		}
	}
	r = hyphaEnv(t, nil, "", "--config", path, "--broker", "amqp://guest:guest@other:5672/", "config", "--json")
	r.want(t, exitOK)
	var got map[string]struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if v := got["AMQP_URI"]; v.Value != "amqp://guest:****@other:5672/" || v.Source != "override" {
		t.Errorf("AMQP_URI = %+v, want --broker's, masked, from an override", v)
	}
}

func testUsage(t *testing.T) {
	r := hypha(t, "", "frobnicate")
	r.want(t, exitUsage)
	r = hypha(t, "", "call", "--help")
	r.want(t, exitOK, "Examples:", "hypha call calculator.add a=1 b=2")
	r = hypha(t, "", "completion", "bash")
	r.want(t, exitOK, "bash completion")
	// What the completion scripts ask for on Tab.
	r = hypha(t, "", "__complete", "call", "calc")
	r.want(t, exitOK, "calculator.\n")
	r = hypha(t, "", "__complete", "call", "calculator.")
	r.want(t, exitOK, "calculator.add\tReturns a + b.", "calculator.divide")
	r = hypha(t, "", "__complete", "inspect", "mai")
	r.want(t, exitOK, "mailer\n")
}
