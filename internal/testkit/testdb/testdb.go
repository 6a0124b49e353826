// Package testdb gives each test its own PostgreSQL database, copied from a
// migrated template so that a test pays for CREATE DATABASE, not for the
// migrations. A test fails (never skips) when PostgreSQL is unreachable.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	dbfiles "github.com/ordersvc/orders/db"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testlock"
)

// AdminURL is the database the harness connects to for CREATE/DROP DATABASE.
// TEST_DATABASE_URL overrides the local default.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// New creates an empty-but-migrated database for t, drops it when t ends,
// and returns its URL.
func New(t testing.TB) string {
	t.Helper()
	testlock.Shared(t, "postgres")
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate() })
	if templateErr != nil {
		t.Fatalf("testdb: prepare template database: %v", templateErr)
	}
	name := "test_" + randomHex(8)
	create(t, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, templateName), name)
	return WithDatabase(AdminURL(), name)
}

// NewEmpty creates a database without any migration applied.
func NewEmpty(t testing.TB) string {
	t.Helper()
	testlock.Shared(t, "postgres")
	name := "test_" + randomHex(8)
	create(t, "CREATE DATABASE "+name, name)
	return WithDatabase(AdminURL(), name)
}

func create(t testing.TB, stmt, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin(ctx, stmt); err != nil {
		t.Fatalf("testdb: %s: %v (is PostgreSQL running? see README)", stmt, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
}

// ensureTemplate migrates a template database named after the migrations'
// content, so a changed migration gets a new template and unchanged ones are
// reused across test runs and packages.
func ensureTemplate() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "orders_template_" + sum[:12]
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx) //nolint:errcheck // closing after use; nothing to recover
	// Test binaries of several packages run at once: one builds the template.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7177)"); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7177)") //nolint:errcheck // released on disconnect anyway
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	if err := database.Migrate(ctx, WithDatabase(AdminURL(), building), slog.New(slog.DiscardHandler)); err != nil {
		return "", err
	}
	for _, stmt := range []string{
		"ALTER DATABASE " + building + " RENAME TO " + name,
		"ALTER DATABASE " + name + " WITH IS_TEMPLATE true",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", err
		}
	}
	return name, nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(dbfiles.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(dbfiles.Migrations, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func admin(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx) //nolint:errcheck // closing after use; nothing to recover
	_, err = conn.Exec(ctx, stmt)
	return err
}

// WithDatabase returns base with its database name replaced.
func WithDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("testdb: bad admin URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
