// Package opencalico is the domain of the opencalico aggregation server: the providers users
// link, the connections they make, and the positions and transactions read through them.
//
// The package depends on nothing below it. Storage, HTTP, providers and encryption live in
// subpackages that import this one, following the "standard package layout".
package opencalico

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// Version is the server version; the build may override it with -ldflags "-X …Version=…".
var Version = "0.1.0-dev"

// idEncoding is lower-case base32 without padding: ids stay short, URL-safe and case-stable.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random identifier with the given prefix, such as "conn_…" or "usr_…".
// 80 random bits make collisions irrelevant at any scale we will see.
func NewID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("opencalico: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// HasIDPrefix reports whether id looks like an id made by NewID with prefix.
func HasIDPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_") && len(id) > len(prefix)+1
}
