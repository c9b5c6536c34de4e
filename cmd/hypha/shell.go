package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
)

func (c *cli) shellCommand() *cobra.Command {
	var o callOptions
	var history, mgmt string
	cmd := &cobra.Command{
		Use:   "shell [SERVICE...]",
		Short: "An interactive prompt for calling services",
		Long: `shell reads calls at a prompt, as call takes them on the command line
(calculator.add a=1 b=2), and prints each result. It keeps a history
(--history, default ~/.hypha_history), edits lines (emacs keys), and completes
service names (the broker's, from the management API, and the SERVICEs given)
and method names (from each service's introspection) with Tab.

Commands: SERVICE.METHOD [ARGS...], inspect SERVICE, services, help, exit
(or ctrl-D).`,
		Example: `  hypha shell
  hypha shell calculator users --context user_id=ann`,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, cfg, err := c.dialCall(cmd.Context(), &o)
			if err != nil {
				return err
			}
			defer client.Close()
			if history == "" {
				if home, err := os.UserHomeDir(); err == nil {
					history = filepath.Join(home, ".hypha_history")
				}
			}
			comp := &completer{cli: c, ctx: cmd.Context(), client: client.Client, known: args, uri: cfg.AMQPURI, mgmt: mgmt,
				methods: map[string][]string{}}
			in, ok := c.in.(io.ReadCloser)
			if !ok {
				in = io.NopCloser(c.in)
			}
			rl, err := readline.NewEx(&readline.Config{
				Prompt: "hypha> ", HistoryFile: history, AutoComplete: comp, InterruptPrompt: "^C", EOFPrompt: "exit",
				Stdin: in, Stdout: c.out, Stderr: c.err,
			})
			if err != nil {
				return err
			}
			defer rl.Close()
			fmt.Fprintln(c.out, "Hypha shell: SERVICE.METHOD args, inspect SERVICE, services, help; ctrl-D quits.")
			for {
				line, err := rl.Readline()
				if errors.Is(err, readline.ErrInterrupt) {
					continue
				}
				if err != nil { // io.EOF: ctrl-D
					return nil
				}
				if quit := c.shellLine(cmd.Context(), client.Client, comp, strings.TrimSpace(line), o); quit {
					return nil
				}
			}
		},
	}
	addCallFlags(cmd, &o)
	cmd.Flags().StringVar(&history, "history", "", "the history file (default ~/.hypha_history)")
	cmd.Flags().StringVar(&mgmt, "management", "", "the management API's URL, for completing service names")
	return cmd
}

// shellLine runs one line of the shell; quit is true for exit.
func (c *cli) shellLine(ctx context.Context, client *rpc.Client, comp *completer, line string, o callOptions) (quit bool) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false
	}
	report := func(err error) {
		var ee *exitErr
		if errors.As(err, &ee) {
			err = ee.err
		}
		fmt.Fprintln(c.out, "error:", err)
	}
	switch fields[0] {
	case "exit", "quit":
		return true
	case "help", "?":
		fmt.Fprintln(c.out, "SERVICE.METHOD [ARGS...]  call, ARGS as for hypha call: a=1 b=2, 1 2, or JSON\n"+
			"inspect SERVICE           describe a service\n"+
			"services                  list the services (management API)\n"+
			"exit                      leave (ctrl-D too)")
		return false
	case "inspect":
		if len(fields) != 2 {
			fmt.Fprintln(c.out, "usage: inspect SERVICE")
			return false
		}
		d, err := c.fetch(ctx, client, fields[1], 5*time.Second)
		if err != nil {
			report(err)
			return false
		}
		comp.remember(d)
		printDescription(c.out, d)
		return false
	case "services":
		rows, source, err := c.listServices(ctx, comp.uri, comp.mgmt, comp.known)
		if err != nil {
			report(err)
			return false
		}
		fmt.Fprintln(c.out, "source:", source)
		for _, r := range rows {
			fmt.Fprintf(c.out, "  %-24s %d instance(s), %d waiting\n", r.Service, r.Instances, r.Ready)
		}
		return false
	}
	service, method, err := splitTarget(fields[0])
	if err != nil {
		report(err)
		return false
	}
	rest := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
	var args []string
	if strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, "[") {
		args = []string{rest}
	} else {
		args = fields[1:]
	}
	in, err := parseArgs(args, nil)
	if err != nil {
		report(err)
		return false
	}
	res, err := c.call(ctx, client, service, method, in, o)
	if err != nil {
		report(err)
		return false
	}
	_ = printJSON(c.out, res, true)
	return false
}

// completer completes service names, and method names from introspection.
type completer struct {
	cli       *cli
	ctx       context.Context
	client    *rpc.Client
	uri, mgmt string

	mu      sync.Mutex
	known   []string            // service names
	listed  bool                // the management API was asked
	methods map[string][]string // by service, from introspection
}

var shellCommands = []string{"exit", "help", "inspect ", "services"}

// Do implements readline.AutoCompleter: the candidates' missing suffixes,
// and how many runes of the line they complete.
func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	text := string(line[:pos])
	if strings.ContainsAny(text, " \t") {
		if word, ok := strings.CutPrefix(text, "inspect "); ok && !strings.Contains(word, " ") {
			return suffixes(c.services(), word, " ")
		}
		return nil, 0
	}
	if service, partial, ok := strings.Cut(text, "."); ok {
		return suffixes(c.methodsOf(service), partial, " ")
	}
	cands, n := suffixes(c.services(), text, ".")
	more, _ := suffixes(shellCommands, text, "")
	return append(cands, more...), n
}

// suffixes returns, for each name starting with prefix, the rest of it plus end.
func suffixes(names []string, prefix, end string) ([][]rune, int) {
	var out [][]rune
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, []rune(strings.TrimPrefix(n, prefix)+end))
		}
	}
	return out, len([]rune(prefix))
}

// services are the service names known: given, seen, or the broker's.
func (c *completer) services() []string {
	c.mu.Lock()
	listed := c.listed
	c.listed = true
	c.mu.Unlock()
	if !listed {
		if rows, _, err := c.cli.listServices(c.ctx, c.uri, c.mgmt, nil); err == nil {
			c.mu.Lock()
			for _, r := range rows {
				if !slices.Contains(c.known, r.Service) {
					c.known = append(c.known, r.Service)
				}
			}
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.known)
	sort.Strings(out)
	return out
}

// methodsOf asks service for its methods, once.
func (c *completer) methodsOf(service string) []string {
	c.mu.Lock()
	m, ok := c.methods[service]
	c.mu.Unlock()
	if ok {
		return m
	}
	ctx, cancel := context.WithTimeout(c.ctx, 3*time.Second)
	defer cancel()
	d, err := introspect.Fetch(ctx, c.client.Proxy(service))
	if err != nil {
		return nil
	}
	return c.remember(d)
}

// remember keeps a service's method names for completion.
func (c *completer) remember(d introspect.Description) []string {
	names := make([]string, len(d.Methods))
	for i, m := range d.Methods {
		names[i] = m.Name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.methods[d.Service] = names
	if !slices.Contains(c.known, d.Service) {
		c.known = append(c.known, d.Service)
	}
	return names
}
