package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
)

func (c *cli) inspectCommand() *cobra.Command {
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "inspect SERVICE",
		Short: "Describe a service's methods and event handlers",
		Long: `inspect asks SERVICE for its description (the built-in method ` + introspect.Method + `
every Hypha service answers) and prints its RPC methods, with their arguments,
result and expected errors, and its event handlers, with their queues. --json
prints the description as the service sent it. A nameko service has no such
method: inspect says so and exits 8.`,
		Example: `  hypha inspect calculator
  hypha inspect calculator --json | jq '.methods[].name'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeTarget(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := c.dial(cmd.Context(), timeout)
			if err != nil {
				return err
			}
			defer client.Close()
			d, err := c.fetch(cmd.Context(), client.Client, args[0], timeout)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.Marshal(d)
				if err != nil {
					return err
				}
				return printJSON(c.out, b, isTerminal(c.out))
			}
			printDescription(c.out, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the description as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up waiting for the service after this long")
	return cmd
}

// fetch asks service for its description, explaining a failure.
func (c *cli) fetch(ctx context.Context, client *rpc.Client, service string, timeout time.Duration) (introspect.Description, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := introspect.Fetch(ctx, client.Proxy(service))
	switch {
	case err == nil:
		return d, nil
	case errors.Is(err, introspect.ErrNotHypha):
		return d, withCode(exitNotHypha, "service %q does not answer %s: it is not a Hypha service (a nameko one?), "+
			"so it cannot describe itself; hypha call still calls its methods", service, introspect.Method)
	}
	return d, c.callError(context.WithoutCancel(ctx), client, service, introspect.Method, timeout, err)
}

// printDescription prints d for people.
func printDescription(w io.Writer, d introspect.Description) {
	fmt.Fprintf(w, "%s: %d RPC method(s), %d event handler(s)\n", d.Service, len(d.Methods), len(d.Handlers))
	if len(d.Methods) > 0 {
		fmt.Fprintln(w, "\nRPC methods")
	}
	for _, m := range d.Methods {
		if m.Raw {
			fmt.Fprintf(w, "\n  %s(body) -> body   (raw: reads and answers its message itself)\n", m.Name)
		} else {
			fmt.Fprintf(w, "\n  %s -> %s\n", m.Signature(), schemaSummary(m.Result))
		}
		if m.Doc != "" {
			for line := range strings.Lines(m.Doc) {
				fmt.Fprintf(w, "      %s\n", strings.TrimRight(line, "\n"))
			}
		}
		for _, a := range m.Args {
			req := "optional"
			if a.Required {
				req = "required"
			}
			fmt.Fprintf(w, "      %-16s %-20s %s\n", a.Name, a.Type, req)
		}
		for _, e := range m.Errors {
			fmt.Fprintf(w, "      raises %s (%s)\n", e.ExcType, e.ExcPath)
		}
	}
	if len(d.Handlers) > 0 {
		fmt.Fprintln(w, "\nEvent handlers")
	}
	for _, h := range d.Handlers {
		fmt.Fprintf(w, "\n  %s <- %s.%s (%s)\n", h.Name, h.Source, h.EventType, h.HandlerType)
		fmt.Fprintf(w, "      queue %s\n", h.Queue)
		fmt.Fprintf(w, "      payload %s, reliable delivery %v, requeue on error %v\n",
			schemaSummary(h.Payload), h.Reliable, h.RequeueOnError)
	}
}

// schemaSummary is a JSON Schema in a few words: "number", "[]string", "Score {user_id, score}".
func schemaSummary(s map[string]any) string {
	if ref, ok := s["$ref"].(string); ok {
		return ref[strings.LastIndex(ref, ".")+1:]
	}
	if alts, ok := s["anyOf"].([]any); ok && len(alts) == 2 {
		if inner, ok := alts[0].(map[string]any); ok {
			return schemaSummary(inner) + " or null"
		}
	}
	typ := s["type"]
	if list, ok := typ.([]any); ok && len(list) > 0 {
		typ = list[0]
	}
	switch typ {
	case nil:
		return "any"
	case "array":
		items, _ := s["items"].(map[string]any)
		return "[]" + schemaSummary(items)
	case "object":
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			if add, ok := s["additionalProperties"].(map[string]any); ok {
				return "map of " + schemaSummary(add)
			}
			return "object"
		}
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		sort.Strings(names)
		title, _ := s["title"].(string)
		return strings.TrimSpace(title + " {" + strings.Join(names, ", ") + "}")
	}
	return fmt.Sprint(typ)
}
