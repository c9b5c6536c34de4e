package config

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"
)

// This file turns the raw sources of a Config (the file, the environment, the overrides) into layers
// for koanf to merge, each key spelled as the case rules say and each value's source recorded.

// envPrefix starts every environment variable that overrides a key; "__" separates nesting levels.
const envPrefix = "HYPHA_"

// fileEnv names the environment variable that points at config.yaml; it is not a config key.
const fileEnv = "HYPHA_CONFIG"

// The sources of values that are not a file or an environment variable.
const (
	sourceDefault  = "default"  // Source of a key no file, variable or override sets
	sourceOverride = "override" // Source of a key set by Load's overrides (framework.ConfigValues)
)

// exprPattern matches one ${VAR} or ${VAR:default}; the default runs to the first "}". A "$" that does
// not start "${" is text.
var exprPattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// layer is one source's keys, nested, and where each leaf key (dotted) came from.
type layer struct {
	values  map[string]any
	sources map[string]string
}

// parseFile parses config.yaml's bytes, substitutes its ${...} expressions and spells its keys.
func parseFile(path string, b []byte) (layer, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return layer{}, fmt.Errorf("config: parse %q: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return layer{}, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return layer{}, fmt.Errorf("config: %q must hold KEY: value pairs at the top, not a list or a single value", path)
	}
	vars := map[string][]string{} // leaf key -> the variables its ${...} read
	if err := substitute(root, "", "", vars); err != nil {
		return layer{}, err
	}
	var raw map[string]any
	if err := root.Decode(&raw); err != nil {
		return layer{}, fmt.Errorf("config: parse %q: %w", path, err)
	}
	values, err := spellMap(raw, "")
	if err != nil {
		return layer{}, err
	}
	return newLayer(values, func(key string) string {
		for leaf, names := range vars {
			if key == leaf || strings.HasPrefix(key, leaf+".") {
				return path + " ($" + strings.Join(names, ", $") + ")"
			}
		}
		return path
	})
}

// newLayer records source(key) for each leaf key of values.
func newLayer(values map[string]any, source func(key string) string) (layer, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(values, ""), nil); err != nil {
		return layer{}, fmt.Errorf("config: %w", err)
	}
	l := layer{values: values, sources: map[string]string{}}
	for _, key := range k.Keys() {
		l.sources[key] = source(key)
	}
	return l, nil
}

// substitute replaces, in place, the ${...} expressions of every string scalar under n. key is n's key
// as stored, path the same with list indexes, for messages; vars collects, per key, the environment
// variables that were set and read. An alias is skipped: its anchor is substituted where it is defined.
func substitute(n *yaml.Node, key, path string, vars map[string][]string) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			child := joinKey(key, canonical(key, n.Content[i].Value))
			if err := substitute(n.Content[i+1], child, joinKey(path, canonical(key, n.Content[i].Value)), vars); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := substitute(c, key, fmt.Sprintf("%s[%d]", path, i), vars); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		names, err := substituteScalar(n, path)
		if len(names) > 0 {
			vars[key] = append(vars[key], names...)
		}
		return err
	}
	return nil
}

// substituteScalar substitutes one scalar and returns the variables it read that were set. As in
// nameko, a plain scalar that is exactly one expression is re-read as a YAML scalar, so `${W:10}` is an
// int; text around an expression, or quotes, keep a string. nameko's explicit tags work too: !env_var
// always re-reads, !raw_env_var never does.
func substituteScalar(n *yaml.Node, path string) ([]string, error) {
	tag := n.ShortTag()
	if tag != "!!str" && tag != "!env_var" && tag != "!raw_env_var" || !strings.Contains(n.Value, "${") {
		return nil, nil
	}
	out, names, whole, err := expand(n.Value, path)
	if err != nil {
		return nil, err
	}
	retype := whole && (tag == "!env_var" || tag == "!!str" && n.Style == 0)
	n.Value, n.Tag, n.Style = out, "!!str", n.Style&^yaml.TaggedStyle
	if retype && scalarTag(out) != "!!str" {
		n.Tag, n.Style = "", 0 // the decoder resolves the type from the text
	}
	return names, nil
}

// expand replaces every ${VAR} and ${VAR:default} in s; it returns the variables read that were set,
// and whether s was exactly one expression. An unset VAR is read from the file VAR_FILE names, when
// that is set (its last line break dropped).
func expand(s, path string) (string, []string, bool, error) {
	spans := exprPattern.FindAllStringIndex(s, -1)
	whole := len(spans) == 1 && spans[0][0] == 0 && spans[0][1] == len(s)
	var names []string
	var err error
	out := exprPattern.ReplaceAllStringFunc(s, func(expr string) string {
		name, def, hasDef := strings.Cut(expr[2:len(expr)-1], ":")
		switch {
		case err != nil:
		case name == "" || strings.ContainsAny(name, "${ \t") || strings.Contains(def, "${"):
			err = fmt.Errorf("config %s: cannot read %q: want ${VAR} or ${VAR:default} (no nesting)", path, expr)
		default:
			v, ok := os.LookupEnv(name)
			file, fromFile := os.LookupEnv(name + "_FILE")
			switch {
			case ok && fromFile:
				err = fmt.Errorf("config %s: both %s and %s_FILE are set; set one", path, name, name)
				return ""
			case ok:
				names = append(names, name)
				return v
			case fromFile:
				// A secret delivered as a file, as container platforms do.
				b, rerr := os.ReadFile(file)
				if rerr != nil {
					err = fmt.Errorf("config %s: reading %s_FILE: %v", path, name, rerr)
					return ""
				}
				names = append(names, name+"_FILE")
				return strings.TrimRight(string(b), "\r\n")
			}
			if hasDef {
				return def
			}
			err = fmt.Errorf("config %s: environment variable %s is not set and ${%s} has no default; set it or write ${%s:default}",
				path, name, name, name)
		}
		return ""
	})
	return out, names, whole, err
}

// scalarTag is the YAML tag that text takes as a plain scalar; only null, bool, int and float count,
// anything else (timestamps included) stays a string.
func scalarTag(text string) string {
	switch tag := (&yaml.Node{Kind: yaml.ScalarNode, Value: text}).ShortTag(); tag {
	case "!!null", "!!bool", "!!int", "!!float":
		return tag
	}
	return "!!str"
}

// parseScalar reads text as a YAML scalar: "5" is an int, "true" a bool, "" null; other text stays itself.
func parseScalar(text string) any {
	if scalarTag(text) == "!!str" {
		return text
	}
	var v any
	if err := (&yaml.Node{Kind: yaml.ScalarNode, Value: text}).Decode(&v); err != nil {
		return text
	}
	return v
}

// spellMap returns m with its keys spelled as canonical says, at every depth. Two spellings of one of
// Hypha's keys in the same mapping ("rpc_exchange", "RPC_EXCHANGE") must hold equal values.
func spellMap(m map[string]any, path string) (map[string]any, error) {
	out := make(map[string]any, len(m))
	spelling := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := canonical(path, k)
		full := joinKey(path, key)
		if key == "" {
			return nil, fmt.Errorf("config %s: a key has an empty name; name it or remove it", joinKey(path, `""`))
		}
		v, err := spellValue(m[k], full)
		if err != nil {
			return nil, err
		}
		if first, twice := spelling[key]; twice && !reflect.DeepEqual(out[key], v) {
			return nil, fmt.Errorf("config %s: set twice with different values, as %q and %q; keep one", full, first, k)
		}
		out[key], spelling[key] = v, k
	}
	return out, nil
}

// spellValue spells the keys of the maps in v, lists included.
func spellValue(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		return spellMap(t, path)
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = e
		}
		return spellMap(m, path)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			var err error
			if out[i], err = spellValue(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// keyIndex finds keys case-insensitively: it maps each key, lower-cased, to its spelling, or to "" when
// two spellings differ only in case.
type keyIndex map[string]string

func newKeyIndex(k *koanf.Koanf) keyIndex {
	idx := keyIndex{}
	for key := range k.KeyMap() {
		lower := strings.ToLower(key)
		if other, seen := idx[lower]; seen && other != key {
			idx[lower] = ""
		} else {
			idx[lower] = key
		}
	}
	return idx
}

// resolve spells the dotted key as stored: the stored spelling when key differs from one only in case
// (segment by segment), Hypha's spelling for its keys, and otherwise as given.
func (idx keyIndex) resolve(key string) string {
	path := ""
	for seg := range strings.SplitSeq(key, ".") {
		name := canonical(path, seg)
		if stored := idx[strings.ToLower(joinKey(path, name))]; stored != "" {
			path = stored
			continue
		}
		path = joinKey(path, name)
	}
	return path
}

// overrideLayer reads flat keys, each resolved against idx; two keys that resolve alike must hold equal
// values. name(key) names a key's source.
func overrideLayer(flat map[string]any, idx keyIndex, name func(key string) string) (layer, error) {
	resolved := map[string]any{}
	from := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(flat)) {
		full := idx.resolve(key)
		if first, twice := from[full]; twice && !reflect.DeepEqual(resolved[full], flat[key]) {
			return layer{}, fmt.Errorf("config %s: set twice with different values, by %s and %s; keep one", full, first, name(key))
		}
		resolved[full], from[full] = flat[key], name(key)
	}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(resolved, "."), nil); err != nil {
		return layer{}, fmt.Errorf("config: %w", err)
	}
	return newLayer(k.Raw(), func(key string) string {
		for full, src := range from {
			if key == full || strings.HasPrefix(key, full+".") {
				return src
			}
		}
		return ""
	})
}

// envLayer reads the HYPHA_<KEY> variables ("__" between levels), each value parsed as a YAML scalar.
// HYPHA_<KEY>_FILE, for a KEY the defaults or the file have and no <KEY>_FILE key, names a file whose
// content (its last line break dropped) is KEY's value: a secret delivered as a file.
func envLayer(idx keyIndex) (layer, error) {
	vars := map[string]string{} // dotted key -> variable
	var fileErr error
	raw, err := env.Provider("", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(k, v string) (string, any) {
			if strings.EqualFold(k, fileEnv) {
				return "", nil
			}
			key := strings.ReplaceAll(strings.TrimPrefix(k, envPrefix), "__", ".")
			if base, ok := fileKey(idx, key); ok {
				plain := strings.TrimSuffix(k, k[len(k)-len("_FILE"):])
				if _, set := os.LookupEnv(plain); set && fileErr == nil {
					fileErr = fmt.Errorf("config %s: both %s and %s are set; set one", base, plain, k)
				}
				b, rerr := os.ReadFile(v)
				if rerr != nil && fileErr == nil {
					fileErr = fmt.Errorf("config %s: reading %s: %v", base, k, rerr)
				}
				vars[base] = k
				return base, parseScalar(strings.TrimRight(string(b), "\r\n"))
			}
			vars[key] = k
			return key, parseScalar(v)
		},
	}).Read()
	if err != nil {
		return layer{}, fmt.Errorf("config: read %s* environment variables: %w", envPrefix, err)
	}
	if fileErr != nil {
		return layer{}, fileErr
	}
	return overrideLayer(raw, idx, func(key string) string { return "$" + vars[key] })
}

// fileKey says whether key, from a HYPHA_<KEY>_FILE variable, names a file holding the value of
// another key, which it returns: one that exists while key itself does not.
func fileKey(idx keyIndex, key string) (string, bool) {
	if len(key) <= len("_FILE") || !strings.EqualFold(key[len(key)-len("_FILE"):], "_FILE") {
		return "", false
	}
	if _, exists := idx[strings.ToLower(key)]; exists {
		return "", false
	}
	base := key[:len(key)-len("_FILE")]
	stored, exists := idx[strings.ToLower(base)]
	if !exists {
		return "", false
	}
	if stored == "" {
		stored = base // spelled twice: overrideLayer resolves it
	}
	return stored, true
}

// overridesLayer reads the overrides: nested maps, or dotted top-level keys.
func overridesLayer(overrides map[string]any, idx keyIndex) (layer, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(overrides, "."), nil); err != nil {
		return layer{}, fmt.Errorf("config: overrides: %w", err)
	}
	return overrideLayer(k.All(), idx, func(string) string { return sourceOverride })
}
