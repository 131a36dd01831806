package secrets_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/secrets"
)

// testKey returns a deterministic key, distinct per seed, so that failures are reproducible.
func testKey(seed byte) []byte {
	key := make([]byte, secrets.KeySize)
	for i := range key {
		key[i] = seed ^ byte(i*7+0xf9) // high bytes, so base64 of it uses '+' and '/'
	}
	return key
}

func memorySealer(t testing.TB, keys ...[]byte) *secrets.Sealer {
	t.Helper()
	ring, err := secrets.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return secrets.NewSealer(ring)
}

func TestSealOpenRoundTrip(t *testing.T) {
	sealer := memorySealer(t, testKey(1), testKey(2))
	large := bytes.Repeat([]byte{0, 1, 2, 0xff}, 16<<10)
	tests := []struct {
		name, connectionID string
		plaintext          []byte
	}{
		{"empty", "conn_a", []byte{}},
		{"short", "conn_b", []byte("hunter2")},
		{"json", "conn_c", []byte(`{"api_key":"k","api_secret":"s"}`)},
		{"binary 64 KiB", "conn_d", large},
		{"unicode connection id", "conn_é\x00x", []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := sealer.Seal(tt.connectionID, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if sealed.ConnectionID != tt.connectionID || sealed.KeyID != sealer.Keyring().PrimaryID() {
				t.Errorf("sealed ids = %q, %q; want %q, %q", sealed.ConnectionID, sealed.KeyID,
					tt.connectionID, sealer.Keyring().PrimaryID())
			}
			if len(tt.plaintext) > 4 && bytes.Contains(sealed.Ciphertext, tt.plaintext) {
				t.Error("ciphertext contains the plaintext")
			}
			got, err := sealer.Open(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	sealer := memorySealer(t, testKey(1))
	a, _ := sealer.Seal("conn_a", []byte("same"))
	b, _ := sealer.Seal("conn_a", []byte("same"))
	if bytes.Equal(a.Ciphertext, b.Ciphertext) || bytes.Equal(a.WrappedKey, b.WrappedKey) {
		t.Error("two seals of the same plaintext are equal: nonces or data keys are reused")
	}
}

func TestSealRejectsEmptyConnectionID(t *testing.T) {
	if _, err := memorySealer(t, testKey(1)).Seal("", []byte("x")); err == nil {
		t.Error("Seal with an empty connection id succeeded; it would bind the secret to nothing")
	}
}

func TestCredentialsRoundTrip(t *testing.T) {
	sealer := memorySealer(t, testKey(1))
	creds := map[string]string{"api_key": "AKIA123", "api_secret": "s3cr3t/+=", "passphrase": ""}
	sealed, err := sealer.SealCredentials("conn_a", creds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sealer.OpenCredentials(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(creds) {
		t.Errorf("OpenCredentials = %v, want %v", got, creds)
	}
}

func TestOpenFails(t *testing.T) {
	const plaintext = "the-api-secret-value"
	sealer := memorySealer(t, testKey(1), testKey(2))
	otherID := sealer.Keyring().IDs()[1]
	good, err := sealer.Seal("conn_a", []byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	clone := func(edit func(*opencalico.SealedSecret)) opencalico.SealedSecret {
		s := good
		s.WrappedKey = bytes.Clone(good.WrappedKey)
		s.Ciphertext = bytes.Clone(good.Ciphertext)
		edit(&s)
		return s
	}
	type testCase struct {
		name       string
		sealed     opencalico.SealedSecret
		unknownKey bool
	}
	tests := []testCase{
		{name: "other connection id", sealed: clone(func(s *opencalico.SealedSecret) { s.ConnectionID = "conn_b" })},
		{name: "connection id prefix", sealed: clone(func(s *opencalico.SealedSecret) { s.ConnectionID = "conn_" })},
		{name: "other known key id", sealed: clone(func(s *opencalico.SealedSecret) { s.KeyID = otherID })},
		{name: "unknown key id", unknownKey: true,
			sealed: clone(func(s *opencalico.SealedSecret) { s.KeyID = "0123456789abcdef" })},
		{name: "empty key id", unknownKey: true, sealed: clone(func(s *opencalico.SealedSecret) { s.KeyID = "" })},
		{name: "wrapped key truncated", sealed: clone(func(s *opencalico.SealedSecret) { s.WrappedKey = s.WrappedKey[:40] })},
		{name: "wrapped key empty", sealed: clone(func(s *opencalico.SealedSecret) { s.WrappedKey = nil })},
		{name: "wrapped key extended", sealed: clone(func(s *opencalico.SealedSecret) { s.WrappedKey = append(s.WrappedKey, 0) })},
		{name: "ciphertext truncated", sealed: clone(func(s *opencalico.SealedSecret) { s.Ciphertext = s.Ciphertext[:30] })},
		{name: "ciphertext empty", sealed: clone(func(s *opencalico.SealedSecret) { s.Ciphertext = nil })},
		{name: "ciphertext extended", sealed: clone(func(s *opencalico.SealedSecret) { s.Ciphertext = append(s.Ciphertext, 0) })},
		{name: "wrapped key and ciphertext from another secret", sealed: func() opencalico.SealedSecret {
			other, _ := sealer.Seal("conn_a", []byte(plaintext))
			return clone(func(s *opencalico.SealedSecret) { s.WrappedKey = other.WrappedKey })
		}()},
	}
	// Every single flipped bit, in either field.
	for i := range good.WrappedKey {
		tests = append(tests, testCase{name: fmt.Sprintf("wrapped key byte %d", i),
			sealed: clone(func(s *opencalico.SealedSecret) { s.WrappedKey[i] ^= 0x01 })})
	}
	for i := range good.Ciphertext {
		tests = append(tests, testCase{name: fmt.Sprintf("ciphertext byte %d", i),
			sealed: clone(func(s *opencalico.SealedSecret) { s.Ciphertext[i] ^= 0x80 })})
	}
	for i := range good.KeyID {
		tests = append(tests, testCase{name: fmt.Sprintf("key id byte %d", i), unknownKey: true,
			sealed: clone(func(s *opencalico.SealedSecret) { s.KeyID = flipHexDigit(s.KeyID, i) })})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sealer.Open(tt.sealed)
			if err == nil {
				t.Fatalf("Open succeeded (%q)", got)
			}
			if !errors.Is(err, secrets.ErrOpen) {
				t.Errorf("error %q does not wrap ErrOpen", err)
			}
			if errors.Is(err, secrets.ErrUnknownKey) != tt.unknownKey {
				t.Errorf("error %q: wraps ErrUnknownKey = %v, want %v", err, !tt.unknownKey, tt.unknownKey)
			}
			assertNoSecret(t, err.Error(), plaintext, testKey(1), testKey(2))
		})
	}
	if _, err := sealer.Open(good); err != nil {
		t.Fatalf("the untampered secret does not open: %v", err)
	}
}

func flipHexDigit(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// assertNoSecret fails if text contains the plaintext or a key in any encoding we use.
func assertNoSecret(t *testing.T, text, plaintext string, keys ...[]byte) {
	t.Helper()
	if plaintext != "" && strings.Contains(text, plaintext) {
		t.Errorf("%q contains the plaintext", text)
	}
	for _, key := range keys {
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
			fmt.Sprintf("%x", key), string(key), fmt.Sprint(key)[1:20],
		} {
			if strings.Contains(text, enc) {
				t.Errorf("%q contains a key", text)
			}
		}
	}
}

func TestOpenCredentialsOfNonJSONHidesContent(t *testing.T) {
	const plaintext = "not-json-but-a-secret"
	sealer := memorySealer(t, testKey(1))
	sealed, _ := sealer.Seal("conn_a", []byte(plaintext))
	_, err := sealer.OpenCredentials(sealed)
	if err == nil {
		t.Fatal("OpenCredentials of a non-JSON secret succeeded")
	}
	assertNoSecret(t, err.Error(), plaintext)
	assertNoSecret(t, err.Error(), "not-json")
}

// TestNoSecretInErrorsOrFormatting collects the errors and the printed forms of every type
// that holds key material, and checks that none contains a secret.
func TestNoSecretInErrorsOrFormatting(t *testing.T) {
	const plaintext = "plaintext-api-secret-42"
	key1, key2 := testKey(1), testKey(2)
	encoded := base64.StdEncoding.EncodeToString(key1)
	sealer := memorySealer(t, key1, key2)
	sealed, _ := sealer.Seal("conn_a", []byte(plaintext))

	var texts []string
	addErr := func(err error) {
		if err == nil {
			t.Fatal("expected an error")
		}
		texts = append(texts, err.Error())
	}
	for _, s := range []opencalico.SealedSecret{
		{ConnectionID: "conn_b", KeyID: sealed.KeyID, WrappedKey: sealed.WrappedKey, Ciphertext: sealed.Ciphertext},
		{ConnectionID: "conn_a", KeyID: "ffff", WrappedKey: sealed.WrappedKey, Ciphertext: sealed.Ciphertext},
		{ConnectionID: "conn_a", KeyID: sealed.KeyID, WrappedKey: sealed.WrappedKey, Ciphertext: sealed.Ciphertext[:len(sealed.Ciphertext)-1]},
	} {
		_, err := sealer.Open(s)
		addErr(err)
	}
	_, err := secrets.ParseEnvKeys(encoded + ",!" + encoded[1:])
	addErr(err)
	_, err = secrets.ParseEnvKeys(encoded[:20])
	addErr(err)
	_, err = secrets.ParseEnvKeys(encoded + "," + encoded)
	addErr(err)
	_, err = secrets.NewKeyring(key1[:31])
	addErr(err)

	ring := sealer.Keyring()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		texts = append(texts, fmt.Sprintf(verb, ring), fmt.Sprintf(verb, *ring))
	}
	for _, text := range texts {
		assertNoSecret(t, text, plaintext, key1, key2)
		if strings.Contains(text, encoded[1:30]) {
			t.Errorf("%q contains part of a key", text)
		}
	}
}

func benchmarkSealer(b *testing.B) (*secrets.Sealer, []byte) {
	return memorySealer(b, testKey(1)), []byte(`{"api_key":"0123456789abcdef0123456789abcdef","api_secret":"` +
		strings.Repeat("s", 64) + `","passphrase":"correct horse"}`)
}

func BenchmarkSeal(b *testing.B) {
	sealer, creds := benchmarkSealer(b)
	b.SetBytes(int64(len(creds)))
	for b.Loop() {
		if _, err := sealer.Seal("conn_abcdefghijklmnop", creds); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	sealer, creds := benchmarkSealer(b)
	sealed, _ := sealer.Seal("conn_abcdefghijklmnop", creds)
	b.SetBytes(int64(len(creds)))
	for b.Loop() {
		if _, err := sealer.Open(sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealKeyFile includes the stat of the key file that every Seal does.
func BenchmarkSealKeyFile(b *testing.B) {
	ring, _, err := secrets.LoadKeyring("", b.TempDir()+"/master.key", true)
	if err != nil {
		b.Fatal(err)
	}
	sealer := secrets.NewSealer(ring)
	_, creds := benchmarkSealer(b)
	for b.Loop() {
		if _, err := sealer.Seal("conn_abcdefghijklmnop", creds); err != nil {
			b.Fatal(err)
		}
	}
}
