// Package process is the common entry of the service's commands.
package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/services"
)

// Run is a command's body: its arguments, its environment (with .env as a
// fallback) and where it logs; it returns when ctx ends or its work is done.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// Main runs run until SIGINT or SIGTERM and exits 1, with the error on
// stderr prefixed by name, when it fails. A failed dial to PostgreSQL, Redis
// or RabbitMQ is reported naming the service, its variable and address, and
// the command that starts it (services.Explain).
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	getenv, err := config.Getenv()
	if err == nil {
		err = run(ctx, os.Args[1:], getenv, os.Stdout)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", services.Explain(err, getenv))
		os.Exit(1)
	}
}
