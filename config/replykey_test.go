package config

import (
	"strings"
	"testing"
)

// TestLoadConfigReplyKeyPrefix: RPC_REPLY_KEY_PREFIX is off by default, read from the environment through
// config.yaml's ${RPC_REPLY_KEY_PREFIX:}, and refused by name unless it has two or more words.
func TestLoadConfigReplyKeyPrefix(t *testing.T) {
	isolateConfig(t)
	cfg, err := Load("", nil)
	if err != nil || cfg.RPCReplyKeyPrefix != "" {
		t.Fatalf("default RPC_REPLY_KEY_PREFIX %q, %v; want empty", cfg.RPCReplyKeyPrefix, err)
	}
	t.Setenv("RPC_REPLY_KEY_PREFIX", "reply.web")
	cfg, err = Load(writeConfig(t, "c.yaml", "rpc_reply_key_prefix: ${RPC_REPLY_KEY_PREFIX:}\n"), nil)
	if err != nil || cfg.RPCReplyKeyPrefix != "reply.web" || cfg.Source("RPC_REPLY_KEY_PREFIX") != "c.yaml ($RPC_REPLY_KEY_PREFIX)" {
		t.Fatalf("RPC_REPLY_KEY_PREFIX %q from %q, %v; want reply.web from c.yaml ($RPC_REPLY_KEY_PREFIX)",
			cfg.RPCReplyKeyPrefix, cfg.Source("RPC_REPLY_KEY_PREFIX"), err)
	}
	t.Setenv("RPC_REPLY_KEY_PREFIX", "")
	if cfg, err = Load("c.yaml", nil); err != nil || cfg.RPCReplyKeyPrefix != "" {
		t.Fatalf("RPC_REPLY_KEY_PREFIX from an empty variable: %q, %v; want empty", cfg.RPCReplyKeyPrefix, err)
	}
	for _, ok := range []string{"reply.web", "a.b.c", "Reply_1.web-2", strings.Repeat("a", 216) + ".b"} {
		if _, err := Load("", map[string]any{"RPC_REPLY_KEY_PREFIX": ok}); err != nil {
			t.Errorf("RPC_REPLY_KEY_PREFIX %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"web", "reply.", ".web", "reply..web", "reply.*", "reply.#", "reply web.x", "reply.wéb",
		"amq.reply", strings.Repeat("a", 217) + ".b"} {
		_, err := Load("", map[string]any{"RPC_REPLY_KEY_PREFIX": bad})
		wantErr(t, err, `config RPC_REPLY_KEY_PREFIX: want empty, or two or more dot-separated words of letters, digits, '_' and '-' not starting with "amq.", such as "reply.web" (at most 218 bytes), got "`)
	}
	_, err = Load("", map[string]any{"RPC_REPLY_KEY_PREFIX": 7})
	wantErr(t, err, "config RPC_REPLY_KEY_PREFIX: want empty, or two or more")
}
