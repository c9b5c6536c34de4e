package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/internal/redact"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
	hyphaamqp "github.com/hypha-go/hypha/transport/amqp"
)

// managementPort is RabbitMQ's management API port, where `services` and
// `dlq list` look unless --management says otherwise.
const managementPort = "15672"

// queueInfo is what the broker says of one queue.
type queueInfo struct {
	Name      string `json:"name"`
	Consumers int    `json:"consumers"`
	Ready     int    `json:"messages_ready"`
	Unacked   int    `json:"messages_unacknowledged"`
}

// serviceRow is one line of `services`.
type serviceRow struct {
	Service   string `json:"service"`
	Queue     string `json:"queue"`
	Instances int    `json:"instances"` // the queue's consumers
	Ready     int    `json:"ready"`     // requests waiting
	Unacked   int    `json:"unacked"`   // requests being handled
	Running   bool   `json:"running"`   // the queue exists
}

func (c *cli) servicesCommand() *cobra.Command {
	var asJSON bool
	var mgmt string
	cmd := &cobra.Command{
		Use:   "services [SERVICE...]",
		Short: "List the services on the broker, their instances and queue depths",
		Long: `services lists the services whose request queue (rpc-<service>) is on the
broker, with their instance count (the queue's consumers) and queue depth
(requests waiting, and being handled), read from RabbitMQ's management API
(http://<broker host>:15672 with the broker's credentials, or --management).
When the API does not answer, it declares rpc-<service> passively for each
SERVICE given, which tells the same for those. It says which source it used.`,
		Example: `  hypha services
  hypha services calculator users --management http://admin:secret@rabbit:15672`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			rows, source, err := c.listServices(cmd.Context(), cfg.AMQPURI, mgmt, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.err, "source:", source)
			if asJSON {
				b, err := json.Marshal(rows)
				if err != nil {
					return err
				}
				return printJSON(c.out, b, isTerminal(c.out))
			}
			fmt.Fprintf(c.out, "%-24s %9s %7s %7s\n", "SERVICE", "INSTANCES", "READY", "UNACKED")
			for _, r := range rows {
				if !r.Running {
					fmt.Fprintf(c.out, "%-24s %9s\n", r.Service, "not found")
					continue
				}
				fmt.Fprintf(c.out, "%-24s %9d %7d %7d\n", r.Service, r.Instances, r.Ready, r.Unacked)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	cmd.Flags().StringVar(&mgmt, "management", "", "the management API's URL (default http://<broker host>:15672, the broker's user)")
	return cmd
}

// listServices lists the services, from the management API or else by
// passive declares of the named ones; source says which.
func (c *cli) listServices(ctx context.Context, uri, mgmt string, names []string) ([]serviceRow, string, error) {
	queues, where, apiErr := managementQueues(ctx, uri, mgmt)
	if apiErr == nil {
		rows := []serviceRow{}
		byName := map[string]queueInfo{}
		for _, q := range queues {
			byName[q.Name] = q
			if svc, ok := strings.CutPrefix(q.Name, "rpc-"); ok && len(names) == 0 {
				rows = append(rows, serviceRow{Service: svc, Queue: q.Name, Instances: q.Consumers, Ready: q.Ready, Unacked: q.Unacked, Running: true})
			}
		}
		for _, n := range names {
			q, ok := byName[rpc.QueueName(n)]
			rows = append(rows, serviceRow{Service: n, Queue: rpc.QueueName(n), Instances: q.Consumers, Ready: q.Ready, Unacked: q.Unacked, Running: ok})
		}
		if len(names) == 0 {
			sort.Slice(rows, func(i, j int) bool { return rows[i].Service < rows[j].Service })
		}
		return rows, "RabbitMQ management API at " + maskURI(where), nil
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("the management API does not answer (%v); name the services to look for (hypha services calculator users), "+
			"which are then looked up by a passive declare of rpc-<service>, or give --management", apiErr)
	}
	b, _, err := c.open(ctx)
	if err != nil {
		return nil, "", err
	}
	defer b.Close()
	rows := []serviceRow{}
	for _, n := range names {
		row := serviceRow{Service: n, Queue: rpc.QueueName(n)}
		st, err := b.InspectQueue(ctx, row.Queue)
		switch {
		case errors.Is(err, transport.ErrNoQueue):
		case err != nil:
			return nil, "", err
		default:
			row.Instances, row.Ready, row.Running = st.Consumers, st.Messages, true
		}
		rows = append(rows, row)
	}
	return rows, fmt.Sprintf("passive declare of rpc-<service> on the broker (the management API did not answer: %v); "+
		"READY counts all messages, UNACKED is not known", apiErr), nil
}

// managementURL is the management API's base URL: mgmt, or the broker's host
// on managementPort with the broker's credentials; vhost is the broker URI's.
func managementURL(uri, mgmt string) (base *url.URL, vhost string, err error) {
	if nodes := hyphaamqp.SplitURIs(uri); len(nodes) > 1 {
		uri = nodes[0] // a cluster's nodes share one management API
	}
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		return nil, "", fmt.Errorf("the broker %s is not an amqp:// URI: the management API belongs to RabbitMQ", maskURI(uri))
	}
	vhost = "/"
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		vhost, _ = url.PathUnescape(p)
	}
	if mgmt != "" {
		base, err = url.Parse(mgmt)
		if err != nil {
			return nil, "", fmt.Errorf("--management %q: %s", maskURI(mgmt), redact.ParseError(mgmt, err))
		}
		if base.User == nil {
			base.User = u.User
		}
		return base, vhost, nil
	}
	user := u.User
	if user == nil {
		user = url.UserPassword("guest", "guest")
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return &url.URL{Scheme: "http", Host: host + ":" + managementPort, User: user}, vhost, nil
}

// managementQueues lists the queues of the broker URI's vhost through the
// management API; where is the API's URL.
func managementQueues(ctx context.Context, uri, mgmt string) ([]queueInfo, string, error) {
	base, vhost, err := managementURL(uri, mgmt)
	if err != nil {
		return nil, "", err
	}
	var queues []queueInfo
	err = managementGet(ctx, base, "/api/queues/"+url.PathEscape(vhost)+"?columns=name,consumers,messages_ready,messages_unacknowledged", &queues)
	return queues, base.String(), err
}

// managementGet gets path from the management API and decodes the JSON answer into out.
func managementGet(ctx context.Context, base *url.URL, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	u := *base
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u.String(), "/")+path, nil)
	if err != nil {
		return err
	}
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s: %s %s", u.Host, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
