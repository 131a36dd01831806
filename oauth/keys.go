package oauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// keyLeeway is how long past their expiry tokens are still accepted, for clock skew between
// processes; retired keys stay published that much longer too.
const keyLeeway = time.Minute

// signingKey is a loaded signing key. private is nil when the key could not be unsealed (the
// master key that sealed it is gone): it can still verify, not sign.
type signingKey struct {
	id        string
	public    ed25519.PublicKey
	private   ed25519.PrivateKey
	retiredAt *time.Time
}

// keySet caches the signing keys of the database. It reloads them when a token names a kid
// it does not know (another process rotated) and at most every refreshEvery otherwise.
type keySet struct {
	store  Store
	sealer Sealer
	now    func() time.Time

	mu       sync.Mutex
	keys     []*signingKey // newest first; keys[0] signs when not retired
	loadedAt time.Time
}

const refreshEvery = time.Minute

// sealID binds a sealed private key to its kid, so that a key row swapped with another does
// not open.
func sealID(kid string) string { return "oauth-signing-key:" + kid }

// ensure loads the keys and makes a first one when there is none that can sign.
func (k *keySet) ensure(ctx context.Context) error {
	if err := k.load(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	usable := len(k.keys) > 0 && k.keys[0].private != nil && k.keys[0].retiredAt == nil
	k.mu.Unlock()
	if usable {
		return nil
	}
	return k.rotate(ctx)
}

// rotate makes a new key current; the store retires the others.
func (k *keySet) rotate(ctx context.Context) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("oauth: generating signing key: %w", err)
	}
	kid := opencalico.NewID("key")
	sealed, err := k.sealer.Seal(sealID(kid), priv.Seed())
	if err != nil {
		return fmt.Errorf("oauth: sealing signing key: %w", err)
	}
	if err := k.store.CreateSigningKey(ctx, &store.SigningKey{ID: kid, Algorithm: string(jose.EdDSA),
		PublicKey: pub, PrivateKey: sealed, CreatedAt: k.now()}); err != nil {
		return err
	}
	return k.load(ctx)
}

// load reads the keys still worth publishing: current ones, and retired ones whose tokens
// may not have expired yet.
func (k *keySet) load(ctx context.Context) error {
	rows, err := k.store.SigningKeys(ctx, k.now().Add(-AccessTokenTTL-keyLeeway))
	if err != nil {
		return err
	}
	keys := make([]*signingKey, 0, len(rows))
	for _, row := range rows {
		if row.Algorithm != string(jose.EdDSA) || len(row.PublicKey) != ed25519.PublicKeySize {
			continue
		}
		sk := &signingKey{id: row.ID, public: ed25519.PublicKey(row.PublicKey), retiredAt: row.RetiredAt}
		sealed := row.PrivateKey
		sealed.ConnectionID = sealID(row.ID)
		if seed, err := k.sealer.Open(sealed); err == nil && len(seed) == ed25519.SeedSize {
			sk.private = ed25519.NewKeyFromSeed(seed)
			clear(seed)
		}
		keys = append(keys, sk)
	}
	k.mu.Lock()
	k.keys, k.loadedAt = keys, k.now()
	k.mu.Unlock()
	return nil
}

// current returns the key that signs.
func (k *keySet) current(ctx context.Context) (*signingKey, error) {
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range k.keys {
		if key.retiredAt == nil && key.private != nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("oauth: no usable signing key")
}

// refresh reloads the keys when the cache is old.
func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	stale := k.now().Sub(k.loadedAt) > refreshEvery
	k.mu.Unlock()
	if stale {
		return k.load(ctx)
	}
	return nil
}

// publicKey returns the verification key kid, reloading once when it is unknown.
func (k *keySet) publicKey(ctx context.Context, kid string) (ed25519.PublicKey, bool) {
	find := func() ed25519.PublicKey {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, key := range k.keys {
			if key.id == kid {
				return key.public
			}
		}
		return nil
	}
	if err := k.refresh(ctx); err == nil {
		if pub := find(); pub != nil {
			return pub, true
		}
	}
	if err := k.load(ctx); err != nil {
		return nil, false
	}
	pub := find()
	return pub, pub != nil
}

// jwks returns the published keys.
func (k *keySet) jwks(ctx context.Context) (jose.JSONWebKeySet, error) {
	if err := k.refresh(ctx); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, key := range k.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: key.public, KeyID: key.id, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	return set, nil
}
