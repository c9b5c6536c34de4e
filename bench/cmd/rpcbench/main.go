// Command rpcbench measures calls of a calculator's add over RabbitMQ and the
// embedded broker, for Hypha, hand-written amqp091-go request/reply and
// watermill's requestreply, in one run on one broker, and writes a markdown
// table and an SVG plot of the figures. From the repository root: make bench.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		duration   = flag.Duration("duration", 3*time.Second, "how long each cell calls")
		only       = flag.String("contenders", "", "comma-separated contenders to run (default all): "+contenderNames())
		inFlight   = flag.String("inflight", "1,16,64,256", "comma-separated calls in flight (1 is sequential)")
		payloads   = flag.String("payloads", "64,4096", "comma-separated request body sizes in bytes")
		out        = flag.String("out", "results.md", "markdown table output (empty: stdout only)")
		plot       = flag.String("plot", "results.svg", "SVG plot output (empty: none)")
		host       = flag.String("broker", "127.0.0.1:5672", "RabbitMQ host:port (guest/guest; vhosts made with the local rabbitmqctl)")
		cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the measured cells here")
		blockProf  = flag.String("blockprofile", "", "write a goroutine blocking profile of the measured cells here")
		mutexProf  = flag.String("mutexprofile", "", "write a mutex contention profile of the measured cells here")
		scale      = flag.Bool("scale", false, "report the scale figures instead (10,000 calls in flight, 50 services, events)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *scale {
		err = runScale(ctx, *host, *duration, *out)
	} else {
		err = runTable(ctx, options{
			duration: *duration, only: *only, inFlight: *inFlight, payloads: *payloads,
			out: *out, plot: *plot, host: *host, cpuProfile: *cpuProfile,
			blockProfile: *blockProf, mutexProfile: *mutexProf,
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
}

type options struct {
	duration                                              time.Duration
	only, inFlight, payloads, out, plot, host, cpuProfile string
	blockProfile, mutexProfile                            string
}

// writeProfile writes the named runtime profile (block, mutex) to path.
func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rpcbench: %s profile: %v\n", name, err)
	}
}

func contenderNames() string {
	names := make([]string, len(contenders))
	for i, c := range contenders {
		names[i] = c.name
	}
	return strings.Join(names, ",")
}

func runTable(ctx context.Context, o options) error {
	picked, err := pick(o.only)
	if err != nil {
		return err
	}
	levels, err := ints(o.inFlight)
	if err != nil {
		return fmt.Errorf("-inflight: %w", err)
	}
	sizes, err := ints(o.payloads)
	if err != nil {
		return fmt.Errorf("-payloads: %w", err)
	}
	v, err := newVhost(o.host)
	if err != nil {
		return err
	}
	findBroker()
	defer func() {
		if err := v.delete(); err != nil {
			fmt.Fprintln(os.Stderr, "rpcbench:", err)
		}
	}()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.blockProfile != "" {
		runtime.SetBlockProfileRate(int(time.Microsecond))
		defer writeProfile("block", o.blockProfile)
	}
	if o.mutexProfile != "" {
		runtime.SetMutexProfileFraction(5)
		defer writeProfile("mutex", o.mutexProfile)
	}
	var cells []cell
	for _, c := range picked {
		got, err := runContender(ctx, c, v.uri, sizes, levels, o.duration)
		cells = append(cells, got...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	table := markdown(cells, picked, o.duration)
	fmt.Print(table)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(table), 0o644); err != nil {
			return err
		}
	}
	if o.plot != "" {
		if err := os.WriteFile(o.plot, []byte(svgPlot(cells, picked, 64)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runContender measures one contender at every payload and in-flight count.
func runContender(ctx context.Context, c contender, uri string, sizes, levels []int, d time.Duration) ([]cell, error) {
	call, stop, err := c.start(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer stop()
	var cells []cell
	for _, size := range sizes {
		pad := padFor(size)
		for _, n := range levels {
			if ctx.Err() != nil {
				return cells, ctx.Err()
			}
			got := measure(ctx, call, pad, n, d)
			got.contender = c.name
			got.base = cmp.Or(c.base, rawSafeName)
			if c.embedded {
				got.brokerCPU = -1 // RabbitMQ idles; the embedded broker's work is in the process's CPU
			}
			cells = append(cells, got)
			fmt.Fprintf(os.Stderr, "%-13s %5d B %4d in flight: %8.0f calls/s p50 %-9s p99 %-9s %v\n",
				c.name, got.payload, n, got.callsPerSec(), round(got.p50), round(got.p99), errText(got.err))
		}
	}
	return cells, nil
}

func pick(only string) ([]contender, error) {
	if only == "" {
		return contenders, nil
	}
	var picked []contender
	for name := range strings.SplitSeq(only, ",") {
		i := slices.IndexFunc(contenders, func(c contender) bool { return c.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown contender %q; known: %s", name, contenderNames())
		}
		picked = append(picked, contenders[i])
	}
	return picked, nil
}

func ints(list string) ([]int, error) {
	var out []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}
