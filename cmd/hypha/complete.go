package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/introspect"
)

// completeTimeout bounds what shell completion asks the broker and the services.
const completeTimeout = 3 * time.Second

// completeTarget completes a command's first argument for the shell's Tab:
// service names (the management API's), then, after "SERVICE.", the
// service's methods (its introspection). withMethods is false for commands
// that take a service alone.
func (c *cli) completeTarget(withMethods bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
		defer cancel()
		cfg, err := c.config()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		if service, _, ok := strings.Cut(toComplete, "."); ok && withMethods {
			client, _, err := c.dial(ctx, 0)
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			defer client.Close()
			d, err := introspect.Fetch(ctx, client.Proxy(service))
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, m := range d.Methods {
				out = append(out, cobra.CompletionWithDesc(service+"."+m.Name, firstLine(m.Doc)))
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		rows, _, err := c.listServices(ctx, cfg.AMQPURI, "", nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, r := range rows {
			if withMethods {
				out = append(out, r.Service+".")
			} else {
				out = append(out, r.Service)
			}
		}
		if withMethods {
			return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
