package coinbase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// Stream is the one stream of a Coinbase connection. Its cursor holds every wallet's position
// and the rows kept for pairing.
//
// Why one stream and not one per wallet: a conversion, a buy against the USD wallet or an
// Advanced Trade fill is one row in each of two wallets and becomes one transaction. If each
// wallet had its own stored cursor, a page would advance one wallet past its half while the
// other wallet's cursor stayed behind; a crash there and the other half, read again alone,
// would later overwrite the paired transaction with a one-sided one. With every wallet's
// position in one cursor, each page's cursor is the exact state of all wallets after it.
const Stream = "wallets"

// syncState is the cursor.
//
// Wallets: per wallet id, the id of the newest row read. Rows are read with order=asc and
// starting_after=<that id>, so the next sync reads only newer rows.
//
// Held: rows kept across syncs, whole, with their wallet: (1) a half of a paired event whose
// other half has not been read yet (it joins its partner in a later sync); (2) every row of an
// event still pending: these are read again one by one (GET …/transactions/{id}) at the start
// of each sync and the event is emitted again, so pending → completed updates the same
// transaction (same ExternalID) even though the wallet cursor has moved past it.
type syncState struct {
	Wallets map[string]string `json:"wallets,omitempty"`
	Held    []row             `json:"held,omitempty"`
}

func parseState(s string) (*syncState, error) {
	st := &syncState{Wallets: map[string]string{}}
	if s == "" {
		return st, nil
	}
	if err := json.Unmarshal([]byte(s), st); err != nil {
		return nil, &opencalico.Error{Code: opencalico.EInvalidCursor, ProviderID: ID,
			Message: "The saved Coinbase cursor is unreadable; a full re-sync is needed.", Err: err}
	}
	if st.Wallets == nil {
		st.Wallets = map[string]string{}
	}
	for i := range st.Held {
		if err := st.Held[i].decode(); err != nil {
			return nil, &opencalico.Error{Code: opencalico.EInvalidCursor, ProviderID: ID,
				Message: "The saved Coinbase cursor is unreadable; a full re-sync is needed.", Err: err}
		}
	}
	return st, nil
}

// group is the rows of one event.
type group struct {
	key    string
	paired bool
	rows   []*row
	hold   bool // not emitted in this sync: waiting for its other half
	tx     *opencalico.Transaction
	page   int // the page it is emitted in, 1-based; 0 if not (yet)
}

func (g *group) wire() []*wireTx {
	out := make([]*wireTx, len(g.rows))
	for i, r := range g.rows {
		out[i] = &r.tx
	}
	return out
}

// fatal reports errors that end the whole read: bad credentials, a cancelled context.
func fatal(ctx context.Context, err error) bool {
	return provider.IsAuthError(err) || ctx.Err() != nil
}

// History reads every wallet's new rows, refreshes pending events, pairs the halves of
// paired events across wallets, and emits the events in time order, page by page, each page
// carrying the full state after it.
func (a *Adapter) History(ctx context.Context, acct provider.Account, from provider.Cursors, sink provider.Sink) error {
	auth, err := newAuthorizer(acct.Credentials, a.nonce)
	if err != nil {
		return err
	}
	prevCursor := from[Stream]
	state, err := parseState(prevCursor)
	if err != nil {
		return err
	}
	wallets, err := a.accounts(ctx, auth)
	if err != nil {
		return err
	}
	failed := map[string]error{}
	names := map[string]string{}
	for _, w := range wallets {
		names[w.ID] = "wallet:" + w.Currency.Code + ":" + w.ID
	}

	// Read every wallet's new rows first: pairing needs them all.
	newRows := map[string][]*row{}
	for _, w := range wallets {
		rows, err := a.readWallet(ctx, auth, w.ID, state.Wallets[w.ID])
		newRows[w.ID] = rows
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			failed[w.ID] = err
		}
	}
	fresh := map[string]bool{}
	for w, rows := range newRows {
		for _, r := range rows {
			fresh[w+"/"+r.tx.ID] = true
		}
	}

	// Held rows: refresh the pending ones; drop those read again as new rows.
	var held []*row
	for i := range state.Held {
		r := &state.Held[i]
		if fresh[r.Wallet+"/"+r.tx.ID] {
			continue
		}
		if statusOf([]*wireTx{&r.tx}) == opencalico.TxPending {
			if err := a.refresh(ctx, auth, r); err != nil {
				if fatal(ctx, err) {
					return err
				}
				failed[r.Wallet] = err
			}
		}
		held = append(held, r)
	}

	// Group rows into events.
	groups := map[string]*group{}
	var order []*group
	groupOf := map[*row]*group{}
	add := func(r *row) {
		key, paired := groupKey(&r.tx)
		g, ok := groups[key]
		if !ok {
			g = &group{key: key, paired: paired}
			groups[key] = g
			order = append(order, g)
		}
		g.rows = append(g.rows, r)
		groupOf[r] = g
	}
	for _, r := range held {
		add(r)
	}
	for _, w := range wallets {
		for _, r := range newRows[w.ID] {
			add(r)
		}
	}

	// Decide for each event: emit, or hold for its other half. A lone half is held while it
	// is young or while some wallet could not be read (its partner may be there); past the
	// grace period it is reported alone, since none is coming (a card buy has no fiat row).
	now := a.clock.Now()
	var events []*group
	for _, g := range order {
		txs := g.wire()
		if g.paired && !complete(txs) && (len(failed) > 0 || now.Sub(earliest(txs)) < a.grace) {
			g.hold = true
			continue
		}
		t, err := normalize(txs)
		if err != nil {
			// Kept, never dropped: the event is visible as uncategorized, and the wallet is
			// reported incomplete.
			t = unreadable(txs)
			if _, ok := failed[g.rows[0].Wallet]; !ok {
				failed[g.rows[0].Wallet] = err
			}
		}
		t.ConnectionID, t.UserID = acct.ConnectionID, acct.UserID
		g.tx = t
		events = append(events, g)
	}
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i].tx, events[j].tx
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.Before(b.Timestamp)
		}
		return a.ExternalID < b.ExternalID
	})

	isHeld := map[*row]bool{}
	for _, r := range held {
		isHeld[r] = true
	}
	// stateAfter computes the cursor once the events of pages 1..k are emitted.
	stateAfter := func(k int) (string, error) {
		st := syncState{Wallets: map[string]string{}}
		for w, id := range state.Wallets {
			st.Wallets[w] = id
		}
		inPrefix := map[*row]bool{}
		for _, w := range wallets {
			for _, r := range newRows[w.ID] {
				g := groupOf[r]
				if !g.hold && (g.page == 0 || g.page > k) {
					break
				}
				inPrefix[r] = true
				st.Wallets[w.ID] = r.tx.ID
			}
		}
		for _, g := range order {
			emitted := g.page > 0 && g.page <= k
			settled := emitted && g.tx.Status != opencalico.TxPending
			for _, r := range g.rows {
				if !isHeld[r] && !inPrefix[r] {
					settled = false
				}
			}
			if settled {
				continue
			}
			for _, r := range g.rows {
				if isHeld[r] || inPrefix[r] || emitted {
					st.Held = append(st.Held, row{Wallet: r.Wallet, Raw: r.Raw})
				}
			}
		}
		b, err := json.Marshal(st)
		return string(b), err
	}

	pages := 0
	for start := 0; start < len(events); start += a.eventsPerPage {
		pages++
		chunk := events[start:min(start+a.eventsPerPage, len(events))]
		txs := make([]*opencalico.Transaction, len(chunk))
		for i, g := range chunk {
			g.page = pages
			txs[i] = g.tx
		}
		cur, err := stateAfter(pages)
		if err != nil {
			return err
		}
		if err := sink(ctx, provider.Page{Stream: Stream, Cursor: cur, Transactions: txs}); err != nil {
			return err
		}
	}
	if pages == 0 {
		cur, err := stateAfter(0)
		if err != nil {
			return err
		}
		if cur != prevCursor && (prevCursor != "" || cur != "{}") {
			if err := sink(ctx, provider.Page{Stream: Stream, Cursor: cur}); err != nil {
				return err
			}
		}
	}

	if len(failed) > 0 {
		var streams []string
		var errs []error
		for w, err := range failed {
			name := names[w]
			if name == "" {
				name = "wallet:" + w
			}
			streams = append(streams, name)
			errs = append(errs, err)
		}
		sort.Strings(streams)
		return &provider.IncompleteError{Streams: streams, Err: errors.Join(errs...)}
	}
	return nil
}

// readWallet reads a wallet's rows after the cursor, oldest first, following next_uri. On
// error it returns the rows read so far: they are a prefix, safe to keep.
func (a *Adapter) readWallet(ctx context.Context, auth authorizer, walletID, after string) ([]*row, error) {
	q := url.Values{"limit": {fmt.Sprint(a.pageLimit)}, "order": {"asc"}}
	if after != "" {
		q.Set("starting_after", after)
	}
	next := txPath(walletID) + "?" + q.Encode()
	var out []*row
	for next != "" {
		var p struct {
			Pagination pagination        `json:"pagination"`
			Data       []json.RawMessage `json:"data"`
		}
		if err := a.get(ctx, auth, next, &p); err != nil {
			return out, err
		}
		for _, raw := range p.Data {
			r := &row{Wallet: walletID, Raw: raw}
			if err := r.decode(); err != nil || r.tx.ID == "" {
				return out, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
					Message: "Coinbase answered a transaction in an unexpected format.", Err: err}
			}
			out = append(out, r)
		}
		n := nextURI(p.Pagination)
		if n != "" && !strings.HasPrefix(n, "/") {
			return out, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
				Message: "Coinbase answered an unexpected next_uri."}
		}
		next = n
	}
	return out, nil
}

// refresh reads a held pending row again. A row Coinbase no longer shows was cancelled.
func (a *Adapter) refresh(ctx context.Context, auth authorizer, r *row) error {
	var one struct {
		Data json.RawMessage `json:"data"`
	}
	err := a.get(ctx, auth, txPath(r.Wallet)+"/"+url.PathEscape(r.tx.ID), &one)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		r.tx.Status = "canceled"
		raw, err := json.Marshal(r.tx)
		if err != nil {
			return err
		}
		r.Raw = raw
		return nil
	}
	if err != nil {
		return err
	}
	nr := row{Wallet: r.Wallet, Raw: one.Data}
	if err := nr.decode(); err != nil || nr.tx.ID != r.tx.ID {
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
			Message: "Coinbase answered a transaction in an unexpected format.", Err: err}
	}
	*r = nr
	return nil
}
