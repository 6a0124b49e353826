package database_test

import (
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	dbfiles "github.com/ordersvc/orders/db"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// migrationVersions lists the versions of the embedded migration files.
func migrationVersions(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(dbfiles.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	versions := make([]string, 0, len(files))
	for _, f := range files {
		name := strings.TrimPrefix(f, "migrations/")
		version, _, ok := strings.Cut(name, "_")
		require.True(t, ok, "migration file %s has no version prefix", name)
		versions = append(versions, version)
	}
	return versions
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func appliedVersions(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return versions
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := testdb.NewEmpty(t)

	const instances = 8
	errs := make([]error, instances)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range instances {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			errs[i] = database.Migrate(t.Context(), url, quiet())
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		require.NoError(t, err, "instance %d", i)
	}

	conn := connect(t, url)
	// Each migration ran exactly once: dbmate records a version per run, and
	// a second run of the same file would have failed on CREATE TABLE.
	require.Equal(t, migrationVersions(t), appliedVersions(t, conn))

	for _, table := range []string{"users", "orders", "outbox_messages", "processed_messages"} {
		var exists bool
		require.NoError(t, conn.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, "public."+table).Scan(&exists))
		require.True(t, exists, "table %s", table)
	}

	// The lock is released: one more migrator neither waits nor fails.
	require.NoError(t, database.Migrate(t.Context(), url, quiet()))
	require.Equal(t, migrationVersions(t), appliedVersions(t, conn))
}

func TestPending(t *testing.T) {
	t.Parallel()
	url := testdb.NewEmpty(t)
	files := len(migrationVersions(t))

	pending, err := database.Pending(url)
	require.NoError(t, err)
	require.Equal(t, files, pending, "an empty database lacks every migration")

	require.NoError(t, database.Migrate(t.Context(), url, quiet()))
	pending, err = database.Pending(url)
	require.NoError(t, err)
	require.Zero(t, pending)
}

// TestMigrateLogsOneLine: a fresh database's migrations are one line at
// info, whatever their number, and a database already current logs none.
func TestMigrateLogsOneLine(t *testing.T) {
	t.Parallel()
	url := testdb.NewEmpty(t)
	logs := testlog.NewSink()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	require.NoError(t, database.Migrate(t.Context(), url, logger))
	records := logs.Records()
	require.Len(t, records, 1, logs.String())
	require.Equal(t, "database migrated", records[0]["msg"])
	require.InDelta(t, len(migrationVersions(t)), records[0]["applied"], 0)
	require.Len(t, records[0]["migrations"], len(migrationVersions(t)))

	require.NoError(t, database.Migrate(t.Context(), url, logger))
	require.Len(t, logs.Records(), 1, "nothing to apply, nothing to say:\n%s", logs.String())
}

func TestPendingOnTestTemplate(t *testing.T) {
	t.Parallel()
	pending, err := database.Pending(testdb.New(t))
	require.NoError(t, err)
	require.Zero(t, pending, "testdb.New hands out fully migrated databases")
}

func TestMigrateFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
	}{
		{"unreachable server", "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2"},
		{"not a URL", "::not a url::"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Error(t, database.Migrate(t.Context(), tt.url, quiet()))
			_, err := database.Pending(tt.url)
			require.Error(t, err)
		})
	}
}

// missingDatabase returns the URL of a database that does not exist yet and
// is dropped when the test ends, whoever creates it.
func missingDatabase(t *testing.T) string {
	t.Helper()
	name := "test_missing_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, testdb.AdminURL())
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return testdb.WithDatabase(testdb.AdminURL(), name)
}

func TestPendingMissingDatabase(t *testing.T) {
	t.Parallel()
	_, err := database.Pending(missingDatabase(t))
	require.Error(t, err, "Pending only reads: it must not create the database")
}

// A fresh installation's first start creates the database; instances
// starting together race to create it and must all succeed.
func TestMigrateCreatesMissingDatabase(t *testing.T) {
	t.Parallel()
	url := missingDatabase(t)

	const instances = 4
	errs := make([]error, instances)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range instances {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			errs[i] = database.Migrate(t.Context(), url, quiet())
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		require.NoError(t, err, "instance %d", i)
	}

	pending, err := database.Pending(url)
	require.NoError(t, err)
	require.Zero(t, pending)
	require.Equal(t, migrationVersions(t), appliedVersions(t, connect(t, url)))
}

func TestOpen(t *testing.T) {
	t.Parallel()
	pool, err := database.Open(t.Context(), testdb.New(t), 3, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.Equal(t, int32(3), pool.Config().MaxConns)
	require.NoError(t, pool.Ping(t.Context()))

	_, err = database.Open(t.Context(), "::not a url::", 3, slog.New(slog.DiscardHandler))
	require.Error(t, err)
}
