package secrets_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencalico/opencalico/secrets"
)

// keyFile is the key file format, as an operator (or this test) would read it.
type keyFile struct {
	Version int `json:"version"`
	Keys    []struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	} `json:"keys"`
}

func readKeyFile(t *testing.T, path string) keyFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f keyFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f keyFile) ids() []string {
	var ids []string
	for _, k := range f.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func TestParseEnvKeys(t *testing.T) {
	k1, k2, k3 := testKey(1), testKey(2), testKey(3)
	id := func(key []byte) string {
		ring, err := secrets.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		return ring.PrimaryID()
	}
	std := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		value   string
		wantIDs []string
		wantErr error
	}{
		{"standard", std(k1), []string{id(k1)}, nil},
		{"standard unpadded", base64.RawStdEncoding.EncodeToString(k1), []string{id(k1)}, nil},
		{"url", base64.URLEncoding.EncodeToString(k1), []string{id(k1)}, nil},
		{"url unpadded", base64.RawURLEncoding.EncodeToString(k1), []string{id(k1)}, nil},
		{"surrounding spaces", "  " + std(k1) + "\n", []string{id(k1)}, nil},
		{"list primary first", std(k2) + "," + std(k1), []string{id(k2), id(k1)}, nil},
		{"list of three with spaces", std(k3) + " , " + std(k1) + ", " + std(k2), []string{id(k3), id(k1), id(k2)}, nil},
		{"not base64", "this is not base64!", nil, secrets.ErrInvalidMasterKey},
		{"16 bytes", std(k1[:16]), nil, secrets.ErrInvalidMasterKey},
		{"hex instead of base64", "f9f0e7de" + strings.Repeat("00", 28), nil, secrets.ErrInvalidMasterKey},
		{"empty item", std(k1) + ",," + std(k2), nil, secrets.ErrInvalidMasterKey},
		{"trailing comma", std(k1) + ",", nil, secrets.ErrInvalidMasterKey},
		{"duplicate", std(k1) + "," + base64.RawURLEncoding.EncodeToString(k1), nil, secrets.ErrInvalidMasterKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring, err := secrets.ParseEnvKeys(tt.value)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), secrets.MasterKeyEnv) {
					t.Errorf("error %q does not name %s", err, secrets.MasterKeyEnv)
				}
				assertNoSecret(t, err.Error(), "", k1, k2, k3)
				for _, item := range strings.Split(tt.value, ",") {
					if len(item) > 8 && strings.Contains(err.Error(), strings.TrimSpace(item)) {
						t.Errorf("error %q repeats the configured value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ring.IDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("IDs = %v, want %v", got, tt.wantIDs)
			}
			if ring.PrimaryID() != tt.wantIDs[0] || ring.Source() != secrets.SourceEnv {
				t.Errorf("primary %s source %s, want %s env", ring.PrimaryID(), ring.Source(), tt.wantIDs[0])
			}
		})
	}
}

func TestKeyIDsAreShortHexAndDistinct(t *testing.T) {
	ring, err := secrets.NewKeyring(testKey(1), testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	ids := ring.IDs()
	for _, id := range ids {
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Errorf("key id %q is not 16 hex digits", id)
		}
	}
	if ids[0] == ids[1] {
		t.Error("two keys have the same id")
	}
}

func TestLoadKeyringCreatesKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "master.key") // the directory does not exist yet
	ring, created, err := secrets.LoadKeyring("", path, true)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new key file")
	}
	if ring.Source() != secrets.SourceFile || ring.Path() != path {
		t.Errorf("source %s path %s, want file %s", ring.Source(), ring.Path(), path)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", info.Mode().Perm())
	}
	if f := readKeyFile(t, path); f.Version != 1 || !slices.Equal(f.ids(), ring.IDs()) {
		t.Errorf("key file = version %d ids %v, want version 1 ids %v", f.Version, f.ids(), ring.IDs())
	}
	sealed, err := secrets.NewSealer(ring).Seal("conn_a", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}

	// Reloaded: same key, not created again, and it opens what the first one sealed.
	again, created, err := secrets.LoadKeyring("", path, true)
	if err != nil {
		t.Fatal(err)
	}
	if created || again.PrimaryID() != ring.PrimaryID() {
		t.Errorf("reload: created %v primary %s, want false %s", created, again.PrimaryID(), ring.PrimaryID())
	}
	if got, err := secrets.NewSealer(again).Open(sealed); err != nil || string(got) != "secret" {
		t.Errorf("reloaded keyring: Open = %q, %v", got, err)
	}
	if _, _, err := secrets.LoadKeyring("", path, false); err != nil {
		t.Errorf("LoadKeyring of an existing file without create: %v", err)
	}
}

func TestLoadKeyringConcurrentCreateMakesOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		created  int
		primarys = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			ring, c, err := secrets.LoadKeyring("", path, true)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if c {
				created++
			}
			primarys[ring.PrimaryID()] = true
		})
	}
	wg.Wait()
	if created != 1 || len(primarys) != 1 {
		t.Errorf("%d processes created the key file, %d distinct keys; want 1 and 1", created, len(primarys))
	}
}

func TestLoadKeyringRefusesAccessibleKeyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits")
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o602} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if _, _, err := secrets.LoadKeyring("", path, true); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := secrets.LoadKeyring("", path, true)
			if !errors.Is(err, secrets.ErrKeyFilePermissions) {
				t.Fatalf("err = %v, want ErrKeyFilePermissions", err)
			}
			if !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("error %q does not tell the operator how to fix it", err)
			}
		})
	}
}

func TestLoadKeyringMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	for _, p := range []string{path, ""} {
		_, created, err := secrets.LoadKeyring("", p, false)
		if !errors.Is(err, secrets.ErrNoMasterKey) || created {
			t.Fatalf("LoadKeyring(%q) = created %v, %v; want ErrNoMasterKey", p, created, err)
		}
		if !strings.Contains(err.Error(), secrets.MasterKeyEnv) || !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say what to configure", err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadKeyring without create made a file: %v", err)
	}
}

func TestLoadKeyringEnvWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := secrets.LoadKeyring("", path, true); err != nil {
		t.Fatal(err)
	}
	envRing, err := secrets.NewKeyring(testKey(9))
	if err != nil {
		t.Fatal(err)
	}
	ring, created, err := secrets.LoadKeyring(base64.StdEncoding.EncodeToString(testKey(9)), path, true)
	if err != nil {
		t.Fatal(err)
	}
	if created || ring.Source() != secrets.SourceEnv || ring.PrimaryID() != envRing.PrimaryID() {
		t.Errorf("got source %s primary %s created %v; want env %s false", ring.Source(), ring.PrimaryID(), created, envRing.PrimaryID())
	}
}

func TestLoadKeyringRejectsBadKeyFile(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(testKey(1))
	good, err := secrets.NewKeyring(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, content string }{
		{"not json", `{"version":1,"keys":[` + key},
		{"misspelt field", `{"version":1,"kyes":[{"id":"` + good.PrimaryID() + `","key":"` + key + `"}]}`},
		{"no keys", `{"version":1,"keys":[]}`},
		{"wrong version", `{"version":2,"keys":[{"id":"` + good.PrimaryID() + `","key":"` + key + `"}]}`},
		{"id does not match key", `{"version":1,"keys":[{"id":"0000000000000000","key":"` + key + `"}]}`},
		{"key not base64", `{"version":1,"keys":[{"id":"` + good.PrimaryID() + `","key":"` + key[:10] + `!!"}]}`},
		{"short key", `{"version":1,"keys":[{"id":"` + good.PrimaryID() + `","key":"` + key[:20] + `"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := secrets.LoadKeyring("", path, true)
			if err == nil {
				t.Fatal("a bad key file loaded")
			}
			assertNoSecret(t, err.Error(), key[:10], testKey(1))
			if f, _ := os.ReadFile(path); string(f) != tt.content {
				t.Error("LoadKeyring with create overwrote a bad key file")
			}
		})
	}
}
