package secrets_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/secrets"
)

// fakeStore is an in-memory secrets.SecretStore with the same contract as the real one:
// keyset pagination by connection id and compare-and-set on the key id.
type fakeStore struct {
	mu      sync.Mutex
	rows    map[string]opencalico.SealedSecret
	rewraps int
	// beforeList, if set, runs at the start of every ListSealedSecrets call, unlocked.
	beforeList func(afterConnectionID string)
}

func newFakeStore() *fakeStore { return &fakeStore{rows: map[string]opencalico.SealedSecret{}} }

func cloneSecret(s opencalico.SealedSecret) opencalico.SealedSecret {
	s.WrappedKey = bytes.Clone(s.WrappedKey)
	s.Ciphertext = bytes.Clone(s.Ciphertext)
	return s
}

func (f *fakeStore) put(s opencalico.SealedSecret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows[s.ConnectionID] = cloneSecret(s)
}

func (f *fakeStore) get(connectionID string) opencalico.SealedSecret {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneSecret(f.rows[connectionID])
}

func (f *fakeStore) all() []opencalico.SealedSecret {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []opencalico.SealedSecret
	for _, id := range slices.Sorted(maps.Keys(f.rows)) {
		out = append(out, cloneSecret(f.rows[id]))
	}
	return out
}

func (f *fakeStore) ListSealedSecrets(ctx context.Context, after string, limit int) ([]opencalico.SealedSecret, error) {
	if f.beforeList != nil {
		f.beforeList(after)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []opencalico.SealedSecret
	for _, id := range slices.Sorted(maps.Keys(f.rows)) {
		if id > after && len(out) < limit {
			out = append(out, cloneSecret(f.rows[id]))
		}
	}
	return out, nil
}

func (f *fakeStore) RewrapSecret(ctx context.Context, connectionID, oldKeyID, newKeyID string, wrappedKey []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	row, ok := f.rows[connectionID]
	if !ok || row.KeyID != oldKeyID {
		return false, nil
	}
	row.KeyID, row.WrappedKey = newKeyID, bytes.Clone(wrappedKey)
	f.rows[connectionID] = row
	f.rewraps++
	return true, nil
}

func credsFor(connectionID string) map[string]string {
	return map[string]string{"api_key": "key-" + connectionID, "api_secret": "secret-" + connectionID}
}

func loadKeyFile(t testing.TB, path string) *secrets.Keyring {
	t.Helper()
	ring, _, err := secrets.LoadKeyring("", path, false)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func assertOpensAs(sealer *secrets.Sealer, sealed opencalico.SealedSecret) error {
	creds, err := sealer.OpenCredentials(sealed)
	if err != nil {
		return err
	}
	if want := credsFor(sealed.ConnectionID); !maps.Equal(creds, want) {
		return fmt.Errorf("connection %s opened to the wrong credentials", sealed.ConnectionID)
	}
	return nil
}

// TestRotateKeyFile rotates 1,000 secrets while a server (a reader and a writer, each with a
// Sealer loaded before the rotation) keeps working, then checks that every secret opens under
// the new key and that the old key is gone from the file.
func TestRotateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	ring, _, err := secrets.LoadKeyring("", path, true)
	if err != nil {
		t.Fatal(err)
	}
	oldKeyID := ring.PrimaryID()
	store := newFakeStore()
	sealer := secrets.NewSealer(ring)
	const n = 1000
	for i := range n {
		id := fmt.Sprintf("conn_%04d", i)
		sealed, err := sealer.SealCredentials(id, credsFor(id))
		if err != nil {
			t.Fatal(err)
		}
		store.put(sealed)
	}

	// The server's Sealers, loaded before the rotation starts.
	reader := secrets.NewSealer(loadKeyFile(t, path))
	writer := secrets.NewSealer(loadKeyFile(t, path))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, writes, readsUnderNewKey atomic.Int64
	wg.Go(func() { // reads keep working
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sealed := store.get(fmt.Sprintf("conn_%04d", i%n))
			if err := assertOpensAs(reader, sealed); err != nil {
				t.Errorf("read during rotation: %v", err)
				return
			}
			reads.Add(1)
			if sealed.KeyID != oldKeyID {
				readsUnderNewKey.Add(1)
			}
		}
	})
	wg.Go(func() { // new connections keep being linked
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("conn_w%05d", i)
			sealed, err := writer.SealCredentials(id, credsFor(id))
			if err != nil {
				t.Errorf("seal during rotation: %v", err)
				return
			}
			store.put(sealed)
			writes.Add(1)
			time.Sleep(100 * time.Microsecond)
		}
	})

	var progressCalls atomic.Int64
	var lastProgress secrets.RotationProgress
	report, err := secrets.Rotate(context.Background(), store, ring, secrets.RotateOptions{
		BatchSize:   64,
		GracePeriod: 30 * time.Millisecond,
		Progress: func(p secrets.RotationProgress) {
			progressCalls.Add(1)
			lastProgress = p
		},
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %+v; %d reads (%d under the new key), %d writes during the rotation; %d progress calls",
		report, reads.Load(), readsUnderNewKey.Load(), writes.Load(), progressCalls.Load())

	if report.NewKeyID == oldKeyID || report.NewKeyID == "" {
		t.Fatalf("new key id %q (old %q)", report.NewKeyID, oldKeyID)
	}
	if report.Rewrapped < n || report.Passes < 2 || report.Source != secrets.SourceFile || report.KeyFile != path {
		t.Errorf("report = %+v; want ≥ %d rewrapped, ≥ 2 passes, file %s", report, n, path)
	}
	if !slices.Equal(report.RetiredKeyIDs, []string{oldKeyID}) {
		t.Errorf("retired = %v, want [%s]", report.RetiredKeyIDs, oldKeyID)
	}
	if progressCalls.Load() < n/64 || lastProgress.Rewrapped != report.Rewrapped {
		t.Errorf("%d progress calls, last %+v; want ≥ %d and the final count", progressCalls.Load(), lastProgress, n/64)
	}
	if reads.Load() == 0 || readsUnderNewKey.Load() == 0 || writes.Load() == 0 {
		t.Errorf("the server did not work during the rotation: %d reads (%d under the new key), %d writes",
			reads.Load(), readsUnderNewKey.Load(), writes.Load())
	}

	// Only the new key is left in the file, still mode 0600.
	if ids := readKeyFile(t, path).ids(); !slices.Equal(ids, []string{report.NewKeyID}) {
		t.Errorf("key file ids = %v, want [%s]", ids, report.NewKeyID)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o", info.Mode().Perm())
	}
	// Every secret, old and newly written, is under the new key and opens with only that key.
	fresh := secrets.NewSealer(loadKeyFile(t, path))
	all := store.all()
	if len(all) != n+int(writes.Load()) {
		t.Errorf("%d secrets in the store, want %d", len(all), n+writes.Load())
	}
	for _, sealed := range all {
		if sealed.KeyID != report.NewKeyID {
			t.Errorf("connection %s is still under key %s", sealed.ConnectionID, sealed.KeyID)
		}
		if err := assertOpensAs(fresh, sealed); err != nil {
			t.Error(err)
		}
		if err := assertOpensAs(reader, sealed); err != nil {
			t.Errorf("pre-rotation sealer after the rotation: %v", err)
		}
	}
	// And the writer, which was loaded before the rotation, now seals under the new key.
	if sealed, err := writer.Seal("conn_after", []byte("x")); err != nil || sealed.KeyID != report.NewKeyID {
		t.Errorf("pre-rotation sealer seals under %s (%v), want %s", sealed.KeyID, err, report.NewKeyID)
	}
}

// TestRotatePassesAgainForLateOldKeySeals simulates a server that seals under the old key
// after the rotation has started (it had not reloaded the file yet) and stores it behind the
// scan's cursor: the next pass must catch it.
func TestRotatePassesAgainForLateOldKeySeals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	ring, _, err := secrets.LoadKeyring("", path, true)
	if err != nil {
		t.Fatal(err)
	}
	oldKey, err := base64.StdEncoding.DecodeString(readKeyFile(t, path).Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	staleServer := memorySealer(t, oldKey) // never reloads: it still has only the old key
	store := newFakeStore()
	for i := range 10 {
		id := fmt.Sprintf("conn_%02d", i)
		sealed, _ := staleServer.SealCredentials(id, credsFor(id))
		store.put(sealed)
	}
	var late sync.Once
	store.beforeList = func(after string) {
		if after == "" {
			return
		}
		late.Do(func() {
			sealed, err := staleServer.SealCredentials("conn_00late", credsFor("conn_00late"))
			if err != nil {
				t.Error(err)
			}
			store.put(sealed)
		})
	}

	report, err := secrets.Rotate(context.Background(), store, ring, secrets.RotateOptions{BatchSize: 3, GracePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Pass 1 re-wraps 10, pass 2 the late one, pass 3 finds none; after the grace, pass 4.
	if report.Rewrapped != 11 || report.Passes != 4 {
		t.Errorf("report = %+v, want 11 rewrapped in 4 passes", report)
	}
	fresh := secrets.NewSealer(loadKeyFile(t, path))
	for _, sealed := range store.all() {
		if sealed.KeyID != report.NewKeyID {
			t.Errorf("connection %s is still under key %s", sealed.ConnectionID, sealed.KeyID)
		}
		if err := assertOpensAs(fresh, sealed); err != nil {
			t.Error(err)
		}
	}
}

func TestRotateEnvKeys(t *testing.T) {
	std := base64.StdEncoding.EncodeToString
	oldRing, err := secrets.ParseEnvKeys(std(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	store := newFakeStore()
	oldSealer := secrets.NewSealer(oldRing)
	for i := range 50 {
		id := fmt.Sprintf("conn_%02d", i)
		sealed, _ := oldSealer.SealCredentials(id, credsFor(id))
		store.put(sealed)
	}
	// The operator sets "new,old" and restarts; a secret sealed since is under new already.
	ring, err := secrets.ParseEnvKeys(std(testKey(2)) + "," + std(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := secrets.NewSealer(ring).SealCredentials("conn_zz", credsFor("conn_zz"))
	store.put(sealed)

	report, err := secrets.Rotate(context.Background(), store, ring, secrets.RotateOptions{GracePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	if report.NewKeyID != ring.PrimaryID() || report.Rewrapped != 50 || report.Source != secrets.SourceEnv ||
		!slices.Equal(report.RetiredKeyIDs, []string{oldRing.PrimaryID()}) {
		t.Errorf("report = %+v, want 50 rewrapped to %s, %s retired", report, ring.PrimaryID(), oldRing.PrimaryID())
	}
	// The operator removes the old key: everything still opens.
	newOnly, err := secrets.ParseEnvKeys(std(testKey(2)))
	if err != nil {
		t.Fatal(err)
	}
	for _, sealed := range store.all() {
		if err := assertOpensAs(secrets.NewSealer(newOnly), sealed); err != nil {
			t.Error(err)
		}
	}
}

// TestRotateKeepsOldKeysOnFailure: a secret that cannot be re-wrapped stops the rotation
// before the old keys are dropped, so nothing becomes unreadable.
func TestRotateKeepsOldKeysOnFailure(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(ring *secrets.Keyring) opencalico.SealedSecret
		wantErr error
	}{
		{"under a key not in the keyring", func(*secrets.Keyring) opencalico.SealedSecret {
			s, _ := memorySealer(t, testKey(7)).Seal("conn_b", []byte("x"))
			return s
		}, secrets.ErrUnknownKey},
		{"tampered wrapped key", func(ring *secrets.Keyring) opencalico.SealedSecret {
			s, _ := secrets.NewSealer(ring).Seal("conn_b", []byte("x"))
			s.WrappedKey[30] ^= 1
			return s
		}, secrets.ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			ring, _, err := secrets.LoadKeyring("", path, true)
			if err != nil {
				t.Fatal(err)
			}
			store := newFakeStore()
			good, _ := secrets.NewSealer(ring).SealCredentials("conn_a", credsFor("conn_a"))
			store.put(good)
			store.put(tt.corrupt(ring))

			_, err = secrets.Rotate(context.Background(), store, ring, secrets.RotateOptions{GracePeriod: -1})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			ids := readKeyFile(t, path).ids()
			if len(ids) != 2 || ids[1] != ring.PrimaryID() {
				t.Errorf("key file ids = %v, want [new %s]", ids, ring.PrimaryID())
			}
			if err := assertOpensAs(secrets.NewSealer(loadKeyFile(t, path)), store.get("conn_a")); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRotateStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	ring, _, err := secrets.LoadKeyring("", path, true)
	if err != nil {
		t.Fatal(err)
	}
	store := newFakeStore()
	sealed, _ := secrets.NewSealer(ring).Seal("conn_a", []byte("x"))
	store.put(sealed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = secrets.Rotate(ctx, store, ring, secrets.RotateOptions{GracePeriod: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if ids := readKeyFile(t, path).ids(); len(ids) != 2 {
		t.Errorf("key file ids = %v, want the new and the old key", ids)
	}
}

// TestSealerFollowsKeyFile: a Sealer seals under the primary of the file as it is now, even
// when another process rewrote the file after the Sealer was made.
func TestSealerFollowsKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	ring, _, err := secrets.LoadKeyring("", path, true)
	if err != nil {
		t.Fatal(err)
	}
	sealer := secrets.NewSealer(ring)
	report, err := secrets.Rotate(context.Background(), newFakeStore(), loadKeyFile(t, path), secrets.RotateOptions{GracePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.Seal("conn_a", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if sealed.KeyID != report.NewKeyID {
		t.Errorf("sealed under %s, want the rotated primary %s", sealed.KeyID, report.NewKeyID)
	}
	if id, _ := sealer.PrimaryKeyID(); id != report.NewKeyID {
		t.Errorf("PrimaryKeyID = %s, want %s", id, report.NewKeyID)
	}
}
