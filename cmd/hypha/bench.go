package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/hypha-go/hypha/rpc"
)

func (c *cli) benchCommand() *cobra.Command {
	var calls, concurrency int
	var o callOptions
	cmd := &cobra.Command{
		Use:   "bench SERVICE.METHOD [ARGS...]",
		Short: "Call a method many times and report throughput and latency",
		Long: `bench makes --calls calls of SERVICE.METHOD, --concurrency at a time, with the
arguments as call takes them, showing a progress bar meanwhile; then it prints
the calls per second, the latency's p50, p90, p99 and max, the errors by type,
and a histogram of the latencies.`,
		Example:           `  hypha bench calculator.add '{"a": 1, "b": 2}' --calls 20000 --concurrency 64`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: c.completeTarget(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			service, method, err := splitTarget(args[0])
			if err != nil {
				return err
			}
			if calls < 1 || concurrency < 1 {
				return usageError("--calls and --concurrency must be at least 1")
			}
			if err := o.check(); err != nil {
				return err
			}
			in, err := parseArgs(args[1:], nil)
			if err != nil {
				return err
			}
			client, _, err := c.dialCall(cmd.Context(), &o)
			if err != nil {
				return err
			}
			defer client.Close()
			ctx, err := withContextData(cmd.Context(), o.context)
			if err != nil {
				return err
			}
			p := client.Proxy(service)
			if o.idempotent {
				p = p.Idempotent()
			}
			bar := progressbar.NewOptions(calls, progressbar.OptionSetWriter(c.err), progressbar.OptionSetDescription(args[0]),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("calls"),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			r := runBench(ctx, p, method, in, calls, concurrency, o.timeout, func() { _ = bar.Add(1) })
			_ = bar.Finish()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.print(c.out)
			return nil
		},
	}
	cmd.Flags().IntVar(&calls, "calls", 1000, "how many calls to make")
	cmd.Flags().IntVar(&concurrency, "concurrency", 16, "how many calls to have in flight at once")
	addCallFlags(cmd, &o)
	return cmd
}

// benchResult is what a run measured.
type benchResult struct {
	elapsed   time.Duration
	latencies []time.Duration // of the successful calls, sorted
	errors    map[string]int  // by type
}

// runBench makes calls calls, concurrency at a time.
func runBench(ctx context.Context, p *rpc.Proxy, method string, in any, calls, concurrency int, timeout time.Duration, done func()) benchResult {
	var next atomic.Int64
	var mu sync.Mutex
	r := benchResult{errors: map[string]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range min(concurrency, calls) {
		wg.Go(func() {
			var own []time.Duration
			ownErrs := map[string]int{}
			for next.Add(1) <= int64(calls) && ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				t := time.Now()
				err := p.Call(cctx, method, in, nil)
				took := time.Since(t)
				cancel()
				if err != nil {
					ownErrs[errorKind(err)]++
				} else {
					own = append(own, took)
				}
				done()
			}
			mu.Lock()
			r.latencies = append(r.latencies, own...)
			for k, n := range ownErrs {
				r.errors[k] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	slices.Sort(r.latencies)
	return r
}

// errorKind names an error for the errors-by-type table.
func errorKind(err error) string {
	var re *rpc.RemoteError
	switch {
	case errors.Is(err, rpc.ErrTimeout):
		return "timeout"
	case errors.Is(err, rpc.ErrServiceNotFound):
		return "service not found"
	case errors.Is(err, rpc.ErrTooManyCalls):
		return "too many calls in flight"
	case errors.As(err, &re):
		return re.ExcType
	}
	return err.Error()
}

func (r benchResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(r.latencies)))) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

func (r benchResult) print(w io.Writer) {
	total := len(r.latencies)
	for _, n := range r.errors {
		total += n
	}
	fmt.Fprintf(w, "%d calls in %v: %.0f calls/s, %d ok, %d failed\n", total, r.elapsed.Round(time.Millisecond),
		float64(total)/r.elapsed.Seconds(), len(r.latencies), total-len(r.latencies))
	if len(r.latencies) > 0 {
		fmt.Fprintf(w, "latency: p50 %v  p90 %v  p99 %v  max %v\n", round(r.percentile(50)), round(r.percentile(90)),
			round(r.percentile(99)), round(r.latencies[len(r.latencies)-1]))
	}
	if len(r.errors) > 0 {
		fmt.Fprintln(w, "errors:")
		kinds := make([]string, 0, len(r.errors))
		for k := range r.errors {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return r.errors[kinds[i]] > r.errors[kinds[j]] })
		for _, k := range kinds {
			fmt.Fprintf(w, "  %8d  %s\n", r.errors[k], k)
		}
	}
	r.histogram(w)
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// histogram prints the latencies in up to 12 buckets of equal width on a log
// scale, one bar each.
func (r benchResult) histogram(w io.Writer) {
	if len(r.latencies) < 2 {
		return
	}
	lo, hi := math.Log(float64(max(r.latencies[0], time.Microsecond))), math.Log(float64(r.latencies[len(r.latencies)-1]))
	const buckets, width = 12, 40
	if hi <= lo {
		hi = lo + 1e-9
	}
	counts := make([]int, buckets)
	for _, d := range r.latencies {
		i := int((math.Log(float64(max(d, time.Microsecond))) - lo) / (hi - lo) * buckets)
		counts[min(max(i, 0), buckets-1)]++
	}
	most := slices.Max(counts)
	fmt.Fprintln(w, "histogram:")
	for i, n := range counts {
		upper := time.Duration(math.Exp(lo + (hi-lo)*float64(i+1)/buckets))
		filled := int(math.Round(float64(n) / float64(most) * width))
		bar := strings.Repeat("█", filled) + strings.Repeat(" ", width-filled)
		fmt.Fprintf(w, "  ≤ %-10v %s %d\n", round(upper), bar, n)
	}
}
