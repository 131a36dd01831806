// Package pgtest gives tests a fresh, empty PostgreSQL database each.
//
// With OPENCALICO_TEST_DATABASE_URL set to the admin URL of a running server, each database is
// created there and dropped after the test. Without it, the first call starts a throwaway
// cluster from the PostgreSQL binaries installed on the machine (found under
// /usr/lib/postgresql/*/bin, or through PG_BIN), which pgtest.Main stops after the run.
//
// A test that cannot get a database fails; it is never skipped, so that a missing PostgreSQL
// cannot pass for a green suite.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// EnvAdminURL names the environment variable holding the admin URL of a running server.
const EnvAdminURL = "OPENCALICO_TEST_DATABASE_URL"

var (
	mainRunning bool // set by Main: a started cluster will be stopped

	clusterOnce sync.Once
	clusterURL  string
	clusterErr  error
	clusterStop func()
)

// Main runs the tests of a package and then stops the cluster pgtest may have started. Call it
// from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	mainRunning = true
	code := m.Run()
	if clusterStop != nil {
		clusterStop()
	}
	os.Exit(code)
}

// URL returns the URL of a new, empty database for this test, dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	dbURL, drop, err := NewDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: dropping test database: %v", err)
		}
	})
	return dbURL
}

// NewDatabase creates a new, empty database and returns its URL and a function that drops it.
// It is for callers whose database must outlive one test (a benchmark's data set); tests use URL.
func NewDatabase(ctx context.Context) (dbURL string, drop func() error, err error) {
	admin, err := adminURL()
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	name := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, fmt.Errorf("opening admin connection: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("parsing admin URL: %w", err)
	}
	u.Path = "/" + name
	drop = func() error {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return err
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections a test left open, which would otherwise block the drop.
		_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}

// adminURL returns the URL of a database on a server where databases may be created.
func adminURL() (string, error) {
	if u := os.Getenv(EnvAdminURL); u != "" {
		return u, nil
	}
	clusterOnce.Do(func() {
		if !mainRunning {
			clusterErr = errors.New("no " + EnvAdminURL + " and pgtest.Main is not in TestMain: " +
				"a throwaway cluster would outlive the tests; add func TestMain(m *testing.M) { pgtest.Main(m) }")
			return
		}
		clusterURL, clusterStop, clusterErr = startCluster()
	})
	if clusterErr != nil {
		return "", fmt.Errorf("no PostgreSQL for tests (set %s to an admin URL, or install PostgreSQL): %w", EnvAdminURL, clusterErr)
	}
	return clusterURL, nil
}

// binDir finds the directory of initdb and pg_ctl: PG_BIN, else the newest
// /usr/lib/postgresql/*/bin, else the PATH.
func binDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("initdb not found (set PG_BIN)")
}

func majorOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// startCluster initializes and starts a cluster in a temporary directory, on a free port, with
// durability off (fsync=off) since its data is thrown away.
func startCluster() (adminURL string, stop func(), err error) {
	bin, err := binDir()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return "", nil, err
	}
	// initdb refuses to run as root: run the server as the postgres user, in a directory it owns.
	var asUser []string
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(name string, args ...string) error {
		argv := append(append(cloneStrings(asUser), filepath.Join(bin, name)), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-A", "trust", "-U", "app", "--no-sync", "-E", "UTF8"); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "+
		"-c full_page_writes=off -c max_connections=200", port, dir)
	if err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start", "-o", opts); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop = func() {
		_ = run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	return fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres?sslmode=disable", port), stop, nil
}

func cloneStrings(s []string) []string { return append([]string(nil), s...) }

// freePort asks the kernel for a free TCP port. Another process could take it before the
// server binds it; pg_ctl then fails and says so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
