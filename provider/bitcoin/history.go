package bitcoin

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// DerivationStream is the stream whose cursor records how far an extended key's chains
// were found used, so that a later read never scans less.
const DerivationStream = "derivation"

// derivationCursor is the highest used index of the receive and change chains (-1: none).
type derivationCursor struct {
	Receive int `json:"receive"`
	Change  int `json:"change"`
}

// addressCursor is where an address's stream stands: the newest confirmed transaction
// handed over and how many confirmed transactions that makes, and the unconfirmed ones
// seen, with when they were first seen (their timestamp until they confirm).
type addressCursor struct {
	Last    string           `json:"last,omitempty"`
	Count   int              `json:"count"`
	Pending map[string]int64 `json:"pending,omitempty"`
}

func (c addressCursor) encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// History reads every address of the wallet that has transactions. Each address is a
// stream. Esplora pages an address's confirmed transactions newest first, anchored on the
// last txid seen; the reader pages back until it meets the cursor's newest txid, then hands
// the new transactions over oldest first, 25 a page, each page's cursor naming its newest
// txid: a crash after any page resumes exactly there. Unconfirmed transactions are read
// again at every read until they confirm. A transaction met in several of the wallet's
// addresses is handed over once per read.
func (ad *Adapter) History(ctx context.Context, a provider.Account, from provider.Cursors, sink provider.Sink) error {
	deriv := derivationCursor{Receive: -1, Change: -1}
	if s := from[DerivationStream]; s != "" {
		if err := json.Unmarshal([]byte(s), &deriv); err != nil {
			return opencalico.Errorf(opencalico.EInvalidCursor, "bitcoin: unreadable derivation cursor")
		}
	}
	// Every stream depends on discovery: a transaction's net effect needs all of the
	// wallet's addresses. So a failed discovery fails the read.
	w, err := ad.discover(ctx, a, [2]int{deriv.Receive, deriv.Change})
	if err != nil {
		return err
	}
	if w.key != nil {
		found := derivationCursor{Receive: deriv.Receive, Change: deriv.Change}
		for _, wa := range w.addresses {
			if wa.info.ChainStats.TxCount == 0 && wa.info.MempoolStats.TxCount == 0 {
				continue
			}
			if wa.chain == 0 {
				found.Receive = max(found.Receive, wa.index)
			} else {
				found.Change = max(found.Change, wa.index)
			}
		}
		if found != deriv {
			b, _ := json.Marshal(found)
			if err := sink(ctx, provider.Page{Stream: DerivationStream, Cursor: string(b)}); err != nil {
				return err
			}
		}
	}

	r := &historyRead{ad: ad, a: a, w: w, sink: sink, handed: map[string]opencalico.TransactionStatus{}}
	var failed []string
	var firstErr error
	for _, wa := range w.addresses {
		if wa.info.ChainStats.TxCount == 0 && wa.info.MempoolStats.TxCount == 0 && from[wa.address] == "" {
			continue
		}
		if err := r.stream(ctx, wa, from[wa.address]); err != nil {
			if ctx.Err() != nil || r.sinkErr != nil || provider.IsAuthError(err) {
				return err
			}
			failed = append(failed, wa.address)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(failed) > 0 {
		return &provider.IncompleteError{Streams: failed, Err: firstErr}
	}
	return nil
}

type historyRead struct {
	ad      *Adapter
	a       provider.Account
	w       *wallet
	sink    provider.Sink
	sinkErr error
	// handed is what this read already handed over, so that a transaction touching several
	// addresses goes once (a confirmation still replaces a pending copy).
	handed map[string]opencalico.TransactionStatus
}

func (r *historyRead) emit(ctx context.Context, stream string, cur addressCursor, txs []*opencalico.Transaction) error {
	if err := r.sink(ctx, provider.Page{Stream: stream, Cursor: cur.encode(), Transactions: txs}); err != nil {
		r.sinkErr = err
		return err
	}
	for _, t := range txs {
		r.handed[t.ExternalID] = t.Status
	}
	return nil
}

// keep reports whether t is news for this read.
func (r *historyRead) keep(t *opencalico.Transaction) bool {
	if t == nil {
		return false
	}
	prev, ok := r.handed[t.ExternalID]
	return !ok || (prev == opencalico.TxPending && t.Status == opencalico.TxConfirmed)
}

func (r *historyRead) stream(ctx context.Context, wa *walletAddress, raw string) error {
	var cur addressCursor
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &cur); err != nil {
			return opencalico.Errorf(opencalico.EInvalidCursor, "bitcoin: unreadable cursor of stream %s", wa.address)
		}
	}
	stats := wa.info.ChainStats
	if stats.TxCount != cur.Count || (cur.Last == "" && stats.TxCount > 0) {
		fresh, found, err := r.newConfirmed(ctx, wa.address, cur.Last)
		if err != nil {
			return err
		}
		base := cur.Count
		if !found {
			// The cursor's transaction is gone (a reorganization) or there was none: this
			// was a read of the whole address.
			base = 0
		}
		// Oldest first, a page at a time; each page's cursor is its newest transaction.
		slices.Reverse(fresh)
		for start := 0; start < len(fresh); start += ChainPageSize {
			chunk := fresh[start:min(start+ChainPageSize, len(fresh))]
			var txs []*opencalico.Transaction
			for _, tx := range chunk {
				if t := Normalize(r.a.ConnectionID, tx, r.w.isMine, time.Time{}); r.keep(t) {
					fillAccount(t, r.a)
					txs = append(txs, t)
				}
				delete(cur.Pending, tx.TxID)
			}
			cur.Last = chunk[len(chunk)-1].TxID
			cur.Count = base + start + len(chunk)
			if err := r.emit(ctx, wa.address, cur, txs); err != nil {
				return err
			}
		}
		if len(fresh) == 0 && cur.Count != stats.TxCount {
			// Nothing new but the count moved (a reorganization dropped transactions):
			// remember the count so that the next read does not page again for nothing.
			cur.Count = stats.TxCount
			if !found {
				cur.Last, cur.Count = "", 0
			}
			if err := r.emit(ctx, wa.address, cur, nil); err != nil {
				return err
			}
		}
	}

	if wa.info.MempoolStats.TxCount == 0 && len(cur.Pending) == 0 {
		return nil
	}
	var mempool []Tx
	if wa.info.MempoolStats.TxCount > 0 {
		if err := r.ad.get(ctx, "/address/"+wa.address+"/txs/mempool", &mempool); err != nil {
			return err
		}
	}
	now := r.ad.clock.Now()
	pending := map[string]int64{}
	var txs []*opencalico.Transaction
	for _, tx := range mempool {
		if tx.Status.Confirmed {
			continue
		}
		seen, ok := cur.Pending[tx.TxID]
		if !ok {
			seen = now.Unix()
		}
		pending[tx.TxID] = seen
		if t := Normalize(r.a.ConnectionID, tx, r.w.isMine, time.Unix(seen, 0)); r.keep(t) {
			fillAccount(t, r.a)
			txs = append(txs, t)
		}
	}
	// A pending transaction that left the mempool without confirming (replaced, evicted)
	// drops out of the cursor; its row stays pending in the store (see the package report).
	cur.Pending = pending
	if len(pending) == 0 {
		cur.Pending = nil
	}
	return r.emit(ctx, wa.address, cur, txs)
}

// newConfirmed pages back from the newest confirmed transaction of address until it meets
// last (not included) or the end, and returns what it read, newest first, and whether it met
// last. Pages are anchored on a txid, so transactions confirmed meanwhile shift nothing.
func (r *historyRead) newConfirmed(ctx context.Context, address, last string) ([]Tx, bool, error) {
	var fresh []Tx
	anchor := ""
	for {
		path := "/address/" + address + "/txs/chain"
		if anchor != "" {
			path += "/" + anchor
		}
		var page []Tx
		if err := r.ad.get(ctx, path, &page); err != nil {
			return nil, false, err
		}
		for _, tx := range page {
			if last != "" && tx.TxID == last {
				return fresh, true, nil
			}
			if tx.Status.Confirmed {
				fresh = append(fresh, tx)
			}
		}
		if len(page) < ChainPageSize {
			return fresh, last == "", nil
		}
		anchor = page[len(page)-1].TxID
	}
}

func fillAccount(t *opencalico.Transaction, a provider.Account) {
	t.UserID = a.UserID
}
