// Package secrets seals connection credentials before they reach the store, manages the
// master keys that protect them, and rotates those keys while the server runs.
//
// # Envelope encryption
//
// Every sealed secret has its own random 256-bit data key. The credentials are encrypted
// under the data key, and the data key is encrypted ("wrapped") under a master key:
//
//	Ciphertext = nonce(24) || XChaCha20-Poly1305(dataKey, nonce, plaintext, dataAAD)
//	WrappedKey = nonce(24) || XChaCha20-Poly1305(masterKey, nonce, dataKey, wrapAAD)
//	dataAAD    = "opencalico/secret/v1\x00" || connectionID
//	wrapAAD    = "opencalico/dek/v1\x00" || keyID || "\x00" || connectionID
//
// Why this shape:
//   - A data key per record means rotating a master key only rewraps 72 bytes per record;
//     the credential ciphertext is never touched, so rotation cannot corrupt it.
//   - XChaCha20-Poly1305 has 192-bit nonces, so random nonces are safe for any number of
//     messages under one key (AES-GCM's 96-bit random nonces are not, for the master key that
//     wraps every data key). It is also constant-time without hardware support.
//   - Both layers bind the connection id as associated data, so a sealed secret copied to
//     another connection's row does not open, and the wrapped key also binds the master key
//     id, so relabelling KeyID fails authentication too. Any flipped byte fails.
//   - The "v1" labels version the format: a future format uses new labels, so a secret can
//     never be opened under the wrong format's rules by accident.
//
// # Master keys
//
// A Keyring holds the master keys, primary first: new secrets are sealed under the primary,
// and any key in the ring opens. Keys come from OPENCALICO_MASTER_KEY (base64, or a comma
// separated list, primary first) or from a key file (JSON, mode 0600); see LoadKeyring. A
// key's id is a hash of the key, so it can be logged and stored next to the ciphertext.
//
// # Rotation
//
// Rotate re-wraps every data key under a new primary. Servers keep working during it: a Sealer
// backed by a key file reloads the file when it changes before sealing, and when asked to open
// a secret under a key id it does not know. See Rotate for the order of steps that makes
// this safe.
//
// Nothing in this package puts plaintext or key bytes into an error, a log or a String
// method: errors name a connection id and a key id at most.
package secrets
