package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencalico/opencalico"
)

// SecretStore is what rotation needs from the store: a keyset-paginated scan of the sealed
// secrets and a compare-and-set update of one wrapped key.
type SecretStore interface {
	// ListSealedSecrets returns up to limit sealed secrets whose connection id is greater than
	// afterConnectionID, in ascending connection id order. An empty result ends the scan.
	ListSealedSecrets(ctx context.Context, afterConnectionID string, limit int) ([]opencalico.SealedSecret, error)
	// RewrapSecret sets the secret's KeyID and WrappedKey, leaving its Ciphertext alone, only
	// if its KeyID is still oldKeyID. It reports whether it did: false means the secret was
	// re-sealed or deleted meanwhile, which the next pass of the rotation sorts out.
	RewrapSecret(ctx context.Context, connectionID, oldKeyID, newKeyID string, wrappedKey []byte) (bool, error)
}

// Defaults of RotateOptions.
const (
	DefaultRotateBatchSize = 500
	DefaultGracePeriod     = 10 * time.Second
	DefaultMaxPasses       = 20
)

// RotateOptions tune Rotate. The zero value is fine.
type RotateOptions struct {
	// BatchSize is how many secrets one ListSealedSecrets call reads. Default 500.
	BatchSize int
	// GracePeriod is how long Rotate waits, after a pass finds nothing left to re-wrap, before
	// the last pass: long enough for a Seal that started under the old keys to reach the store.
	// Zero means DefaultGracePeriod; negative means no wait.
	GracePeriod time.Duration
	// MaxPasses bounds the passes over the store. Passes repeat while secrets under old keys
	// keep appearing, which only goes on if some server still seals under an old key (a server
	// started with an old OPENCALICO_MASTER_KEY): better to stop and say so. Default 20.
	MaxPasses int
	// Progress, if set, is called after each batch.
	Progress func(RotationProgress)
}

// RotationProgress is reported after each batch of a rotation.
type RotationProgress struct {
	Pass      int // 1-based
	Scanned   int // secrets read in this pass so far
	Rewrapped int // secrets re-wrapped so far, all passes together
}

// RotationReport says what a rotation did. On error it holds what was done until then.
type RotationReport struct {
	Source   KeySource
	KeyFile  string // for SourceFile
	NewKeyID string // the primary every secret is now wrapped under
	// RetiredKeyIDs are the keys no secret uses any more. For a key file they have been
	// removed from it; for OPENCALICO_MASTER_KEY the operator may now remove them.
	RetiredKeyIDs []string
	Rewrapped     int
	Passes        int
}

// Rotate re-wraps every secret's data key under a new primary master key. Only WrappedKey and
// KeyID change; the credential ciphertext is never rewritten.
//
// For a keyring from a key file, Rotate reads the file afresh (ring only names it), generates
// a new key, and:
//
//  1. writes the file with the new key first and the old keys after. From here on, servers
//     (whose Sealers reload the file before sealing) seal under the new key, and servers that
//     meet a secret under the new key reload the file and open it;
//  2. re-wraps every secret whose KeyID is not the new key, in keyset batches, repeating passes
//     until one finds none: a server may have sealed under an old key just before it reloaded;
//  3. waits GracePeriod for seals already in flight to reach the store, and passes again;
//  4. removes the old keys from the file, after checking nobody else changed it meanwhile.
//
// If it fails or is interrupted before step 4, the file still holds every key, so all secrets
// still open, and running Rotate again finishes the job (under yet another new key).
//
// For OPENCALICO_MASTER_KEY (or an in-memory keyring) Rotate cannot change the keys: it
// re-wraps every secret under the current primary (the first key), and the report's
// RetiredKeyIDs are the keys the operator may now remove from the variable.
//
// Only one rotation may run at a time.
func Rotate(ctx context.Context, store SecretStore, ring *Keyring, opts RotateOptions) (RotationReport, error) {
	opts = opts.withDefaults()
	if ring.source != SourceFile {
		report := RotationReport{Source: ring.source, NewKeyID: ring.PrimaryID(), RetiredKeyIDs: ring.IDs()[1:]}
		err := rewrapAll(ctx, store, ring, opts, &report)
		return report, err
	}

	current, err := loadKeyFile(ring.path)
	if err != nil {
		return RotationReport{}, fmt.Errorf("secrets: rotate: %w", err)
	}
	key := GenerateMasterKey()
	newKey, err := newMasterKey(key, time.Now().UTC())
	clear(key)
	if err != nil {
		return RotationReport{}, fmt.Errorf("secrets: rotate: %w", err)
	}
	rotating := current.withKeys(append([]*masterKey{newKey}, current.keys...))
	report := RotationReport{
		Source: SourceFile, KeyFile: current.path, NewKeyID: newKey.id, RetiredKeyIDs: current.IDs(),
	}
	if err := writeKeyFile(current.path, rotating.keys); err != nil {
		return report, fmt.Errorf("secrets: rotate: %w", err)
	}
	if err := rewrapAll(ctx, store, rotating, opts, &report); err != nil {
		return report, err
	}

	onDisk, err := loadKeyFile(current.path)
	if err != nil {
		return report, fmt.Errorf("secrets: rotate: old keys kept: %w", err)
	}
	if !slices.Equal(onDisk.IDs(), rotating.IDs()) {
		return report, fmt.Errorf("secrets: rotate: key file %s changed during the rotation; old keys kept", current.path)
	}
	if err := writeKeyFile(current.path, []*masterKey{newKey}); err != nil {
		return report, fmt.Errorf("secrets: rotate: every secret is re-wrapped but the old keys are still in the file: %w", err)
	}
	return report, nil
}

func (o RotateOptions) withDefaults() RotateOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultRotateBatchSize
	}
	if o.GracePeriod == 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.MaxPasses <= 0 {
		o.MaxPasses = DefaultMaxPasses
	}
	return o
}

// rewrapAll re-wraps every secret under ring's primary: passes until none is left, the grace
// period, then passes again until none is left.
func rewrapAll(ctx context.Context, store SecretStore, ring *Keyring, opts RotateOptions, report *RotationReport) error {
	if err := rewrapUntilDone(ctx, store, ring, opts, report); err != nil {
		return err
	}
	if opts.GracePeriod > 0 {
		timer := time.NewTimer(opts.GracePeriod)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("secrets: rotate: %w", ctx.Err())
		case <-timer.C:
		}
	}
	return rewrapUntilDone(ctx, store, ring, opts, report)
}

func rewrapUntilDone(ctx context.Context, store SecretStore, ring *Keyring, opts RotateOptions, report *RotationReport) error {
	for {
		if report.Passes >= opts.MaxPasses {
			return fmt.Errorf("secrets: rotate: secrets under old keys still appear after %d passes; "+
				"is a server still running with an old %s?", report.Passes, MasterKeyEnv)
		}
		report.Passes++
		found, err := rewrapPass(ctx, store, ring, opts, report)
		if err != nil {
			return err
		}
		if found == 0 {
			return nil
		}
	}
}

// rewrapPass scans the store once and re-wraps the secrets not under the primary. It returns
// how many it found, re-wrapped or not (a lost compare-and-set is looked at again next pass).
func rewrapPass(ctx context.Context, store SecretStore, ring *Keyring, opts RotateOptions, report *RotationReport) (found int, err error) {
	target := ring.primary()
	after, scanned := "", 0
	for {
		if err := ctx.Err(); err != nil {
			return found, fmt.Errorf("secrets: rotate: %w", err)
		}
		batch, err := store.ListSealedSecrets(ctx, after, opts.BatchSize)
		if err != nil {
			return found, fmt.Errorf("secrets: rotate: list sealed secrets: %w", err)
		}
		if len(batch) == 0 {
			return found, nil
		}
		for _, sealed := range batch {
			if sealed.ConnectionID <= after {
				// A scan that does not advance would loop forever or skip secrets.
				return found, errors.New("secrets: rotate: the store returned sealed secrets out of connection id order")
			}
			after = sealed.ConnectionID
			scanned++
			if sealed.KeyID == target.id {
				continue
			}
			found++
			if err := rewrapOne(ctx, store, ring, target, sealed, report); err != nil {
				return found, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(RotationProgress{Pass: report.Passes, Scanned: scanned, Rewrapped: report.Rewrapped})
		}
	}
}

func rewrapOne(ctx context.Context, store SecretStore, ring *Keyring, target *masterKey, sealed opencalico.SealedSecret, report *RotationReport) error {
	old := ring.key(sealed.KeyID)
	if old == nil {
		return fmt.Errorf("secrets: rotate: connection %s is sealed under key %q, which is not in the keyring: %w",
			sealed.ConnectionID, sealed.KeyID, ErrUnknownKey)
	}
	dataKey, err := unwrapDataKey(old, sealed)
	if err != nil {
		// A corrupt secret stops the rotation: dropping its key would lose it for good.
		return fmt.Errorf("secrets: rotate: %w", err)
	}
	wrapped := wrapDataKey(target, sealed.ConnectionID, dataKey)
	clear(dataKey)
	ok, err := store.RewrapSecret(ctx, sealed.ConnectionID, sealed.KeyID, target.id, wrapped)
	if err != nil {
		return fmt.Errorf("secrets: rotate: rewrap connection %s: %w", sealed.ConnectionID, err)
	}
	if ok {
		report.Rewrapped++
	}
	return nil
}
