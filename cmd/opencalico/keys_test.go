package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/pgtest"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

// TestKeysRotateWhileReading seals credentials into a real database, checks that no secret
// is stored in clear, then runs `opencalico keys rotate` while a reader (as a running server
// would) keeps opening secrets with a keyring loaded before the rotation. Every read must
// succeed, and afterwards every secret must open under the new key alone.
func TestKeysRotateWhileReading(t *testing.T) {
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.URL(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dataDir := t.TempDir()
			dbURL := b.url(t)
			db, err := store.Open(ctx, dbURL, dataDir)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			ring, created, err := secrets.LoadKeyring("", filepath.Join(dataDir, "master.key"), true)
			if err != nil || !created {
				t.Fatalf("LoadKeyring: created=%v err=%v", created, err)
			}
			oldKeyID := ring.PrimaryID()
			sealer := secrets.NewSealer(ring)
			user := &opencalico.User{Email: "rotate@example.com"}
			if err := db.CreateUser(ctx, user); err != nil {
				t.Fatal(err)
			}

			const n = 200
			want := map[string]map[string]string{}
			for i := range n {
				conn := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: user.ID, ProviderID: "binance",
					Type: opencalico.AuthAPIKey, Fingerprint: fmt.Sprintf("fp-%d", i)}
				creds := map[string]string{"api_key": fmt.Sprintf("APIKEY%06dX", i), "secret_key": fmt.Sprintf("TOPSECRET%06dZ", i)}
				sealed, err := sealer.SealCredentials(conn.ID, creds)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.CreateConnection(ctx, conn, &sealed); err != nil {
					t.Fatal(err)
				}
				want[conn.ID] = creds
			}
			// Tables only here: reading the SQLite files from this process would open and close
			// its own descriptors of them, which drops this process's POSIX locks on them (a
			// property of POSIX locks that SQLite cannot guard against) and so confuses the
			// other process's view of who has the database open. The files are read at the end,
			// after the store is closed.
			assertNoSecretInTables(t, db, want)

			// The reader plays a server that loaded its keyring before the rotation.
			var reads, failures atomic.Int64
			var firstFailure atomic.Value
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					for id, creds := range want {
						select {
						case <-stop:
							return
						default:
						}
						sealed, err := db.Secret(ctx, id)
						if err == nil {
							var got map[string]string
							got, err = sealer.OpenCredentials(sealed)
							if err == nil && got["secret_key"] != creds["secret_key"] {
								err = fmt.Errorf("secret of %s changed", id)
							}
						}
						if err != nil {
							failures.Add(1)
							firstFailure.CompareAndSwap(nil, err.Error())
						}
						reads.Add(1)
					}
				}
			}()

			cmd := exec.Command(binary(t), "keys", "rotate", "--data-dir", dataDir, "--grace", "500ms")
			cmd.Env = append(os.Environ(), "OPENCALICO_DATABASE_URL="+dbURL)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			time.Sleep(100 * time.Millisecond) // a few reads after the old key left the file
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatalf("keys rotate: %v\n%s", err, stderr.String())
			}
			var report struct {
				NewKeyID  string   `json:"new_key_id"`
				Retired   []string `json:"retired_key_ids"`
				Rewrapped int      `json:"rewrapped"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
				t.Fatalf("report %q: %v", stdout.String(), err)
			}
			if report.Rewrapped != n || report.NewKeyID == oldKeyID || len(report.Retired) != 1 || report.Retired[0] != oldKeyID {
				t.Fatalf("report %+v (old key %s)", report, oldKeyID)
			}
			if f := failures.Load(); f > 0 {
				t.Fatalf("%d of %d reads failed during the rotation, first: %v", f, reads.Load(), firstFailure.Load())
			}
			if reads.Load() < n {
				t.Fatalf("only %d reads happened during the rotation", reads.Load())
			}

			fresh, _, err := secrets.LoadKeyring("", filepath.Join(dataDir, "master.key"), false)
			if err != nil {
				t.Fatal(err)
			}
			if ids := fresh.IDs(); len(ids) != 1 || ids[0] != report.NewKeyID {
				t.Fatalf("key file holds %v, want only %s", ids, report.NewKeyID)
			}
			freshSealer := secrets.NewSealer(fresh)
			for id, creds := range want {
				sealed, err := db.Secret(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if sealed.KeyID != report.NewKeyID {
					t.Fatalf("%s still wrapped under %s", id, sealed.KeyID)
				}
				got, err := freshSealer.OpenCredentials(sealed)
				if err != nil || got["secret_key"] != creds["secret_key"] || got["api_key"] != creds["api_key"] {
					t.Fatalf("%s after rotation: %v %v", id, got, err)
				}
			}
			assertNoSecretInTables(t, db, want)
			if db.Dialect() == store.SQLite {
				db.Close()
				assertNoSecretInFiles(t, dataDir, want)
			}
		})
	}
}

// secretNeedles are the credential values that must never be found in clear.
func secretNeedles(creds map[string]map[string]string) [][]byte {
	var needles [][]byte
	for _, c := range creds {
		for _, v := range c {
			needles = append(needles, []byte(v))
		}
	}
	return needles
}

// assertNoSecretInTables reads every row of every table and fails if any credential value
// appears in it.
func assertNoSecretInTables(t *testing.T, db *store.Store, creds map[string]map[string]string) {
	t.Helper()
	ctx := context.Background()
	needles := secretNeedles(creds)
	check := func(where string, hay []byte) {
		for _, nd := range needles {
			if bytes.Contains(hay, nd) {
				t.Fatalf("a credential is stored in clear in %s", where)
			}
		}
	}
	listTables := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	if db.Dialect() == store.SQLite {
		listTables = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	rows, err := db.DB().QueryContext(ctx, listTables)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("found only tables %v", tables)
	}
	for _, table := range tables {
		dumpTable(t, db.DB(), table, check)
	}
}

// assertNoSecretInFiles reads the SQLite files themselves (database, WAL) and fails if any
// credential value appears in their bytes.
func assertNoSecretInFiles(t *testing.T, dataDir string, creds map[string]map[string]string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "*.db*"))
	if len(files) == 0 {
		t.Fatal("no SQLite files found to scan")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range secretNeedles(creds) {
			if bytes.Contains(data, nd) {
				t.Fatalf("a credential is stored in clear in %s", f)
			}
		}
	}
}

func dumpTable(t *testing.T, db *sql.DB, table string, check func(string, []byte)) {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM "` + table + `"`)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var b []byte
			switch x := v.(type) {
			case []byte:
				b = x
			case string:
				b = []byte(x)
			default:
				b = []byte(fmt.Sprint(x))
			}
			check(table+"."+cols[i], b)
		}
	}
}
