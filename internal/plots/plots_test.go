package plots_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/plots"
)

// place copies a fixture into a fresh directory, where its chart is written.
func place(t *testing.T, fixture string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), fixture)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// readSVG reads a chart and checks that it is well-formed XML with an svg root.
func readSVG(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the SVG is not well-formed")
		if el, ok := tok.(xml.StartElement); ok && root == "" {
			root = el.Name.Local
		}
	}
	require.Equal(t, "svg", root)
	return string(b)
}

func TestChaosTimelineNextToItsResult(t *testing.T) {
	t.Parallel()
	path := place(t, "chaos.json")
	svgPath, err := plots.WriteNextTo(path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(filepath.Dir(path), "chaos.svg"), svgPath)
	svg := readSVG(t, svgPath)
	for _, want := range []string{
		"RabbitMQ application stopped", "PostgreSQL stopped and started", // each fault window labelled
		"orders waiting", "requests answered", "orders processed", "5xx", "no answer",
		"seconds since the load started", "chaos run (fixture plan)",
	} {
		require.Contains(t, svg, want)
	}
}

func TestChaosTimelinePanels(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "chaos.json"))
	require.NoError(t, err)
	tl, err := plots.ChaosTimeline(b)
	require.NoError(t, err)
	require.Len(t, tl.Panels, 3, "backlog, throughput, errors")
	require.Len(t, tl.Faults, 2)
	require.Equal(t, plots.Fault{Label: "PostgreSQL stopped and started", Start: 7, Down: 7.2, Up: 9}, tl.Faults[1])

	// A result from before the per-second counts draws the backlog alone.
	old, err := plots.ChaosTimeline([]byte(`{"plan":{"name":"full"},"windows":[{"fault":"Redis shut down","start_s":1,"down_s":1,"up_s":3}],
		"audit":{"backlog_per_second":[0,5,0]}}`))
	require.NoError(t, err)
	require.Len(t, old.Panels, 1)
	var buf bytes.Buffer
	require.NoError(t, old.WriteSVG(&buf))
	require.Contains(t, buf.String(), "Redis shut down")

	_, err = plots.ChaosTimeline([]byte(`{"windows":[],"audit":{}}`))
	require.Error(t, err, "nothing to draw")
}

func TestBenchChartNextToItsResult(t *testing.T) {
	t.Parallel()
	path := place(t, "bench.json")
	svgPath, err := plots.WriteNextTo(path)
	require.NoError(t, err)
	svg := readSVG(t, svgPath)
	for _, want := range []string{"get_cached", "create", "login", "9538", "p50", "p99.9", "requests per second", "latency (ms, log scale)"} {
		require.Contains(t, svg, want)
	}

	title, workloads, err := plots.BenchWorkloads([]byte(`{"plan":{"name":"quick"},"medians":{"b":{"rps":2},"a":{"rps":1,"p50_ms":0}}}`))
	require.NoError(t, err)
	require.Contains(t, title, "quick plan")
	require.Len(t, workloads, 2)
	require.Equal(t, []string{"a", "b"}, []string{workloads[0].Name, workloads[1].Name}, "by name")
	var buf bytes.Buffer
	require.NoError(t, plots.WriteBenchSVG(&buf, title, workloads), "a zero latency is left out of the log scale, not a panic")
}

func TestWriteNextToRejectsWhatItCannotDraw(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{"broken.json": "{", "empty.json": "{}"} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		_, err := plots.WriteNextTo(path)
		require.Error(t, err, name)
		require.NoFileExists(t, filepath.Join(dir, name[:len(name)-len(".json")]+".svg"))
	}
	_, err := plots.WriteNextTo(filepath.Join(dir, "absent.json"))
	require.Error(t, err)
}
