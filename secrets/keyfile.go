package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// keyFileVersion is the version of the key file format this package writes and reads.
const keyFileVersion = 1

// maxKeyFileSize bounds what loadKeyFile reads: a key file holds a handful of keys.
const maxKeyFileSize = 1 << 20

const keyFileComment = "opencalico master keys, primary first. Keep this file secret (mode 0600) and backed up: " +
	"without it no stored credential can be opened."

// keyFileJSON is the key file format. JSON rather than a bare key so that a file can hold the
// new and the old keys during a rotation, and say when each was made.
type keyFileJSON struct {
	Version int              `json:"version"`
	Comment string           `json:"comment,omitempty"`
	Keys    []keyFileKeyJSON `json:"keys"`
}

type keyFileKeyJSON struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"` // base64.StdEncoding
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// loadKeyFile reads and checks a key file. The error wraps os.ErrNotExist if there is none.
func loadKeyFile(path string) (*Keyring, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err) // *PathError names the path
	}
	defer f.Close()
	// Stat the open file, not the path: the stamp must describe the bytes we read even if a
	// rotation renames a new file into place meanwhile.
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := checkKeyFileMode(abs, info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file %s: larger than %d bytes", abs, maxKeyFileSize)
	}
	keys, err := parseKeyFile(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", abs, err)
	}
	ring := &Keyring{keys: keys, source: SourceFile, path: abs, stamp: info}
	if err := ring.validate(); err != nil {
		return nil, fmt.Errorf("key file %s: %w", abs, err)
	}
	return ring, nil
}

// checkKeyFileMode refuses a key file that group or others can access: the master key opens
// every credential, so a world-readable file is a leak waiting to happen, and failing loudly
// at start-up is the only moment the operator is sure to notice.
func checkKeyFileMode(path string, info os.FileInfo) error {
	if !info.Mode().IsRegular() {
		return fmt.Errorf("key file %s: not a regular file", path)
	}
	if runtime.GOOS == "windows" { // permission bits are not meaningful there
		return nil
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; restrict it with: chmod 600 %s",
			ErrKeyFilePermissions, path, perm, path)
	}
	return nil
}

// parseKeyFile decodes a key file. Errors name key positions and ids, never key material: a
// json.SyntaxError only carries an offset, and base64 errors are replaced.
func parseKeyFile(data []byte) ([]*masterKey, error) {
	var file keyFileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt "keys" must not load as an empty key file
	if err := dec.Decode(&file); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("%w: not valid JSON (at byte %d)", ErrInvalidMasterKey, syntax.Offset)
		}
		return nil, fmt.Errorf("%w: not a key file: %v", ErrInvalidMasterKey, err)
	}
	if file.Version != keyFileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrInvalidMasterKey, file.Version, keyFileVersion)
	}
	if len(file.Keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrNoMasterKey)
	}
	keys := make([]*masterKey, 0, len(file.Keys))
	for i, k := range file.Keys {
		raw, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d (id %q): not base64", ErrInvalidMasterKey, i+1, k.ID)
		}
		m, err := newMasterKey(raw, k.CreatedAt)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d (id %q): %w", i+1, k.ID, err)
		}
		if m.id != k.ID {
			return nil, fmt.Errorf("%w: key %d: id %q does not match its key (the file is corrupt or was edited)",
				ErrInvalidMasterKey, i+1, k.ID)
		}
		keys = append(keys, m)
	}
	return keys, nil
}

func encodeKeyFile(keys []*masterKey) ([]byte, error) {
	file := keyFileJSON{Version: keyFileVersion, Comment: keyFileComment}
	for _, m := range keys {
		file.Keys = append(file.Keys, keyFileKeyJSON{
			ID: m.id, Key: base64.StdEncoding.EncodeToString(m.key[:]), CreatedAt: m.createdAt,
		})
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// writeKeyFile replaces the key file atomically: readers see the old file or the new one,
// never a partial one, which is what lets servers reload it while a rotation runs.
func writeKeyFile(path string, keys []*masterKey) error {
	tmp, err := writeTempKeyFile(path, keys)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("key file: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// createKeyFile writes the key file only if none exists, so that two processes starting at
// once cannot each create a key and have one overwrite the other (which would leave secrets
// sealed under a key that is lost). It reports whether this call created the file.
func createKeyFile(path string, keys []*masterKey) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("key file directory: %w", err)
	}
	tmp, err := writeTempKeyFile(path, keys)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	// A hard link fails if the target exists: an atomic create-exclusive with full contents.
	err = os.Link(tmp, path)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrExist):
		return false, nil
	default:
		// Some file systems have no hard links; a rename is atomic too, only not exclusive.
		if _, statErr := os.Lstat(path); statErr == nil {
			return false, nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return false, fmt.Errorf("key file: %w", err)
		}
	}
	syncDir(filepath.Dir(path))
	return true, nil
}

// writeTempKeyFile writes the keys to a new mode-0600 file next to path and returns its name.
func writeTempKeyFile(path string, keys []*masterKey) (string, error) {
	data, err := encodeKeyFile(keys)
	if err != nil {
		return "", fmt.Errorf("key file: encode: %w", err)
	}
	defer clear(data)
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("key file: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("key file: %w", err)
	}
	// CreateTemp already uses 0600; say it explicitly, the mode is part of the contract.
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("key file: %w", err)
	}
	return tmp, nil
}

// syncDir makes a rename durable. Failure is ignored: not every platform can sync a directory,
// and the rename itself has already succeeded.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// sameFile reports whether a and b describe the same version of a file. The key file is only
// ever replaced by rename, which gives it a new inode, so the identity check catches every
// rewrite even when modification time and size happen to be equal.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
