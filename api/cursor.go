package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"

	"github.com/opencalico/opencalico"
)

// Cursors are opaque to partners but plain to us: the keyset position, signed with HMAC and
// bound to what the page was asked with — the kind of list, the caller, and every filter —
// so that a tampered cursor, one from another user, or one reused with other filters is
// refused (invalid_cursor) instead of silently paging something else.

// cursorCodec signs and checks cursors.
type cursorCodec struct{ key []byte }

type cursorEnvelope struct {
	Kind    string          `json:"k"`
	Binding string          `json:"b"`
	Pos     json.RawMessage `json:"p"`
}

var errBadCursor = opencalico.Errorf(opencalico.EInvalidCursor,
	"The cursor is not valid for this request: use the next_cursor of the previous page, with the same filters.")

// binding digests what a cursor is bound to: the list kind, the caller, and the query
// parameters other than cursor and limit, in a canonical order.
func binding(kind, caller string, q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "cursor" && k != "limit" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(kind + "\x00" + caller)
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		b.WriteString("\x00" + k + "=" + strings.Join(vs, "\x01"))
	}
	h := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

func (c cursorCodec) sign(body []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(body)
	return m.Sum(nil)[:16]
}

// encode returns the cursor for position pos of a list.
func (c cursorCodec) encode(kind, binding string, pos any) (string, error) {
	p, err := json.Marshal(pos)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(cursorEnvelope{Kind: kind, Binding: binding, Pos: p})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(c.sign(body)), nil
}

// decode checks a cursor and reads its position into pos.
func (c cursorCodec) decode(cursor, kind, binding string, pos any) error {
	body64, sig64, ok := strings.Cut(cursor, ".")
	if !ok {
		return errBadCursor
	}
	body, err1 := base64.RawURLEncoding.DecodeString(body64)
	sig, err2 := base64.RawURLEncoding.DecodeString(sig64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, c.sign(body)) {
		return errBadCursor
	}
	var env cursorEnvelope
	if err := json.Unmarshal(body, &env); err != nil || env.Kind != kind || env.Binding != binding {
		return errBadCursor
	}
	if err := json.Unmarshal(env.Pos, pos); err != nil {
		return errBadCursor
	}
	return nil
}
