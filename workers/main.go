// Command workers runs the event pipeline: the outbox forwarders (PostgreSQL
// -> RabbitMQ) and the handlers (new_order -> process_order task -> processing).
//
//	workers              run the forwarders and handlers
//	workers dlq list     print the dead letters (they stay queued)
//	workers dlq replay   send every dead letter back to the queue it failed on
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersvc/orders/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	getenv, err := config.Getenv()
	if err == nil {
		err = run(ctx, os.Args[1:], getenv, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(1)
	}
}
