package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles holds one folder of goose SQL migrations per dialect: the two schemas differ
// in column types (TEXT vs NUMERIC, BLOB vs BYTEA, JSONB), so they are kept as separate files
// with the same version numbers rather than templated.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migrationLockID is the PostgreSQL advisory lock key that serializes migrations, so that
// several `serve` processes starting at once against one database do not race. It is an
// arbitrary constant unique to opencalico ("calico" in ASCII).
const migrationLockID int64 = 0x63616c69636f

// MigrationStatus is the state of one migration.
type MigrationStatus struct {
	Version   int64
	Name      string // the file name, e.g. "00001_initial.sql"
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// migrator returns a goose provider for the store's dialect. Providers are cheap; one is made
// per call so that no goose global state is involved.
func (s *Store) migrator() (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFiles, path.Join("migrations", string(s.dialect)))
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var (
		dialect goose.Dialect
		opts    []goose.ProviderOption
	)
	switch s.dialect {
	case Postgres:
		dialect = goose.DialectPostgres
		// Probe every second, for up to five minutes: a second process waits for the first
		// one's migration rather than failing or applying it twice.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		// goose has no SQLite locker; Migrate holds a file lock instead (see lockFile).
		dialect = goose.DialectSQLite3
	}
	p, err := goose.NewProvider(dialect, s.db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	if s.dialect == SQLite {
		// Two processes (or two Stores) migrating one file at once would both see version 0
		// and the second would fail on "table already exists".
		unlock, err := lockFile(s.path + ".migrate-lock")
		if err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer unlock()
	}
	p, err := s.migrator()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// MigrationStatus lists every known migration and whether it is applied, oldest first.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := s.migrator()
	if err != nil {
		return nil, err
	}
	list, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migration status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(list))
	for _, m := range list {
		st := MigrationStatus{
			Version: m.Source.Version,
			Name:    path.Base(m.Source.Path),
			Applied: m.State == goose.StateApplied,
		}
		if st.Applied {
			st.AppliedAt = m.AppliedAt.UTC()
		}
		out = append(out, st)
	}
	return out, nil
}

// MigrationsCurrent reports whether every migration is applied (for /readyz: a server whose
// schema is behind its code must not take traffic).
func (s *Store) MigrationsCurrent(ctx context.Context) (bool, error) {
	p, err := s.migrator()
	if err != nil {
		return false, err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("store: migration status: %w", err)
	}
	return !pending, nil
}
