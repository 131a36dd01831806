package coinbase

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// The credential fields, as AuthMetaData names them.
const (
	FieldAPIKey      = "api_key"      // CDP key name: organizations/{org}/apiKeys/{id}
	FieldSecretKey   = "secret_key"   // PEM EC P-256 private key, or base64 Ed25519 private key
	FieldAccessToken = "access_token" // OAuth2 bearer token (a later issue fills it)
)

// jwtLifetime is the validity Coinbase accepts for a CDP key JWT.
const jwtLifetime = 120 * time.Second

// authorizer puts credentials on one request. It is chosen by which credential fields an
// account carries, so that OAuth2 (an access token) can replace CDP keys (a JWT per request)
// without touching the rest of the adapter.
type authorizer interface {
	// authorize sets the Authorization header of r, signing for r's method, host and path.
	authorize(r *http.Request, now time.Time) error
	// limitKey names the rate-limit budget: Coinbase counts per key or per OAuth user.
	limitKey() string
}

// newAuthorizer picks the authorizer for the credentials. Every failure is
// EInvalidCredentials with a message that never repeats a secret.
func newAuthorizer(c provider.Credentials, nonce func() string) (authorizer, error) {
	if tok := strings.TrimSpace(c[FieldAccessToken]); tok != "" {
		return bearerToken{token: tok}, nil
	}
	name, secret := strings.TrimSpace(c[FieldAPIKey]), c[FieldSecretKey]
	if name == "" || strings.TrimSpace(secret) == "" {
		return nil, &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "A Coinbase CDP API key needs both the key name (api_key) and the private key (secret_key).",
			Err:     provider.ErrNoCredentials}
	}
	key, err := parsePrivateKey(secret)
	if err != nil {
		return nil, &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "The secret_key is not a CDP private key: paste the EC private key (PEM, ES256) or the base64 Ed25519 key exactly as Coinbase gave it.",
			Err:     err}
	}
	if nonce == nil {
		nonce = randomNonce
	}
	return &cdpKey{name: name, key: key, nonce: nonce}, nil
}

// bearerToken authorizes with an OAuth2 access token.
type bearerToken struct{ token string }

func (b bearerToken) authorize(r *http.Request, _ time.Time) error {
	r.Header.Set("Authorization", "Bearer "+b.token)
	return nil
}

// limitKey hashes the token: it names the budget without carrying the secret into logs or
// maps. (The real limit is per OAuth user; one token is one user.)
func (b bearerToken) limitKey() string {
	h := sha256.Sum256([]byte(b.token))
	return "oauth:" + hex.EncodeToString(h[:8])
}

// cdpKey authorizes with a fresh JWT per request, signed by a CDP API key.
type cdpKey struct {
	name  string
	key   crypto.Signer
	nonce func() string
}

func (k *cdpKey) authorize(r *http.Request, now time.Time) error {
	tok, err := buildJWT(k.name, k.key, jwtURI(r.Method, r.URL.Host, r.URL.Path), now, k.nonce())
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (k *cdpKey) limitKey() string { return "cdp:" + k.name }

// jwtURI is the uri claim: method, host and path, without the query.
func jwtURI(method, host, path string) string {
	return method + " " + host + path
}

// parsePrivateKey reads a CDP secret: a PEM EC P-256 key (SEC 1 or PKCS #8) for ES256, or a
// base64 Ed25519 key (64-byte seed+public, or a 32-byte seed) for EdDSA. Keys pasted from
// JSON often carry literal "\n" sequences; they are turned back into line breaks.
func parsePrivateKey(secret string) (crypto.Signer, error) {
	s := strings.TrimSpace(strings.ReplaceAll(secret, `\n`, "\n"))
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("unreadable PEM block")
		}
		var key any
		var err error
		switch block.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block of type %q", block.Type)
		}
		if err != nil {
			return nil, errors.New("unparsable private key")
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			if k.Curve != elliptic.P256() {
				return nil, errors.New("EC key not on P-256")
			}
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("secret is neither PEM nor base64")
	}
	switch len(raw) {
	case ed25519.PrivateKeySize:
		key := ed25519.PrivateKey(raw)
		// The second half must be the public key of the first: a mangled key fails here
		// rather than at Coinbase with a signature error.
		if !key.Public().(ed25519.PublicKey).Equal(ed25519.NewKeyFromSeed(raw[:32]).Public()) {
			return nil, errors.New("inconsistent Ed25519 key")
		}
		return key, nil
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	}
	return nil, fmt.Errorf("base64 key of %d bytes", len(raw))
}

// buildJWT makes the CDP bearer token for one request.
func buildJWT(keyName string, key crypto.Signer, uri string, now time.Time, nonce string) (string, error) {
	var alg string
	switch key.(type) {
	case *ecdsa.PrivateKey:
		alg = "ES256"
	case ed25519.PrivateKey:
		alg = "EdDSA"
	default:
		return "", fmt.Errorf("coinbase: unsupported key type %T", key)
	}
	header, err := json.Marshal(struct {
		Alg   string `json:"alg"`
		Kid   string `json:"kid"`
		Nonce string `json:"nonce"`
		Typ   string `json:"typ"`
	}{alg, keyName, nonce, "JWT"})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(struct {
		Sub string `json:"sub"`
		Iss string `json:"iss"`
		Nbf int64  `json:"nbf"`
		Exp int64  `json:"exp"`
		URI string `json:"uri"`
	}{keyName, "cdp", now.Unix(), now.Add(jwtLifetime).Unix(), uri})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return "", err
		}
		// JWS wants the fixed-width r||s form, not ASN.1.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// randomNonce is the JWT header nonce: 16 random bytes in hex.
func randomNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
