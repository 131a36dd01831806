package connections

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a fingerprint key.
const KeySize = 32

// LoadKey returns the install's fingerprint key: envValue (base64 of at least 32 bytes) when
// it is set, else the key in the file at path, which is made (mode 0600) when it does not
// exist and create is true. The key must be the same for every process of a deployment (set
// the variable, or share the file) and must never change: a new key makes the fingerprints
// of existing connections unknown, so their keys could be linked a second time.
func LoadKey(envValue, path string, create bool) (key []byte, created bool, err error) {
	if envValue != "" {
		key, err := decodeKey(envValue)
		if err != nil {
			return nil, false, fmt.Errorf("the fingerprint key variable: %w", err)
		}
		return key, false, nil
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := decodeKey(string(data))
		if err != nil {
			return nil, false, fmt.Errorf("fingerprint key file %s: %w", path, err)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("fingerprint key file: %w", err)
	case !create:
		return nil, false, fmt.Errorf("no fingerprint key: set OPENCALICO_FINGERPRINT_KEY (base64 of %d random bytes) or create %s", KeySize, path)
	}
	key = make([]byte, KeySize)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("fingerprint key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: use theirs.
		return LoadKey("", path, false)
	} else if err != nil {
		return nil, false, fmt.Errorf("fingerprint key file: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(path)
		return nil, false, fmt.Errorf("fingerprint key file: %w", err)
	}
	return key, true, nil
}

// decodeKey reads base64 (standard or URL alphabet, padded or not). Its errors never quote
// the value.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) < KeySize {
				return nil, fmt.Errorf("the key has %d bytes; it needs at least %d", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("the key is not base64")
}
