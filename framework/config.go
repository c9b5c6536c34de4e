package framework

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// Config is a service's view of config.yaml: the typed Settings plus every other key, for the service's
// own settings. Keys are matched case-insensitively. A Config is read-only once loaded and safe for
// concurrent use; copies share the same keys. The zero Config has no keys and zero Settings.
type Config struct {
	Settings
	k *koanf.Koanf
}

// LoadConfig reads the configuration in this order, each layer overriding the one before: the defaults;
// the file (path if non-empty, else $HYPHA_CONFIG, else ./config.yaml if it exists, else none) with its
// ${VAR} and ${VAR:default} expressions substituted; HYPHA_<KEY> environment variables, with "__"
// between nesting levels; then overrides, whose top-level keys may be dotted paths. It fails, naming the
// key, on a missing file, an unset ${VAR} without default, a key spelled twice with different values, or
// a standard key whose value does not validate.
func LoadConfig(path string, overrides map[string]any) (Config, error) {
	file, err := fileLayer(path)
	if err != nil {
		return Config{}, err
	}
	env, err := envLayer()
	if err != nil {
		return Config{}, err
	}
	code, err := overridesLayer(overrides)
	if err != nil {
		return Config{}, err
	}
	k := koanf.New(".")
	for _, layer := range []map[string]any{settingsMap(DefaultSettings()), file, env, code} {
		if err := k.Load(confmap.Provider(layer, ""), nil); err != nil {
			return Config{}, fmt.Errorf("config: merge: %w", err)
		}
	}
	s, err := readSettings(k)
	if err != nil {
		return Config{}, err
	}
	return Config{Settings: s, k: k}, nil
}

// fileLayer finds and reads the config file; no file at all gives an empty layer.
func fileLayer(path string) (map[string]any, error) {
	hint := "check the path given with --config"
	if path == "" {
		path, hint = os.Getenv(configFileEnv), "fix or unset "+configFileEnv
	}
	if path == "" {
		if _, err := os.Stat("config.yaml"); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		path, hint = "config.yaml", "make it readable"
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: file %q does not exist; %s", path, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("config: read %q: %w; %s", path, err, hint)
	}
	return parseFile(path, b)
}

// Get returns the value at key, a dotted path matched case-insensitively ("my_section.my_key"), or nil
// when it is absent; "" returns the whole configuration. Maps and lists are copies.
func (c Config) Get(key string) any {
	if c.k == nil {
		return nil
	}
	return c.k.Get(strings.ToUpper(key))
}

// Exists reports whether key is present, even if its value is null.
func (c Config) Exists(key string) bool {
	return c.k != nil && c.k.Exists(strings.ToUpper(key))
}

// String returns the value at key as text (numbers and booleans formatted), or "" when it is absent.
func (c Config) String(key string) string {
	switch v := c.Get(key).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Int returns the value at key as an int, or 0 when it is absent or not a whole number ("5" counts).
func (c Config) Int(key string) int {
	n, _ := toWhole(c.Get(key))
	return n
}

// Bool returns the value at key as a bool, or false when it is absent or not a boolean; strings are
// read by strconv.ParseBool.
func (c Config) Bool(key string) bool {
	switch v := c.Get(key).(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(strings.TrimSpace(v))
		return b
	}
	return false
}

// Unmarshal decodes the value at key ("" for the whole configuration) into out, a pointer to a struct,
// map or scalar. Struct fields match keys case-insensitively by their `yaml` tag or else their name;
// numbers decode into time.Duration as seconds, strings as Go durations ("1m30s"). Out is left
// untouched when key is absent.
func (c Config) Unmarshal(key string, out any) error {
	k := c.k
	if k == nil {
		k = koanf.New(".")
	}
	err := k.UnmarshalWithConf(strings.ToUpper(key), out, koanf.UnmarshalConf{
		Tag: "yaml",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				secondsHook,
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.TextUnmarshallerHookFunc()),
			WeaklyTypedInput: true,
		},
	})
	if err != nil {
		return fmt.Errorf("config %s: %w", cmp.Or(strings.ToUpper(key), "(all keys)"), err)
	}
	return nil
}

// secondsHook decodes a number, or a string holding one, into a time.Duration of that many seconds.
func secondsHook(_, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	if _, ok := toFloat(data); !ok {
		return data, nil // a Go duration string ("1m30s") is left to the next hook
	}
	d, ok := toDuration(data)
	if !ok {
		return nil, fmt.Errorf("%v seconds is out of range", data)
	}
	return d, nil
}

// ConfigPath returns the value of `--config PATH` or `--config=PATH` (one dash works too) in args,
// typically os.Args[1:]; the last one wins, arguments after "--" are not looked at, and "" means the
// flag is absent. A flag without a path is an error.
func ConfigPath(args []string) (string, error) {
	errNoPath := errors.New("--config needs a file path")
	path := ""
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		flag, value, hasValue := strings.Cut(args[i], "=")
		if flag != "--config" && flag != "-config" {
			continue
		}
		if !hasValue {
			if i+1 == len(args) || strings.HasPrefix(args[i+1], "-") {
				return "", errNoPath
			}
			i++
			value = args[i]
		}
		if value == "" {
			return "", errNoPath
		}
		path = value
	}
	return path, nil
}
