package plots

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// chaosReport is the part of a chaos run's JSON result (e2e) that the
// timeline draws.
type chaosReport struct {
	StartedAt time.Time `json:"started_at"`
	Plan      struct {
		Name string `json:"name"`
	} `json:"plan"`
	Windows []Fault `json:"windows"`
	Audit   struct {
		Backlog   []float64 `json:"backlog_per_second"`
		Processed []float64 `json:"processed_per_second"`
	} `json:"audit"`
	PerSecond struct {
		Requests []float64 `json:"requests"`
		HTTP5xx  []float64 `json:"http_5xx"`
		NoAnswer []float64 `json:"no_answer"`
	} `json:"per_second"`
}

// ChaosTimeline reads a chaos run's JSON result: the orders waiting each
// second, the orders processed and the requests answered each second, and
// the 5xx and unanswered requests each second, with the fault windows. A
// result written before the per-second counts were recorded gives the
// backlog alone.
func ChaosTimeline(data []byte) (Timeline, error) {
	var r chaosReport
	if err := json.Unmarshal(data, &r); err != nil {
		return Timeline{}, fmt.Errorf("chaos result: %w", err)
	}
	if len(r.Audit.Backlog) == 0 {
		return Timeline{}, fmt.Errorf("chaos result: no backlog_per_second")
	}
	tl := Timeline{
		Title:  fmt.Sprintf("chaos run (%s plan), %s", r.Plan.Name, r.StartedAt.Format(time.DateTime+" MST")),
		Faults: r.Windows,
		Panels: []Panel{{YLabel: "orders", Series: []Series{{Name: "waiting", PerSecond: r.Audit.Backlog}}}},
	}
	ps := r.PerSecond
	if len(ps.Requests) > 0 || len(r.Audit.Processed) > 0 {
		tl.Panels = append(tl.Panels, Panel{YLabel: "per second", Series: nonEmpty(
			Series{Name: "requests answered", PerSecond: ps.Requests},
			Series{Name: "orders processed", PerSecond: r.Audit.Processed})})
	}
	if len(ps.HTTP5xx) > 0 || len(ps.NoAnswer) > 0 {
		tl.Panels = append(tl.Panels, Panel{YLabel: "errors per second", Series: nonEmpty(
			Series{Name: "5xx", PerSecond: ps.HTTP5xx},
			Series{Name: "no answer", PerSecond: ps.NoAnswer})})
	}
	return tl, nil
}

func nonEmpty(series ...Series) []Series {
	return slices.DeleteFunc(series, func(s Series) bool { return len(s.PerSecond) == 0 })
}

// benchReport is the part of the benchmark's JSON result (bench) that the
// bar charts draw.
type benchReport struct {
	StartedAt time.Time `json:"started_at"`
	Plan      struct {
		Name string `json:"name"`
	} `json:"plan"`
	Medians map[string]Workload `json:"medians"`
}

// BenchWorkloads reads the benchmark's JSON result: the median run of each
// workload, by name, and a title.
func BenchWorkloads(data []byte) (string, []Workload, error) {
	var r benchReport
	if err := json.Unmarshal(data, &r); err != nil {
		return "", nil, fmt.Errorf("bench result: %w", err)
	}
	if len(r.Medians) == 0 {
		return "", nil, fmt.Errorf("bench result: no medians")
	}
	var out []Workload
	for name, w := range r.Medians {
		w.Name = name
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Workload) int { return strings.Compare(a.Name, b.Name) })
	title := fmt.Sprintf("bench (%s plan, medians), %s", r.Plan.Name, r.StartedAt.Format(time.DateTime+" MST"))
	return title, out, nil
}

// WriteNextTo draws the chart of a JSON result, a chaos run's or the
// benchmark's, in the same place with .svg for .json; it returns the SVG's path.
func WriteNextTo(jsonPath string) (string, error) {
	data, err := os.ReadFile(jsonPath) //nolint:gosec // the caller names its own result
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	var probe struct {
		Windows json.RawMessage `json:"windows"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", fmt.Errorf("%s: %w", jsonPath, err)
	}
	if probe.Windows != nil {
		tl, err := ChaosTimeline(data)
		if err != nil {
			return "", err
		}
		err = tl.WriteSVG(&buf)
		if err != nil {
			return "", err
		}
	} else {
		title, workloads, err := BenchWorkloads(data)
		if err != nil {
			return "", err
		}
		if err := WriteBenchSVG(&buf, title, workloads); err != nil {
			return "", err
		}
	}
	svgPath := strings.TrimSuffix(jsonPath, ".json") + ".svg"
	return svgPath, os.WriteFile(svgPath, buf.Bytes(), 0o644) //nolint:gosec // results are meant to be read
}
