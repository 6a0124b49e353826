package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ordersvc/orders/internal/plots"
)

func targets(r *Report) []Target {
	half, full := r.Pipeline["half"], r.Pipeline["full"]
	// "Flat backlog": over the run at full rate, the orders waiting to be
	// processed (anywhere in the pipeline) grow by less than 2% of the
	// create rate per second.
	growth := backlogGrowth(full)
	flat := len(full.BacklogSamples) >= 8 && growth <= 0.02*full.TargetRate
	var wakeup WakeupResult
	if r.Wakeup != nil {
		wakeup = *r.Wakeup
	}
	idle := IdleResult{PerSecondPerProc: -1} // not measured: missed, not 0
	if r.Idle != nil {
		idle = *r.Idle
	}
	// The pipeline's sustained rate: what the system created and processed
	// while creates ran at the full measured rate; and what the workers
	// spent on each order then.
	sustained := min(full.AchievedRate, full.ProcessedInRun)
	var sustainedRatio, workersCPU float64
	if ceiling := r.Medians["ceiling_db"].RPS; ceiling > 0 {
		sustainedRatio = sustained / ceiling
	}
	if full.ProcessedInRun > 0 {
		workersCPU = full.CPUCores["workers"] * 1000 / full.ProcessedInRun
	}
	return []Target{
		{Name: "cached GET vs Redis ceiling", Want: ">= 0.7", Got: r.Ratios["get_cached/ceiling_redis"], Unit: "x", Met: r.Ratios["get_cached/ceiling_redis"] >= 0.7},
		{Name: "cached GET p99 vs Redis ceiling's", Want: "<= 2", Got: r.Ratios["get_cached/ceiling_redis_p99"], Unit: "x", Met: r.Ratios["get_cached/ceiling_redis_p99"] > 0 && r.Ratios["get_cached/ceiling_redis_p99"] <= 2},
		{Name: "cached GET, rate limits on, vs Redis ceiling", Want: ">= 0.7", Got: r.Ratios["get_cached_limited/ceiling_redis"], Unit: "x", Met: r.Ratios["get_cached_limited/ceiling_redis"] >= 0.7},
		{Name: "cached GET, rate limits on, p99 vs Redis ceiling's", Want: "<= 2", Got: r.Ratios["get_cached_limited/ceiling_redis_p99"], Unit: "x", Met: r.Ratios["get_cached_limited/ceiling_redis_p99"] > 0 && r.Ratios["get_cached_limited/ceiling_redis_p99"] <= 2},
		{Name: "cached GET vs HTTP ceiling", Want: ">= 0.6", Got: r.Ratios["get_cached/ceiling_http"], Unit: "x", Met: r.Ratios["get_cached/ceiling_http"] >= 0.6},
		{Name: "create vs database ceiling", Want: ">= 0.6", Got: r.Ratios["create/ceiling_db"], Unit: "x", Met: r.Ratios["create/ceiling_db"] >= 0.6},
		{Name: "create with Idempotency-Key vs without", Want: ">= 0.9", Got: r.Ratios["create_keyed/create"], Unit: "x", Met: r.Ratios["create_keyed/create"] >= 0.9},
		{Name: "pipeline backlog growth at full create rate", Want: "<= 2% of rate", Got: growth, Unit: "orders/s", Met: flat},
		{Name: "commit -> processed p50 at half load", Want: "<= 10", Got: half.CommitToProcP50, Unit: "ms", Met: half.CommitToProcP50 > 0 && half.CommitToProcP50 <= 10},
		{Name: "commit -> processed p99 at half load", Want: "<= 50", Got: half.CommitToProcP99, Unit: "ms", Met: half.CommitToProcP99 > 0 && half.CommitToProcP99 <= 50},
		{Name: "first event after a quiet spell, median", Want: "<= 25", Got: wakeup.MedianMS, Unit: "ms", Met: wakeup.MedianMS > 0 && wakeup.MedianMS <= 25},
		{Name: "first event after a quiet spell, max", Want: "<= 25", Got: wakeup.MaxMS, Unit: "ms", Met: wakeup.MaxMS > 0 && wakeup.MaxMS <= 25},
		{Name: "idle: database transactions per workers process", Want: "<= 1", Got: idle.PerSecondPerProc, Unit: "/s", Met: idle.PerSecondPerProc >= 0 && idle.PerSecondPerProc <= 1},
		{Name: "API CPU per create", Want: "<= 0.2", Got: r.Medians["create"].APICPUms, Unit: "ms", Met: r.Medians["create"].APICPUms > 0 && r.Medians["create"].APICPUms <= 0.2},
		{Name: "workers CPU per order at full load", Want: "<= 0.15", Got: workersCPU, Unit: "ms", Met: workersCPU > 0 && workersCPU <= 0.15},
		{Name: "created and processed at full load vs database ceiling", Want: ">= 0.6", Got: sustainedRatio, Unit: "x", Met: sustainedRatio >= 0.6},
		{Name: "API RSS under load", Want: "<= 64", Got: r.RSSMiB["api"], Unit: "MiB", Met: r.RSSMiB["api"] > 0 && r.RSSMiB["api"] <= 64},
	}
}

// backlogGrowth is how fast the backlog of unprocessed orders grew during the
// run, in orders per second: the mean of the last quarter of the samples minus the
// mean of the first quarter, over the time between them.
func backlogGrowth(p PipelineResult) float64 {
	n := len(p.BacklogSamples)
	q := n / 4
	if q == 0 {
		return 0
	}
	mean := func(xs []int64) float64 {
		var sum int64
		for _, x := range xs {
			sum += x
		}
		return float64(sum) / float64(len(xs))
	}
	span := float64(n-q) * float64(p.SampleIntervalMS) / 1000
	return (mean(p.BacklogSamples[n-q:]) - mean(p.BacklogSamples[:q])) / span
}

func printReport(r *Report) {
	fmt.Printf("\nResults (%s mode, medians of %d round(s); %d CPUs, %s, %s)\n", r.Plan.Name, r.Plan.Rounds, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion)
	fmt.Printf("%-16s %10s %9s %9s %9s %7s %15s %13s\n", "workload", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "server cpu ms", "load cpu ms")
	names := make([]string, 0, len(r.Medians))
	for n := range r.Medians {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m := r.Medians[n]
		fmt.Printf("%-16s %10.0f %9.2f %9.2f %9.2f %7d %15.3f %13.3f\n", n, m.RPS, m.P50ms, m.P99ms, m.P999ms, m.Errors, m.APICPUms, m.LoadCPUms)
	}
	fmt.Printf("\nratios: create/ceiling_db %.2f, get_cached/ceiling_redis %.2f (p99 %.2f), get_cached/ceiling_http %.2f, create_keyed/create %.2f, get_304/get_cached %.2f\n",
		r.Ratios["create/ceiling_db"], r.Ratios["get_cached/ceiling_redis"], r.Ratios["get_cached/ceiling_redis_p99"], r.Ratios["get_cached/ceiling_http"],
		r.Ratios["create_keyed/create"], r.Ratios["get_304/get_cached"])
	fmt.Printf("max RSS: api %.1f MiB, workers %.1f MiB\n", r.RSSMiB["api"], r.RSSMiB["workers"])
	for _, n := range names {
		if rss, ok := r.RSSMiB["api:"+n]; ok {
			fmt.Printf("  api RSS during %-16s %6.1f MiB\n", n, rss)
		}
	}
	for _, name := range []string{"quarter", "half", "full", "closed"} {
		p, ok := r.Pipeline[name]
		if !ok {
			continue
		}
		fmt.Printf("pipeline %-6s: target %.0f/s achieved %.0f/s, processed %.0f/s during the run, commit->processed p50 %.1f ms p99 %.1f ms, backlog max %d end %d, drained in %.1f s (%.0f/s)\n",
			name, p.TargetRate, p.AchievedRate, p.ProcessedInRun, p.CommitToProcP50, p.CommitToProcP99, p.BacklogMax, p.BacklogEnd, p.DrainSeconds, p.DrainRate)
		fmt.Printf("               unprocessed orders every %d ms: %v\n", p.SampleIntervalMS, p.BacklogSamples)
		fmt.Printf("               unforwarded events every %d ms: %v\n", p.SampleIntervalMS, p.OutboxSamples)
		fmt.Printf("               new_order queue every %d ms: %v\n", p.SampleIntervalMS, p.EventQueue)
		fmt.Printf("               process_order queue every %d ms: %v\n", p.SampleIntervalMS, p.TaskQueue)
		fmt.Printf("               cores used during the run: %s; %.1f database transactions per order\n", formatCores(p.CPUCores), p.TxPerOrder)
	}
	if w := r.Wakeup; w != nil {
		fmt.Printf("first event after %.1f s quiet: commit->processed median %.1f ms, max %.1f ms, samples %v\n", w.QuietSeconds, w.MedianMS, w.MaxMS, roundAll(w.SamplesMS))
	}
	if i := r.Idle; i != nil {
		fmt.Printf("idle system: %d database transactions in %.1f s, %.2f/s per workers process (%d)\n", i.Commits, i.Seconds, i.PerSecondPerProc, i.WorkersProcesses)
	}
	fmt.Printf("load average: %s at the start, %s at the end\n", r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Println("\ntargets:")
	for _, t := range r.Targets {
		verdict := "MISSED"
		if t.Met {
			verdict = "met"
		}
		fmt.Printf("  %-50s want %-16s got %8.2f %-6s %s\n", t.Name, t.Want, t.Got, t.Unit, verdict)
	}
}

func writeReport(r *Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s.json", r.StartedAt.Format("20060102T150405Z"), r.Plan.Name)
	for _, f := range []string{name, "latest-" + r.Plan.Name + ".json"} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil { //nolint:gosec // results are meant to be read
			return err
		}
		// The chart of throughput and latency percentiles, as .svg next to it.
		if _, err := plots.WriteNextTo(filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	fmt.Printf("\nwrote %s\n", filepath.Join(dir, name))
	return nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// formatCores lists the parts of the system by the cores they used, most first.
func formatCores(cores map[string]float64) string {
	parts := make([]string, 0, len(cores))
	for p := range cores {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b string) int { return cmp.Compare(cores[b], cores[a]) })
	var total float64
	for i, p := range parts {
		total += cores[p]
		parts[i] = fmt.Sprintf("%s %.2f", p, cores[p])
	}
	return fmt.Sprintf("%s (total %.2f)", strings.Join(parts, ", "), total)
}

// roundAll rounds each figure to a tenth, for printing.
func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Round(x*10) / 10
	}
	return out
}
