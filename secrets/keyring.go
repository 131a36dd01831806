package secrets

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// MasterKeyEnv is the environment variable that holds the master keys.
const MasterKeyEnv = "OPENCALICO_MASTER_KEY"

// KeySize is the size of a master key and of a data key, in bytes.
const KeySize = chacha20poly1305.KeySize

// keyIDPrefix separates key ids from any other hash of the same key.
const keyIDPrefix = "opencalico/master-key-id/v1\x00"

// Errors of the keyring. Each is wrapped with the detail an operator needs.
var (
	// ErrNoMasterKey means neither OPENCALICO_MASTER_KEY nor a key file provides a key.
	ErrNoMasterKey = errors.New("no master key configured")
	// ErrInvalidMasterKey means a configured key is malformed (bad base64, wrong length, …).
	ErrInvalidMasterKey = errors.New("invalid master key")
	// ErrKeyFilePermissions means the key file is accessible by group or others.
	ErrKeyFilePermissions = errors.New("key file is accessible by group or others")
)

// KeySource says where a keyring's keys came from. It decides how rotation works: keys from a
// file are rotated in the file; keys from the environment can only be rotated by the operator.
type KeySource string

// The key sources.
const (
	SourceEnv    KeySource = "env"    // OPENCALICO_MASTER_KEY
	SourceFile   KeySource = "file"   // a key file
	SourceMemory KeySource = "memory" // NewKeyring, for tests and embedding
)

// masterKey is one master key. It formats as its id only, and Keyring formats as its key ids,
// so that printing either by mistake never shows a key: without these methods %v, %+v and
// %#v all reach into unexported fields.
type masterKey struct {
	id        string
	key       [KeySize]byte
	aead      cipher.AEAD
	createdAt time.Time
}

func (m masterKey) Format(f fmt.State, verb rune) { fmt.Fprintf(f, "masterKey(%s)", m.id) }

func newMasterKey(key []byte, createdAt time.Time) (*masterKey, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidMasterKey, len(key), KeySize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMasterKey, err)
	}
	m := &masterKey{id: keyID(key), aead: aead, createdAt: createdAt}
	copy(m.key[:], key)
	return m, nil
}

// keyID derives a master key's public id: the first 8 bytes of SHA-256 over a
// domain-separation prefix and the key, in hex. A hash of a 256-bit random key reveals nothing
// about it, and deriving the id (rather than choosing it) means a key file whose id and key
// disagree is detected as corrupt.
func keyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte(keyIDPrefix))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// GenerateMasterKey returns a new random master key, for `keys generate` style commands that
// print one for OPENCALICO_MASTER_KEY (base64.StdEncoding is the expected encoding).
func GenerateMasterKey() []byte {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails since Go 1.24; it crashes the program instead
	return key
}

// Keyring is an immutable set of master keys, primary first. New secrets are sealed under the
// primary; any key in the ring opens. A Sealer swaps whole keyrings when the key file
// changes, which is why a Keyring itself never changes.
type Keyring struct {
	keys   []*masterKey // primary first
	source KeySource
	path   string      // the absolute key file path, for SourceFile
	stamp  os.FileInfo // the key file as it was when read, for SourceFile
}

// NewKeyring returns an in-memory keyring of the given 32-byte keys, primary first.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	ring := &Keyring{source: SourceMemory}
	for i, key := range keys {
		m, err := newMasterKey(key, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		ring.keys = append(ring.keys, m)
	}
	if err := ring.validate(); err != nil {
		return nil, err
	}
	return ring, nil
}

// validate checks that the ring has a key and no key twice.
func (k *Keyring) validate() error {
	if len(k.keys) == 0 {
		return fmt.Errorf("%w: the keyring is empty", ErrNoMasterKey)
	}
	for i, m := range k.keys {
		for j := range i {
			if k.keys[j].id == m.id {
				return fmt.Errorf("%w: key %d is the same as key %d (id %s)", ErrInvalidMasterKey, i+1, j+1, m.id)
			}
		}
	}
	return nil
}

// PrimaryID returns the id of the key new secrets are sealed under.
func (k *Keyring) PrimaryID() string { return k.keys[0].id }

// IDs returns the ids of all keys, primary first.
func (k *Keyring) IDs() []string {
	ids := make([]string, len(k.keys))
	for i, m := range k.keys {
		ids[i] = m.id
	}
	return ids
}

// Has reports whether the ring holds the key with the given id.
func (k *Keyring) Has(id string) bool { return k.key(id) != nil }

// Source says where the keys came from.
func (k *Keyring) Source() KeySource { return k.source }

// Path returns the absolute key file path for a keyring loaded from a file, else "".
func (k *Keyring) Path() string { return k.path }

// Format prints the keyring without its keys, whatever the verb. It has a value receiver so
// that a Keyring value is covered as well as a pointer.
func (k Keyring) Format(f fmt.State, verb rune) {
	where := string(k.source)
	if k.path != "" {
		where += " " + k.path
	}
	fmt.Fprintf(f, "Keyring(%s, keys %s)", where, strings.Join(k.IDs(), ","))
}

func (k *Keyring) primary() *masterKey { return k.keys[0] }

func (k *Keyring) key(id string) *masterKey {
	for _, m := range k.keys {
		if m.id == id {
			return m
		}
	}
	return nil
}

// withKeys returns a keyring of the same source and path with other keys.
func (k *Keyring) withKeys(keys []*masterKey) *Keyring {
	return &Keyring{keys: slices.Clone(keys), source: k.source, path: k.path}
}

// ParseEnvKeys parses the value of OPENCALICO_MASTER_KEY: one base64 (standard or URL
// alphabet, padded or not) 32-byte key, or a comma-separated list of them, primary first.
//
// A list is how env-var keys are rotated: set "new,old", restart the servers so they seal
// under new and still open old, run `keys rotate`, then remove old. Errors say which item is
// wrong, never what it contains.
func ParseEnvKeys(value string) (*Keyring, error) {
	ring := &Keyring{source: SourceEnv}
	for i, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%s: %w: item %d is empty", MasterKeyEnv, ErrInvalidMasterKey, i+1)
		}
		key, err := decodeKey(item)
		if err != nil {
			return nil, fmt.Errorf("%s: item %d: %w", MasterKeyEnv, i+1, err)
		}
		m, err := newMasterKey(key, time.Time{})
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("%s: item %d: %w", MasterKeyEnv, i+1, err)
		}
		ring.keys = append(ring.keys, m)
	}
	if err := ring.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", MasterKeyEnv, err)
	}
	return ring, nil
}

// decodeKey decodes a base64 key in any of the four common variants, because operators paste
// keys from `openssl rand -base64 32` as often as from URL-safe generators.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				clear(key)
				return nil, fmt.Errorf("%w: decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)",
					ErrInvalidMasterKey, len(key), KeySize)
			}
			return key, nil
		}
	}
	// The decoder's error names the offending byte and its position: not worth the risk.
	return nil, fmt.Errorf("%w: not base64 (generate one with: openssl rand -base64 32)", ErrInvalidMasterKey)
}

// LoadKeyring loads the master keys. If envValue (the value of OPENCALICO_MASTER_KEY) is set,
// it wins. Otherwise the keys come from the key file at keyFilePath; if that does not exist
// and create is set (development), a key file with a new key is written, mode 0600, and
// created is true so that the caller logs "created master key file at <Path()>". If the file
// does not exist and create is not set, the error (wrapping ErrNoMasterKey) tells the
// operator what to configure.
func LoadKeyring(envValue, keyFilePath string, create bool) (ring *Keyring, created bool, err error) {
	if strings.TrimSpace(envValue) != "" {
		ring, err := ParseEnvKeys(envValue)
		return ring, false, err
	}
	if keyFilePath == "" {
		return nil, false, fmt.Errorf("%w: set %s to a base64 32-byte key (openssl rand -base64 32) or configure a key file",
			ErrNoMasterKey, MasterKeyEnv)
	}
	ring, err = loadKeyFile(keyFilePath)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return ring, false, err
	}
	if !create {
		return nil, false, fmt.Errorf("%w: %s is not set and key file %s does not exist; set %s to a base64 32-byte key "+
			"(openssl rand -base64 32) or provide the key file", ErrNoMasterKey, MasterKeyEnv, keyFilePath, MasterKeyEnv)
	}
	key := GenerateMasterKey()
	m, err := newMasterKey(key, time.Now().UTC())
	clear(key)
	if err != nil {
		return nil, false, err
	}
	created, err = createKeyFile(keyFilePath, []*masterKey{m})
	if err != nil {
		return nil, false, err
	}
	// Read back what is on disk: if another process created the file first, its key wins.
	ring, err = loadKeyFile(keyFilePath)
	return ring, created && err == nil, err
}
