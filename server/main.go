// Command server runs the orders HTTP API.
//
//	server          serve the API (migrating first when MIGRATE_ON_START=true)
//	server migrate  apply pending migrations and exit (the deploy step)
package main

import (
	"os"
	"runtime/debug"

	"github.com/ordersvc/orders/internal/process"
)

// defaultMemoryLimit is the API's soft memory limit unless GOMEMLIMIT says
// otherwise: near it the collector works harder instead of letting the heap
// grow (a login flood's argon2id buffers, mostly), which keeps the API within
// its memory budget at the same throughput (docs/decisions.md). It is soft:
// the process may exceed it rather than fail.
const defaultMemoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	process.Main("server", run)
}
