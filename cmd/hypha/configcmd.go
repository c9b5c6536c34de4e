package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/internal/redact"
)

// masked replaces a secret in the output of config.
const masked = "****"

func (c *cli) configCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the resolved configuration and where each value came from",
		Long: `config prints every key of the configuration as a service would resolve it
(config.yaml, the HYPHA_* environment, --broker), with the place each value
came from: the defaults, the file (and the variables its ${VAR} read), an
environment variable, or an override. Passwords are masked: those in URIs,
and the values of keys whose name says password, secret or token.`,
		Example: `  hypha config
  hypha --config prod.yaml config --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			sources := cfg.Sources()
			keys := make([]string, 0, len(sources))
			for k := range sources {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if asJSON {
				out := map[string]any{}
				for _, k := range keys {
					out[k] = map[string]any{"value": maskValue(k, cfg.Get(k)), "source": sources[k]}
				}
				b, err := json.Marshal(out)
				if err != nil {
					return err
				}
				return printJSON(c.out, b, isTerminal(c.out))
			}
			width := 0
			for _, k := range keys {
				width = max(width, len(k))
			}
			for _, k := range keys {
				fmt.Fprintf(c.out, "%-*s  %-40s  # %s\n", width, k, formatValue(maskValue(k, cfg.Get(k))), sources[k])
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(c.err, "warning:", w)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {key: {value, source}} as JSON")
	return cmd
}

// maskValue hides the secrets in a value: a URI's password, and the whole
// value of a key named like a secret.
func maskValue(key string, v any) any {
	last := strings.ToUpper(key[strings.LastIndex(key, ".")+1:])
	for _, word := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY"} {
		if strings.Contains(last, word) && v != nil && v != "" {
			return masked
		}
	}
	if s, ok := v.(string); ok {
		return maskURI(s)
	}
	return v
}

// maskURI hides the password of a URI with credentials, or of each URI of a
// comma-separated list (a cluster's nodes); other text is kept. A URI that
// does not parse keeps only its scheme and what follows its last "@".
func maskURI(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return strings.ReplaceAll(redact.URIs(s), redact.Mask+"@", masked+"@")
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
