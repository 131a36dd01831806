package pgtest

import (
	"context"
	"database/sql"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestURLGivesSeparateEmptyDatabases(t *testing.T) {
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	for _, u := range []string{a, b} {
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables int
		if err := db.QueryRowContext(context.Background(),
			`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables); err != nil {
			t.Fatalf("querying %s: %v", u, err)
		}
		if tables != 0 {
			t.Errorf("database %s has %d tables, want 0", u, tables)
		}
		if _, err := db.Exec(`CREATE TABLE t (x int)`); err != nil {
			t.Fatal(err)
		}
	}
}
