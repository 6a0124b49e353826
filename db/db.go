// Package db carries the dbmate migrations into the binaries, so that a
// deployed server or migrator needs no files beside it.
package db

import "embed"

// Migrations holds db/migrations/*.sql.
//
//go:embed migrations/*.sql
var Migrations embed.FS
