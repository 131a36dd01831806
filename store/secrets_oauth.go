package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/opencalico/opencalico"
)

// Rotating OAuth tokens. A provider whose refresh tokens are single use (Coinbase) hands back
// a new pair on every refresh; the old pair is dead from that moment. Whoever refreshes must
// therefore replace the stored secret only if it is still the one the refresh started from,
// or two refreshers could overwrite each other's pair with a dead one. ReplaceSecret is that
// compare-and-set.
//
// The version of a secret is its ciphertext: every seal draws a fresh random nonce and data
// key, so two seals never produce the same ciphertext, even of the same plaintext. The
// wrapping (key_id, wrapped_key) is deliberately not compared: a master-key rotation re-wraps
// the data key without changing the credentials (RewrapSecret), and must not make a
// concurrent token refresh fail.

// ReplaceSecret stores next as the connection's sealed secret only if the stored secret still
// has prev's ciphertext, and reports whether it did. A false answer, without error, means that
// someone else replaced or removed the secret since prev was read: re-read and decide again.
// next and prev must belong to the same connection.
func (s *Store) ReplaceSecret(ctx context.Context, prev, next opencalico.SealedSecret) (bool, error) {
	return s.replaceSecret(ctx, s.db, prev, next)
}

// ReplaceSecretTx is ReplaceSecret inside the caller's transaction (to change the connection's
// status in the same commit).
func (s *Store) ReplaceSecretTx(ctx context.Context, tx *sql.Tx, prev, next opencalico.SealedSecret) (bool, error) {
	return s.replaceSecret(ctx, tx, prev, next)
}

func (s *Store) replaceSecret(ctx context.Context, db execer, prev, next opencalico.SealedSecret) (bool, error) {
	if next.ConnectionID == "" || next.KeyID == "" || len(next.WrappedKey) == 0 || len(next.Ciphertext) == 0 {
		return false, opencalico.Errorf(opencalico.EBadRequest, "incomplete sealed secret")
	}
	if prev.ConnectionID != next.ConnectionID || len(prev.Ciphertext) == 0 {
		return false, opencalico.Errorf(opencalico.EBadRequest, "a secret can only replace a stored secret of the same connection")
	}
	res, err := db.ExecContext(ctx, s.q(`UPDATE connection_secrets SET key_id = ?, wrapped_key = ?, ciphertext = ?, updated_at = ?
		WHERE connection_id = ? AND ciphertext = ?`),
		next.KeyID, next.WrappedKey, next.Ciphertext, micros(s.now()), next.ConnectionID, prev.Ciphertext)
	if err != nil {
		// No argument in the message: they are ciphertexts.
		return false, fmt.Errorf("store: replacing secret: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: replacing secret: %w", err)
	}
	return n == 1, nil
}
