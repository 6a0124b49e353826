// Command plotresults draws the SVG chart of each JSON result it is given (a
// chaos run's, from e2e/results, or the benchmark's, from bench/results) next
// to it, without running anything again.
//
//	go run ./internal/plots/cmd/plotresults e2e/results/chaos-latest-full.json bench/results/latest-full.json
package main

import (
	"fmt"
	"os"

	"github.com/ordersvc/orders/internal/plots"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: plotresults RESULT.json...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		svg, err := plots.WriteNextTo(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", svg)
	}
}
