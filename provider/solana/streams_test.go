package solana

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/adaptertest"
	"github.com/opencalico/opencalico/provider"
)

// Token receives whose transactions do not list the wallet are found through the token
// accounts' streams, and only there; each transaction is fetched once and handed over once.
func TestOwnerAbsentReceivesFound(t *testing.T) {
	f := newFixture(t, 300)
	ad := f.adapter(Options{})
	ctx := context.Background()
	for i := range f.sim.Credentials() {
		truth := f.sim.Truth(i)
		a := f.account(i)
		if truth.OwnerAbsent == 0 {
			t.Fatalf("wallet %d: the simulator made no receive that leaves the wallet out", i)
		}

		// The wallet's own signatures miss them.
		walletSigs, err := ad.newSignatures(ctx, a.Address, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(walletSigs) != truth.Count-truth.OwnerAbsent {
			t.Fatalf("wallet %d: the wallet lists %d of %d transactions, %d do not list it",
				i, len(walletSigs), truth.Count, truth.OwnerAbsent)
		}
		walletListed := map[string]bool{}
		for _, s := range walletSigs {
			walletListed[s.Signature] = true
		}

		before := f.sim.Stats().ByMethod["getTransaction"]
		r := adaptertest.NewRead()
		streams := map[string]int{}
		sink := r.Sink(t, -1)
		if err := ad.History(ctx, a, r.Cursors, func(ctx context.Context, p provider.Page) error {
			streams[p.Stream] += len(p.Transactions)
			return sink(ctx, p)
		}); err != nil {
			t.Fatal(err)
		}
		checkComplete(t, r, truth)
		if r.Rows != len(r.Txs) {
			t.Errorf("wallet %d: %d rows handed for %d transactions", i, r.Rows, len(r.Txs))
		}
		if n := f.sim.Stats().ByMethod["getTransaction"] - before; n != truth.Count {
			t.Errorf("wallet %d: %d getTransaction calls for %d transactions", i, n, truth.Count)
		}
		// 1 wallet stream + 3 SPL Token accounts + 1 Token-2022 account, all with cursors.
		if len(r.Cursors) != 5 || r.Cursors[a.Address] == "" || streams[a.Address] != truth.Count-truth.OwnerAbsent {
			t.Errorf("wallet %d: cursors %v, rows per stream %v", i, r.Cursors, streams)
		}

		found, twice := map[string]bool{}, 0
		for id, tx := range r.Txs {
			if walletListed[id] {
				continue
			}
			found[id] = true
			if tx.Type != opencalico.TypeReceive || len(tx.Outputs) == 0 || len(tx.Inputs) != 0 || len(tx.Fees) != 0 {
				t.Errorf("%s: not a receive: %+v", id, tx)
			}
			for _, l := range tx.Outputs {
				if l.AssetID == SOLAssetID || r.Cursors[l.Address] == "" {
					t.Errorf("%s: not a token receive into a token account: %+v", id, l)
				}
			}
			if len(tx.Outputs) > 1 {
				twice++
			}
		}
		if twice == 0 {
			t.Errorf("wallet %d: no receive credits two token accounts at once", i)
		}
		if len(found) != truth.OwnerAbsent {
			t.Errorf("wallet %d: %d receives found through token accounts only, truth %d", i, len(found), truth.OwnerAbsent)
		}

		// A read from cursors of the wallet stream alone (those of a wallet-only reader)
		// hands over exactly the receives it missed.
		upgrade := &adaptertest.Read{Txs: map[string]*opencalico.Transaction{}, Cursors: provider.Cursors{a.Address: r.Cursors[a.Address]}}
		if err := ad.History(ctx, a, upgrade.Cursors, upgrade.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		if upgrade.Rows != truth.OwnerAbsent || !maps.Equal(mapKeys(upgrade.Txs), found) {
			t.Errorf("wallet %d: the read from the wallet cursor alone handed %d rows, want the %d missed receives",
				i, upgrade.Rows, truth.OwnerAbsent)
		}

		// A second read from the saved cursors adds nothing.
		again := &adaptertest.Read{Txs: map[string]*opencalico.Transaction{}, Cursors: maps.Clone(r.Cursors)}
		if err := ad.History(ctx, a, again.Cursors, again.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		if again.Rows != 0 || !maps.Equal(again.Cursors, r.Cursors) {
			t.Errorf("wallet %d: second read handed %d rows, cursors %v", i, again.Rows, again.Cursors)
		}
	}
	if st := f.sim.Stats(); st.RateLimited != 0 {
		t.Errorf("%d requests refused by the rate limit", st.RateLimited)
	}
}

func mapKeys(m map[string]*opencalico.Transaction) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// fingerprint is what a transaction says, to compare two reads exactly.
func fingerprint(tx *opencalico.Transaction) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s|", tx.Type, tx.Categorization.Category, tx.Status, tx.Timestamp)
	for _, l := range tx.Inputs {
		fmt.Fprintf(&b, "-%s %s %s,", l.Amount, l.AssetID, l.Address)
	}
	for _, l := range tx.Outputs {
		fmt.Fprintf(&b, "+%s %s %s,", l.Amount, l.AssetID, l.Address)
	}
	for _, f := range tx.Fees {
		fmt.Fprintf(&b, "fee %s %s %s,", f.Amount, f.AssetID, f.Kind)
	}
	return b.String()
}

// A read stopped by the sink after any number of pages, then resumed from the cursors of the
// pages accepted, hands over exactly what an uninterrupted read does: no loss, no double.
func TestResumeAtEveryPage(t *testing.T) {
	f := newFixture(t, 160)
	ad := f.adapter(Options{PageSize: 20})
	ctx := context.Background()
	a := f.account(0)
	truth := f.sim.Truth(0)

	whole := adaptertest.NewRead()
	if err := ad.History(ctx, a, whole.Cursors, whole.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, whole, truth)
	if whole.Pages < 10 || truth.OwnerAbsent == 0 {
		t.Fatalf("%d pages, %d owner-absent receives: too few to test", whole.Pages, truth.OwnerAbsent)
	}
	for k := 0; k < whole.Pages; k++ {
		r := adaptertest.NewRead()
		if err := ad.History(ctx, a, r.Cursors, r.Sink(t, k)); !errors.Is(err, adaptertest.ErrStop) {
			t.Fatalf("k=%d: got %v, want the sink's error", k, err)
		}
		if r.Pages != k {
			t.Fatalf("k=%d: %d pages accepted", k, r.Pages)
		}
		if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
			t.Fatalf("k=%d: %v", k, err)
		}
		if r.Rows != len(r.Txs) {
			t.Errorf("k=%d: %d rows handed for %d transactions (doubles)", k, r.Rows, len(r.Txs))
		}
		if len(r.Txs) != len(whole.Txs) || !maps.Equal(r.Cursors, whole.Cursors) {
			t.Errorf("k=%d: %d transactions, whole read %d; cursors %v, whole %v", k, len(r.Txs), len(whole.Txs), r.Cursors, whole.Cursors)
		}
		for id, tx := range whole.Txs {
			if got, ok := r.Txs[id]; !ok || fingerprint(got) != fingerprint(tx) {
				t.Errorf("k=%d: %s differs: %v", k, id, got)
			}
		}
	}
}

// failing answers 503 to one method (for one first parameter, "" for any) and passes the
// rest to the simulator.
func failing(next http.Handler, method, param string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Method string
			Params []json.RawMessage
		}
		_ = json.Unmarshal(body, &req)
		var first string
		if len(req.Params) > 0 {
			_ = json.Unmarshal(req.Params[0], &first)
		}
		if req.Method == method && (param == "" || first == param) {
			http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// A stream that fails ends the read in an IncompleteError naming it, after the others were
// read; the next read completes the history, without doubles.
func TestFailingStreamIsIncomplete(t *testing.T) {
	f := newFixture(t, 150)
	ctx := context.Background()
	a := f.account(0)
	truth := f.sim.Truth(0)

	// A token account that received without the wallet listed, from a reader that works.
	good := f.adapter(Options{})
	whole := adaptertest.NewRead()
	if err := good.History(ctx, a, whole.Cursors, whole.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	walletSigs, err := good.newSignatures(ctx, a.Address, "")
	if err != nil {
		t.Fatal(err)
	}
	walletListed := map[string]bool{}
	for _, s := range walletSigs {
		walletListed[s.Signature] = true
	}
	tokenAccount := ""
	for id, tx := range whole.Txs {
		if !walletListed[id] {
			tokenAccount = tx.Outputs[0].Address
			break
		}
	}
	if tokenAccount == "" {
		t.Fatal("no receive leaves the wallet out")
	}

	cases := []struct {
		name, method, param, stream string
	}{
		{"token account signatures", "getSignaturesForAddress", tokenAccount, tokenAccount},
		{"token account listing", "getTokenAccountsByOwner", "", TokenAccountsStream},
		{"wallet signatures", "getSignaturesForAddress", a.Address, a.Address},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(failing(f.sim.Handler(), c.method, c.param))
			defer srv.Close()
			bad := New(Options{BaseURL: srv.URL, Clock: f.clock, RequestsPerSecond: adapterRate, MaxAttempts: 2, BaseDelay: 1})
			r := adaptertest.NewRead()
			err := bad.History(ctx, a, r.Cursors, r.Sink(t, -1))
			var inc *provider.IncompleteError
			if !errors.As(err, &inc) || !slices.Equal(inc.Streams, []string{c.stream}) {
				t.Fatalf("got %v, want an IncompleteError naming %s", err, c.stream)
			}
			if opencalico.ErrorCodeOf(err) != opencalico.EProviderUnavailable {
				t.Errorf("code %s", opencalico.ErrorCodeOf(err))
			}
			if len(r.Txs) == 0 || len(r.Txs) >= truth.Count {
				t.Errorf("%d of %d transactions read despite the failure", len(r.Txs), truth.Count)
			}
			if err := good.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			checkComplete(t, r, truth)
			if r.Rows != len(r.Txs) {
				t.Errorf("%d rows for %d transactions", r.Rows, len(r.Txs))
			}
		})
	}
}

func TestBadCursorStream(t *testing.T) {
	f := newFixture(t, 10)
	ad := f.adapter(Options{})
	a := f.account(0)
	for _, cursors := range []provider.Cursors{
		{"not-an-address": ""},
		{a.Address: "not-a-signature"},
	} {
		err := ad.History(context.Background(), a, cursors, adaptertest.NewRead().Sink(t, -1))
		if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCursor {
			t.Errorf("%v: %v", cursors, err)
		}
	}
}
