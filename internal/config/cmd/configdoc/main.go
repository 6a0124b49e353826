// Command configdoc writes .env.example and the configuration tables of
// README.md from config.Vars. Run it from the repository root (task generate
// does); CI checks that running it changes nothing.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ordersvc/orders/internal/config"
)

func main() {
	readme := flag.String("readme", "README.md", "README to update between its config markers")
	dotenv := flag.String("env-example", ".env.example", ".env.example to write")
	flag.Parse()
	if err := run(*readme, *dotenv); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func run(readmePath, dotenvPath string) error {
	text, err := os.ReadFile(readmePath) //nolint:gosec // the README the developer names
	if err != nil {
		return err
	}
	updated, err := config.ReplaceReadme(string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", readmePath, err)
	}
	if err := os.WriteFile(readmePath, []byte(updated), 0o644); err != nil { //nolint:gosec // a document in the repository
		return err
	}
	return os.WriteFile(dotenvPath, []byte(config.DotEnvExample()), 0o644) //nolint:gosec // a document in the repository
}
