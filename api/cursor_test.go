package api

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

type testPos struct {
	TS time.Time `json:"t"`
	ID string    `json:"i"`
}

func TestCursors(t *testing.T) {
	codec := cursorCodec{key: []byte("0123456789abcdef0123456789abcdef")}
	q := url.Values{"asset_symbols": {"BTC,ETH"}, "order": {"asc"}, "limit": {"10"}}
	bind := binding("transactions", "usr_a/cli_1", q)
	pos := testPos{TS: time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC), ID: "txn_x"}
	cur, err := codec.encode("transactions", bind, pos)
	if err != nil {
		t.Fatal(err)
	}
	var got testPos
	if err := codec.decode(cur, "transactions", bind, &got); err != nil || !got.TS.Equal(pos.TS) || got.ID != pos.ID {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// The limit may change between pages; the order of values in a list does not matter.
	other := url.Values{"order": {"asc"}, "asset_symbols": {"BTC,ETH"}, "limit": {"50"}, "cursor": {cur}}
	if binding("transactions", "usr_a/cli_1", other) != bind {
		t.Fatal("changing the limit or passing the cursor changed the binding")
	}

	tampered := []byte(cur)
	tampered[3] ^= 1
	refused := map[string]struct {
		cursor, kind, binding string
	}{
		"tampered":       {string(tampered), "transactions", bind},
		"no signature":   {strings.Split(cur, ".")[0], "transactions", bind},
		"garbage":        {"not a cursor", "transactions", bind},
		"empty":          {"", "transactions", bind},
		"other list":     {cur, "assets", bind},
		"other user":     {cur, "transactions", binding("transactions", "usr_b/cli_1", q)},
		"other client":   {cur, "transactions", binding("transactions", "usr_a/cli_2", q)},
		"changed filter": {cur, "transactions", binding("transactions", "usr_a/cli_1", url.Values{"asset_symbols": {"BTC"}, "order": {"asc"}})},
		"added filter":   {cur, "transactions", binding("transactions", "usr_a/cli_1", url.Values{"asset_symbols": {"BTC,ETH"}, "order": {"asc"}, "types": {"send"}})},
	}
	for name, r := range refused {
		if err := codec.decode(r.cursor, r.kind, r.binding, &got); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCursor {
			t.Errorf("%s: %v", name, err)
		}
	}
	other2 := cursorCodec{key: []byte("another key of the same length..")}
	if err := other2.decode(cur, "transactions", bind, &got); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCursor {
		t.Errorf("a cursor signed with another key was accepted: %v", err)
	}
}
