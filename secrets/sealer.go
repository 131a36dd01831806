package secrets

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/opencalico/opencalico"
)

const (
	dataAADPrefix = "opencalico/secret/v1\x00"
	wrapAADPrefix = "opencalico/dek/v1\x00"

	nonceSize      = chacha20poly1305.NonceSizeX
	overhead       = chacha20poly1305.Overhead
	wrappedKeySize = nonceSize + KeySize + overhead
)

// Errors of sealing and opening.
var (
	// ErrOpen means a sealed secret does not open: it was tampered with, belongs to another
	// connection, or its key is not available. Every Open error wraps it.
	ErrOpen = errors.New("sealed secret does not open")
	// ErrUnknownKey means the secret's master key is not in the keyring, even after reloading
	// the key file. Open errors for that reason wrap both ErrOpen and ErrUnknownKey.
	ErrUnknownKey = errors.New("master key not in keyring")
)

// Sealer seals and opens connection secrets under a keyring. It is safe for concurrent use.
//
// A Sealer over a key file follows the file: before each Seal it reloads the file if it has
// been replaced, so that a running server seals under the primary a rotation has just added;
// and when asked to open a secret under a key id it does not know, it reloads once and
// retries, so that reads keep working while `keys rotate` re-wraps secrets in another
// process. Over environment or in-memory keys it never reloads.
type Sealer struct {
	ring     atomic.Pointer[Keyring]
	reloadMu sync.Mutex // one reload at a time, so a burst of misses reads the file once
}

// NewSealer returns a Sealer over the keyring.
func NewSealer(ring *Keyring) *Sealer {
	s := &Sealer{}
	s.ring.Store(ring)
	return s
}

// Keyring returns the keyring the Sealer currently uses.
func (s *Sealer) Keyring() *Keyring { return s.ring.Load() }

// PrimaryKeyID returns the id of the key new secrets are sealed under, after reloading the
// key file if it changed.
func (s *Sealer) PrimaryKeyID() (string, error) {
	ring, err := s.current()
	if err != nil {
		return "", err
	}
	return ring.PrimaryID(), nil
}

// current returns the keyring to seal with, reloading the key file if it was replaced. A
// failure to read the file fails the Seal rather than sealing under a key that may have
// been retired: the file only ever changes by an atomic rename, so a failure is real.
func (s *Sealer) current() (*Keyring, error) {
	ring := s.ring.Load()
	if ring.source != SourceFile {
		return ring, nil
	}
	info, err := os.Stat(ring.path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if sameFile(info, ring.stamp) {
		return ring, nil
	}
	return s.reload(ring)
}

// reload reads the key file again unless another goroutine replaced seen meanwhile.
func (s *Sealer) reload(seen *Keyring) (*Keyring, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if ring := s.ring.Load(); ring != seen {
		return ring, nil
	}
	ring, err := loadKeyFile(seen.path)
	if err != nil {
		return nil, err
	}
	s.ring.Store(ring)
	return ring, nil
}

// Seal encrypts plaintext for the connection under a fresh data key wrapped by the primary
// master key. The connection id is bound into both ciphertexts, so the result only opens for
// that connection.
func (s *Sealer) Seal(connectionID string, plaintext []byte) (opencalico.SealedSecret, error) {
	if connectionID == "" {
		return opencalico.SealedSecret{}, errors.New("secrets: seal: empty connection id")
	}
	ring, err := s.current()
	if err != nil {
		return opencalico.SealedSecret{}, fmt.Errorf("secrets: seal connection %s: %w", connectionID, err)
	}
	return seal(ring.primary(), connectionID, plaintext)
}

func seal(master *masterKey, connectionID string, plaintext []byte) (opencalico.SealedSecret, error) {
	dataKey := make([]byte, KeySize)
	rand.Read(dataKey)
	defer clear(dataKey)
	dataAEAD, err := chacha20poly1305.NewX(dataKey)
	if err != nil {
		return opencalico.SealedSecret{}, fmt.Errorf("secrets: seal connection %s: %w", connectionID, err)
	}
	ciphertext := make([]byte, nonceSize, nonceSize+len(plaintext)+overhead)
	rand.Read(ciphertext)
	ciphertext = dataAEAD.Seal(ciphertext, ciphertext, plaintext, dataAAD(connectionID))
	return opencalico.SealedSecret{
		ConnectionID: connectionID,
		KeyID:        master.id,
		WrappedKey:   wrapDataKey(master, connectionID, dataKey),
		Ciphertext:   ciphertext,
	}, nil
}

// Open decrypts a sealed secret. It fails, with an error wrapping ErrOpen, if any byte of the
// secret was changed or the secret was moved to another connection.
func (s *Sealer) Open(sealed opencalico.SealedSecret) ([]byte, error) {
	ring := s.ring.Load()
	master := ring.key(sealed.KeyID)
	if master == nil && ring.source == SourceFile {
		// A rotation in another process may have re-wrapped this secret under a key added to
		// the file after we read it.
		reloaded, err := s.reload(ring)
		if err != nil {
			return nil, fmt.Errorf("secrets: open connection %s: %w: %w", sealed.ConnectionID, ErrOpen, err)
		}
		master = reloaded.key(sealed.KeyID)
	}
	if master == nil {
		return nil, fmt.Errorf("secrets: open connection %s: key %q: %w: %w",
			sealed.ConnectionID, sealed.KeyID, ErrOpen, ErrUnknownKey)
	}
	return open(master, sealed)
}

func open(master *masterKey, sealed opencalico.SealedSecret) ([]byte, error) {
	dataKey, err := unwrapDataKey(master, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	fail := func() ([]byte, error) {
		return nil, fmt.Errorf("secrets: open connection %s: key %s: ciphertext: %w",
			sealed.ConnectionID, sealed.KeyID, ErrOpen)
	}
	if len(sealed.Ciphertext) < nonceSize+overhead {
		return fail()
	}
	dataAEAD, err := chacha20poly1305.NewX(dataKey)
	if err != nil {
		return fail()
	}
	nonce, box := sealed.Ciphertext[:nonceSize], sealed.Ciphertext[nonceSize:]
	plaintext, err := dataAEAD.Open(nil, nonce, box, dataAAD(sealed.ConnectionID))
	if err != nil {
		return fail()
	}
	return plaintext, nil
}

// wrapDataKey encrypts a data key under a master key, bound to the key id and the connection.
func wrapDataKey(master *masterKey, connectionID string, dataKey []byte) []byte {
	wrapped := make([]byte, nonceSize, wrappedKeySize)
	rand.Read(wrapped)
	return master.aead.Seal(wrapped, wrapped, dataKey, wrapAAD(master.id, connectionID))
}

// unwrapDataKey decrypts the data key of a sealed secret with master, which must be the key
// named by sealed.KeyID.
func unwrapDataKey(master *masterKey, sealed opencalico.SealedSecret) ([]byte, error) {
	if len(sealed.WrappedKey) != wrappedKeySize || master.id != sealed.KeyID {
		return nil, fmt.Errorf("secrets: open connection %s: key %q: wrapped key: %w",
			sealed.ConnectionID, sealed.KeyID, ErrOpen)
	}
	nonce, box := sealed.WrappedKey[:nonceSize], sealed.WrappedKey[nonceSize:]
	dataKey, err := master.aead.Open(nil, nonce, box, wrapAAD(master.id, sealed.ConnectionID))
	if err != nil {
		return nil, fmt.Errorf("secrets: open connection %s: key %s: wrapped key: %w",
			sealed.ConnectionID, sealed.KeyID, ErrOpen)
	}
	return dataKey, nil
}

func dataAAD(connectionID string) []byte {
	return append([]byte(dataAADPrefix), connectionID...)
}

// wrapAAD binds the key id too: the ids are hex, so the NUL separators are unambiguous.
func wrapAAD(keyID, connectionID string) []byte {
	aad := make([]byte, 0, len(wrapAADPrefix)+len(keyID)+1+len(connectionID))
	aad = append(aad, wrapAADPrefix...)
	aad = append(aad, keyID...)
	aad = append(aad, 0)
	return append(aad, connectionID...)
}

// SealCredentials seals a credential map (API key and secret, OAuth tokens, …) as JSON.
func (s *Sealer) SealCredentials(connectionID string, creds map[string]string) (opencalico.SealedSecret, error) {
	plaintext, err := json.Marshal(creds)
	if err != nil {
		// Marshalling a map[string]string cannot fail; the error would not hold values anyway.
		return opencalico.SealedSecret{}, fmt.Errorf("secrets: seal connection %s: encode credentials: %w", connectionID, err)
	}
	defer clear(plaintext)
	return s.Seal(connectionID, plaintext)
}

// OpenCredentials opens a secret sealed by SealCredentials.
func (s *Sealer) OpenCredentials(sealed opencalico.SealedSecret) (map[string]string, error) {
	plaintext, err := s.Open(sealed)
	if err != nil {
		return nil, err
	}
	defer clear(plaintext)
	var creds map[string]string
	if err := json.Unmarshal(plaintext, &creds); err != nil {
		// Not wrapped: JSON errors may quote part of the input, which is the secret.
		return nil, fmt.Errorf("secrets: open connection %s: credentials are not a JSON object of strings",
			sealed.ConnectionID)
	}
	return creds, nil
}
