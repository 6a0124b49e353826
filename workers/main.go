// Command workers runs the event pipeline: the outbox forwarders (PostgreSQL
// -> RabbitMQ) and the handlers (new_order -> process_order task -> processing).
//
//	workers              run the forwarders and handlers
//	workers dlq list     print the dead letters (they stay queued)
//	workers dlq replay   send every dead letter back to the queue it failed on
package main

import (
	"os"
	"runtime/debug"

	"github.com/ordersvc/orders/internal/process"
)

// defaultGCPercent is the workers' GOGC unless the environment sets one.
// Every message allocates (decoding, a goroutine per message in the router,
// the log line) while little stays live, so the default of 100 collects
// very often; collecting less often leaves more CPU to the pipeline
// (docs/decisions.md).
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	process.Main("workers", run)
}
