// Command promqlnames parses PromQL expressions with Prometheus's own parser
// and prints the metric names each one selects. It reads a JSON array of
// expressions on stdin and writes a JSON array of {expr, metrics, error}.
//
// It is a module of its own so that github.com/prometheus/prometheus and
// what it requires stay out of the orders module's go.mod; the dashboard
// test (e2e/dashboard_test.go) runs it with `go run`.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
	Error   string   `json:"error,omitempty"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promqlnames: read a JSON array of expressions on stdin:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(exprs))
	for _, e := range exprs {
		out = append(out, names(e))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "promqlnames:", err)
		os.Exit(1)
	}
}

func names(expr string) result {
	r := result{Expr: expr, Metrics: []string{}}
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			r.Error = "a selector without a metric name: " + vs.String()
		} else if !slices.Contains(r.Metrics, name) {
			r.Metrics = append(r.Metrics, name)
		}
		return nil
	})
	slices.Sort(r.Metrics)
	return r
}
