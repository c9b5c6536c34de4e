package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
)

// callOptions are the flags of call (and of the shell's calls).
type callOptions struct {
	timeout    time.Duration
	context    []string
	idempotent bool
}

func (c *cli) callCommand() *cobra.Command {
	var o callOptions
	cmd := &cobra.Command{
		Use:   "call SERVICE.METHOD [ARGS...]",
		Short: "Call a method and print its JSON result",
		Long: `call calls SERVICE.METHOD and prints the JSON result: indented on a terminal,
compact when piped. The arguments are one JSON object (keyword arguments) or
array (positional ones), or name=value pairs (a value that is not JSON is a
string), or plain values (positional), or, with none given and stdin not a
terminal, JSON read from stdin ("-" reads stdin too).

A RemoteError prints its exc_type and value on stderr and exits 3; a missing
service exits 4, a missing method 5, arguments that do not fit 6 (with the
method's arguments, from introspection), a timeout 7; a call that cannot be
sent at all (a name or context data AMQP cannot carry) exits 2 at once.`,
		Example: `  hypha call calculator.add '{"a": 1, "b": 2}'
  hypha call calculator.add a=1 b=2
  hypha call calculator.add 1 2
  echo '{"a": 1, "b": 2}' | hypha call calculator.add
  hypha call users.get user_id=ann --context user_id=admin --timeout 2s --idempotent`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: c.completeTarget(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			service, method, err := splitTarget(args[0])
			if err != nil {
				return err
			}
			if err := o.check(); err != nil {
				return err
			}
			in, err := parseArgs(args[1:], c.in)
			if err != nil {
				return err
			}
			client, _, err := c.dialCall(cmd.Context(), &o)
			if err != nil {
				return err
			}
			defer client.Close()
			res, err := c.call(cmd.Context(), client.Client, service, method, in, o)
			if err != nil {
				return err
			}
			return printJSON(c.out, res, isTerminal(c.out))
		},
	}
	addCallFlags(cmd, &o)
	return cmd
}

func addCallFlags(cmd *cobra.Command, o *callOptions) {
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "give up waiting for the reply after this long (default RPC_TIMEOUT)")
	cmd.Flags().StringArrayVar(&o.context, "context", nil, "context data sent with the call, key=value (repeat it)")
	cmd.Flags().BoolVar(&o.idempotent, "idempotent", false, "mark the call safe to run twice (CallInfo.Idempotent); a request lost with the connection is sent again either way")
}

// check refuses call options no call can honour: a negative --timeout
// would otherwise fail every call at once, or be ignored.
func (o callOptions) check() error {
	if o.timeout < 0 {
		return usageError("--timeout %v: want a positive duration, such as 2s (or leave it out for RPC_TIMEOUT)", o.timeout)
	}
	return nil
}

// splitTarget splits "service.method".
func splitTarget(s string) (string, string, error) {
	service, method, ok := strings.Cut(s, ".")
	if !ok || service == "" || method == "" {
		return "", "", usageError("%q is not SERVICE.METHOD (calculator.add, say)", s)
	}
	return service, method, nil
}

// parseArgs turns the command-line arguments into what Proxy.Call sends:
// a map (keyword arguments), rpc.Positional, or nil.
func parseArgs(args []string, stdin io.Reader) (any, error) {
	if len(args) == 0 && stdin != nil && !isTerminal(stdin) {
		args = []string{"-"}
	}
	if len(args) == 1 && args[0] == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the arguments from stdin: %w", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, nil
		}
		return parseJSONArgs(b, "stdin")
	}
	if len(args) == 1 {
		if t := strings.TrimSpace(args[0]); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			return parseJSONArgs([]byte(t), "the argument")
		}
	}
	kwargs := map[string]any{}
	var positional rpc.Positional
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if ok && isIdentifier(name) {
			kwargs[name] = parseValue(value)
			continue
		}
		positional = append(positional, parseValue(a))
	}
	switch {
	case len(kwargs) > 0 && len(positional) > 0:
		return nil, usageError("give either name=value arguments or positional ones, not both")
	case len(kwargs) > 0:
		return kwargs, nil
	case len(positional) > 0:
		return positional, nil
	}
	return nil, nil
}

func parseJSONArgs(b []byte, from string) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, usageError("%s is not JSON: %v", from, err)
	}
	switch v := v.(type) {
	case map[string]any:
		return v, nil
	case []any:
		return rpc.Positional(v), nil
	}
	return nil, usageError("%s must be a JSON object (keyword arguments) or array (positional ones), not %s", from, bytes.TrimSpace(b))
}

// parseValue reads a command-line value as JSON when it is JSON, else as a string.
func parseValue(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		if _, err := dec.Token(); err == io.EOF {
			return v
		}
	}
	return s
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// headerValue makes a parsed value fit an AMQP header: numbers become
// int64 or float64.
func headerValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = headerValue(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = headerValue(v[k])
		}
	}
	return v
}

// withContextData adds the --context key=value items to ctx.
func withContextData(ctx context.Context, items []string) (context.Context, error) {
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		if !ok || k == "" {
			return nil, usageError("--context %q is not key=value", item)
		}
		ctx = contextdata.With(ctx, k, headerValue(parseValue(v)))
	}
	return ctx, nil
}

// call makes one call and turns its failure into an error with its exit code.
func (c *cli) call(ctx context.Context, client *rpc.Client, service, method string, in any, o callOptions) (json.RawMessage, error) {
	ctx, err := withContextData(ctx, o.context)
	if err != nil {
		return nil, err
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	p := client.Proxy(service)
	if o.idempotent {
		p = p.Idempotent()
	}
	var res json.RawMessage
	err = p.Call(ctx, method, in, &res)
	if err == nil {
		return res, nil
	}
	return nil, c.callError(context.WithoutCancel(ctx), client, service, method, o.timeout, err)
}

// callError explains a failed call, with its exit code.
func (c *cli) callError(ctx context.Context, client *rpc.Client, service, method string, timeout time.Duration, err error) error {
	var re *rpc.RemoteError
	switch {
	case errors.Is(err, rpc.ErrServiceNotFound):
		return withCode(exitServiceNotFound, "service %q not found: no queue rpc-%s is bound on this broker "+
			"(is the service running, on this broker and vhost? hypha services lists those there are)", service, service)
	case errors.Is(err, rpc.ErrTimeout):
		return withCode(exitTimeout, "%s.%s: no reply within %v (the service may be busy, stopped, or slow; --timeout waits longer)",
			service, method, timeout)
	case errors.Is(err, rpc.ErrMethodNotFound):
		msg := fmt.Sprintf("service %q has no method %q", service, method)
		if d, ok := c.describe(ctx, client, service); ok {
			names := make([]string, len(d.Methods))
			for i, m := range d.Methods {
				names[i] = m.Name
			}
			msg += "; it has: " + strings.Join(names, ", ")
		}
		return withCode(exitMethodNotFound, "%s", msg)
	case errors.Is(err, rpc.ErrIncorrectSignature):
		errors.As(err, &re)
		msg := fmt.Sprintf("%s.%s: incorrect signature: %s", service, method, re.Value)
		if d, ok := c.describe(ctx, client, service); ok {
			if m, ok := d.Method(method); ok {
				msg += "\nexpected: " + service + "." + m.Signature() + "\n" + argTable(m)
			}
		}
		return withCode(exitIncorrectSignature, "%s", strings.TrimRight(msg, "\n"))
	case errors.As(err, &re):
		return withCode(exitRemoteError, "%s.%s raised %s: %s", service, method, re.ExcType, re.Value)
	case errors.Is(err, transport.ErrInvalid):
		// The command line asked for what cannot travel (a method name that
		// makes a routing key over 255 bytes, say): nothing was sent.
		return withCode(exitUsage, "%v", err)
	}
	return err
}

// describe fetches a service's description for an error message, briefly;
// ok is false when the service does not give one.
func (c *cli) describe(ctx context.Context, client *rpc.Client, service string) (introspect.Description, bool) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	d, err := introspect.Fetch(ctx, client.Proxy(service))
	return d, err == nil
}

// argTable lists a method's arguments, one a line.
func argTable(m introspect.MethodInfo) string {
	var b strings.Builder
	for _, a := range m.Args {
		req := "optional"
		if a.Required {
			req = "required"
		}
		fmt.Fprintf(&b, "  %-16s %-20s %s\n", a.Name, a.Type, req)
	}
	return b.String()
}

// printJSON prints a JSON value, indented when pretty.
func printJSON(w io.Writer, v json.RawMessage, pretty bool) error {
	var buf bytes.Buffer
	var err error
	if pretty {
		err = json.Indent(&buf, v, "", "  ")
	} else {
		err = json.Compact(&buf, v)
	}
	if err != nil {
		buf.Reset()
		buf.Write(v)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}
