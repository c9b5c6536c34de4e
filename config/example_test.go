package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hypha-go/hypha/config"
)

func ExampleLoad() {
	dir, err := os.MkdirTemp("", "config")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	text := "max_workers: 4\nMAX_WORKER: 5\nUSERS:\n  db_dsn: ${EXAMPLE_USERS_DSN:postgres://localhost/users}\n  pool: 8\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		panic(err)
	}

	cfg, err := config.Load(path, map[string]any{"RPC_TIMEOUT": 2.5})
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.MaxWorkers, cfg.RPCTimeout, cfg.GracePeriod)
	dsn, err := cfg.String("users.db_dsn")
	fmt.Println(dsn, err)
	_, err = cfg.Int("users.db_dsn")
	fmt.Println(err)
	fmt.Println(cfg.Source("RPC_TIMEOUT"), cfg.Source("GRACE_PERIOD"), cfg.Source("MAX_WORKERS") == path)
	fmt.Println(cfg.Warnings())
	// Output:
	// 4 2.5s 10s
	// postgres://localhost/users <nil>
	// config USERS.db_dsn: want a whole number, got "postgres://localhost/users"
	// override default true
	// [config MAX_WORKER is not a Hypha key: did you mean MAX_WORKERS?]
}

// TLSConfig reads AMQP_SSL's files for a client that dials by itself; with
// AMQP_SSL left empty it is nil, and the URI's own TLS parameters apply.
func ExampleSSLSettings_TLSConfig() {
	cfg, err := config.Load("", map[string]any{"AMQP_URI": "amqps://rabbit-1:5671/prod", "LOGIN_METHOD": "plain"})
	if err != nil {
		fmt.Println(err)
		return
	}
	tlsConfig, err := cfg.AMQPSSL.TLSConfig()
	fmt.Println(tlsConfig == nil, err, cfg.LoginMethod)
	// Output: true <nil> PLAIN
}
