package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencalico/opencalico/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// binary builds the command once per test run.
var binaryPath string

func binary(t *testing.T) string {
	t.Helper()
	if binaryPath != "" {
		return binaryPath
	}
	dir, err := os.MkdirTemp("", "opencalico-bin")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "opencalico")
	out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	binaryPath = path
	return path
}

// server is a running `opencalico serve` process.
type server struct {
	cmd  *exec.Cmd
	base string
	logs chan map[string]any
	done chan error
}

// startServe runs `opencalico serve` on a free port and waits until it logs that it listens.
func startServe(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: make(chan map[string]any, 1000), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				line = map[string]any{"msg": "unparsed", "text": sc.Text()}
			}
			s.logs <- line
		}
		close(s.logs)
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-s.logs:
			if !ok {
				t.Fatal("server exited before listening")
			}
			if line["msg"] == "listening" {
				s.base = "http://" + line["addr"].(string)
				return s
			}
			if line["level"] == "ERROR" || line["msg"] == "unparsed" {
				t.Logf("server: %v", line)
			}
		case <-deadline:
			t.Fatal("server did not listen within 60s")
		}
	}
}

func (s *server) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	res, err := http.Get(s.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// stop sends SIGTERM and checks the server shuts down cleanly, logging that it stopped.
func (s *server) stop(t *testing.T) []map[string]any {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []map[string]any
	for line := range s.logs {
		rest = append(rest, line)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; logs %v", err, rest)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	return rest
}

func TestServe(t *testing.T) {
	backends := []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{"sqlite", func(*testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { return []string{"OPENCALICO_DATABASE_URL=" + pgtest.URL(t)} }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := startServe(t, b.env(t), "--data-dir", dataDir)

			for _, path := range []string{"/healthz", "/readyz"} {
				if status, body := s.get(t, path); status != 200 {
					t.Fatalf("%s: %d %s", path, status, body)
				}
			}
			status, body := s.get(t, "/openapi.json")
			var doc struct {
				OpenAPI string         `json:"openapi"`
				Paths   map[string]any `json:"paths"`
			}
			if status != 200 || json.Unmarshal(body, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") || len(doc.Paths) == 0 {
				t.Fatalf("/openapi.json: %d, openapi %q, %d paths", status, doc.OpenAPI, len(doc.Paths))
			}
			if status, body := s.get(t, "/docs"); status != 200 || !strings.Contains(string(body), "/accounts/v2/transactions") {
				t.Fatalf("/docs: %d", status)
			}
			if status, _ := s.get(t, "/metrics"); status != 200 {
				t.Fatalf("/metrics: %d", status)
			}

			fi, err := os.Stat(filepath.Join(dataDir, "master.key"))
			if err != nil {
				t.Fatalf("no master key file: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("master key file mode %v, want 0600", fi.Mode().Perm())
			}
			rest := s.stop(t)
			stopped := false
			for _, l := range rest {
				stopped = stopped || l["msg"] == "stopped"
			}
			if !stopped {
				t.Fatalf("no 'stopped' log after SIGTERM: %v", rest)
			}

			// A second start reuses the key file instead of making another.
			s = startServe(t, b.env(t), "--data-dir", dataDir)
			fi2, _ := os.Stat(filepath.Join(dataDir, "master.key"))
			if !os.SameFile(fi, fi2) && fi2.ModTime() != fi.ModTime() {
				t.Fatal("the master key file was rewritten on the second start")
			}
			s.stop(t)
		})
	}
}

func TestProductionRefusesToInventAKey(t *testing.T) {
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0", "--env", "production", "--data-dir", t.TempDir())
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve started in production without a key: %s", out)
	}
	if !strings.Contains(string(out), "OPENCALICO_MASTER_KEY") {
		t.Fatalf("the error does not tell the operator what to set: %s", out)
	}
}

func TestMigrateStatusAndVersion(t *testing.T) {
	dataDir := t.TempDir()
	out, err := exec.Command(binary(t), "migrate", "status", "--data-dir", dataDir).Output()
	if err != nil {
		t.Fatalf("migrate status: %v", err)
	}
	var before struct {
		Migrations []struct {
			Version int64 `json:"version"`
			Applied bool  `json:"applied"`
		} `json:"migrations"`
	}
	if err := json.Unmarshal(out, &before); err != nil || len(before.Migrations) == 0 {
		t.Fatalf("migrate status output %q: %v", out, err)
	}
	for _, m := range before.Migrations {
		if m.Applied {
			t.Fatalf("migration %d applied on a new database", m.Version)
		}
	}
	out, err = exec.Command(binary(t), "migrate", "up", "--data-dir", dataDir).Output()
	if err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	var after struct {
		Migrations []struct {
			Applied bool `json:"applied"`
		} `json:"migrations"`
	}
	if err := json.Unmarshal(out, &after); err != nil || len(after.Migrations) != len(before.Migrations) {
		t.Fatalf("migrate up output %q: %v", out, err)
	}
	for _, m := range after.Migrations {
		if !m.Applied {
			t.Fatalf("migration pending after migrate up: %s", out)
		}
	}
	out, err = exec.Command(binary(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "opencalico ") {
		t.Fatalf("version: %q %v", out, err)
	}
	cmd := exec.Command(binary(t), "serve", "-h")
	help, _ := cmd.CombinedOutput()
	for _, want := range []string{"OPENCALICO_ADDR", "OPENCALICO_DATA_DIR", "OPENCALICO_DATABASE_URL", "OPENCALICO_MASTER_KEY_FILE", "OPENCALICO_MASTER_KEY\n"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("serve -h does not mention %s", want)
		}
	}
}
