// Package plots draws the charts of the benchmark and the chaos run as SVG:
// a timeline of the outage run with each fault window shaded, and the
// throughput and latency percentiles of each benchmark workload.
package plots

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Fault is one fault window of a chaos run, in seconds since the load started:
// the fault was injected at Start, the service seen down at Down and back at Up.
type Fault struct {
	Label string  `json:"fault"`
	Start float64 `json:"start_s"`
	Down  float64 `json:"down_s"`
	Up    float64 `json:"up_s"`
}

// Series is one line of a panel: a value for each second since the load started.
type Series struct {
	Name      string
	PerSecond []float64
}

// Panel is one chart of a timeline, sharing the time axis with the others.
type Panel struct {
	YLabel string
	Series []Series
}

// Timeline is a run over time: panels stacked above each other, with the
// fault windows shaded (and labelled in the top panel).
type Timeline struct {
	Title  string
	Faults []Fault
	Panels []Panel
}

var (
	faultShade   = color.NRGBA{R: 230, G: 80, B: 60, A: 50}
	faultPending = color.NRGBA{R: 230, G: 80, B: 60, A: 18}
	faultText    = color.NRGBA{R: 160, G: 40, B: 30, A: 255}
	panelSize    = vg.Points(220)
	chartWidth   = 10 * vg.Inch
)

// WriteSVG draws the timeline.
func (tl Timeline) WriteSVG(w io.Writer) error {
	if len(tl.Panels) == 0 {
		return fmt.Errorf("timeline %q: nothing to plot", tl.Title)
	}
	end := 0.0
	for _, f := range tl.Faults {
		end = math.Max(end, f.Up)
	}
	for _, p := range tl.Panels {
		for _, s := range p.Series {
			end = math.Max(end, float64(len(s.PerSecond)))
		}
	}
	var rows [][]*plot.Plot
	for i, panel := range tl.Panels {
		p := plot.New()
		if i == 0 {
			p.Title.Text = tl.Title
		}
		if i == len(tl.Panels)-1 {
			p.X.Label.Text = "seconds since the load started"
		}
		p.Y.Label.Text = panel.YLabel
		if len(panel.Series) == 1 {
			p.Y.Label.Text = panel.YLabel + " " + panel.Series[0].Name
		}
		p.X.Min, p.X.Max = 0, end
		p.Y.Min = 0
		top := 1.0
		for _, s := range panel.Series {
			if len(s.PerSecond) > 0 {
				top = math.Max(top, slices.Max(s.PerSecond))
			}
		}
		top *= 1.1
		if len(panel.Series) > 1 {
			top *= 1.15 // room for the legend
		}
		p.Y.Max = top
		for _, f := range tl.Faults {
			// Lighter from the fault until the service was seen down, darker
			// while it was down, a line where the fault began.
			for _, span := range []struct {
				from, to float64
				fill     color.Color
			}{{f.Start, f.Down, faultPending}, {f.Down, f.Up, faultShade}} {
				shade, err := plotter.NewPolygon(plotter.XYs{{X: span.from, Y: 0}, {X: span.to, Y: 0}, {X: span.to, Y: top}, {X: span.from, Y: top}})
				if err != nil {
					return err
				}
				shade.Color = span.fill
				shade.Width = 0
				p.Add(shade)
			}
			edge, err := plotter.NewLine(plotter.XYs{{X: f.Start, Y: 0}, {X: f.Start, Y: top}})
			if err != nil {
				return err
			}
			edge.Color, edge.Width = faultText, vg.Points(0.5)
			p.Add(edge)
		}
		if i == 0 {
			labels, err := faultLabels(tl.Faults, top)
			if err != nil {
				return err
			}
			if labels != nil {
				p.Add(labels)
			}
		}
		for j, s := range panel.Series {
			xys := make(plotter.XYs, len(s.PerSecond))
			for k, v := range s.PerSecond {
				xys[k] = plotter.XY{X: float64(k), Y: v}
			}
			line, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			line.Color = plotutil.Color(j)
			line.Width = vg.Points(1.5)
			p.Add(line)
			if len(panel.Series) > 1 {
				p.Legend.Add(s.Name, line)
			}
		}
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		rows = append(rows, []*plot.Plot{p})
	}
	return writeAligned(w, rows)
}

// faultLabels writes each fault's name upright at the start of its window,
// from the top of the panel down.
func faultLabels(faults []Fault, top float64) (*plotter.Labels, error) {
	if len(faults) == 0 {
		return nil, nil
	}
	var xyl plotter.XYLabels
	for _, f := range faults {
		xyl.XYs = append(xyl.XYs, plotter.XY{X: f.Start, Y: top})
		xyl.Labels = append(xyl.Labels, f.Label)
	}
	labels, err := plotter.NewLabels(xyl)
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		s := &labels.TextStyle[i]
		s.Rotation = -math.Pi / 2
		s.XAlign, s.YAlign = text.XLeft, text.YBottom
		s.Color = faultText
		s.Font.Size = vg.Points(8)
	}
	labels.Offset = vg.Point{X: vg.Points(2), Y: vg.Points(-2)}
	return labels, nil
}

// Workload is one benchmark workload's median run.
type Workload struct {
	Name   string  `json:"name"`
	RPS    float64 `json:"rps"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
}

// WriteBenchSVG draws the throughput of each workload above its latency
// percentiles.
func WriteBenchSVG(w io.Writer, title string, workloads []Workload) error {
	if len(workloads) == 0 {
		return fmt.Errorf("bench %q: no workloads to plot", title)
	}
	names := make([]string, len(workloads))
	rps := make(plotter.Values, len(workloads))
	pct := [3]plotter.Values{}
	for i, wl := range workloads {
		names[i], rps[i] = wl.Name, wl.RPS
		for j, v := range []float64{wl.P50ms, wl.P99ms, wl.P999ms} {
			pct[j] = append(pct[j], v)
		}
	}
	barWidth := vg.Points(28)

	throughput := plot.New()
	throughput.Title.Text = title
	throughput.Y.Label.Text = "requests per second"
	throughput.NominalX(names...)
	bars, err := plotter.NewBarChart(rps, barWidth)
	if err != nil {
		return err
	}
	bars.Color = plotutil.Color(0)
	bars.LineStyle.Width = 0
	throughput.Add(plotter.NewGrid(), bars)

	rpsLabels, err := plotter.NewLabels(valueLabels(rps, "%.0f"))
	if err != nil {
		return err
	}
	for i := range rpsLabels.TextStyle {
		rpsLabels.TextStyle[i].XAlign = text.XCenter
		rpsLabels.TextStyle[i].Font.Size = vg.Points(8)
	}
	rpsLabels.Offset.Y = vg.Points(2)
	throughput.Add(rpsLabels)
	throughput.Y.Min, throughput.Y.Max = 0, slices.Max(rps)*1.1 // room for the figures

	// The percentiles span three orders of magnitude (a cached read against
	// a password hash): points on a log scale.
	latency := plot.New()
	latency.Y.Label.Text = "latency (ms, log scale)"
	if slices.ContainsFunc(pct[:], func(vs plotter.Values) bool { return slices.Max(vs) > 0 }) {
		// Without a figure above 0 the axis would span no positive value.
		latency.Y.Scale, latency.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	latency.NominalX(names...)
	latency.Add(plotter.NewGrid())
	for j, name := range []string{"p50", "p99", "p99.9"} {
		var xys plotter.XYs
		for i, v := range pct[j] {
			if v > 0 {
				xys = append(xys, plotter.XY{X: float64(i) + 0.15*float64(j-1), Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		points, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		points.Color = plotutil.Color(j + 1)
		points.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}}[j]
		points.Radius = vg.Points(3.5)
		latency.Add(points)
		latency.Legend.Add(name, points)
	}
	latency.Legend.Top = false // the slowest workloads are top right, the fastest left
	return writeAligned(w, [][]*plot.Plot{{throughput}, {latency}})
}

// valueLabels puts each value's figure above its bar.
func valueLabels(vs plotter.Values, format string) plotter.XYLabels {
	var l plotter.XYLabels
	for i, v := range vs {
		l.XYs = append(l.XYs, plotter.XY{X: float64(i), Y: v})
		l.Labels = append(l.Labels, fmt.Sprintf(format, v))
	}
	return l
}

// writeAligned draws the plots one above the other, their axes aligned.
func writeAligned(w io.Writer, rows [][]*plot.Plot) error {
	c := vgsvg.New(chartWidth, panelSize*vg.Length(len(rows))+vg.Points(30))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	_, err := c.WriteTo(w)
	return err
}
