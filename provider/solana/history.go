package solana

import (
	"context"
	"slices"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// History reads the wallet's finalized transactions not yet handed over. The wallet is one
// stream, named by its address, whose cursor is the newest signature handed over. The
// signatures are paged newest first with `before` down to the cursor (`until`), then their
// transactions are fetched and handed over oldest first, TxsPerPage a page, each page's
// cursor naming its newest signature: a crash after any page resumes exactly there.
// Signatures are stable anchors, so transactions finalized meanwhile shift nothing.
func (ad *Adapter) History(ctx context.Context, a provider.Account, from provider.Cursors, sink provider.Sink) error {
	addr, err := resolveAccount(a)
	if err != nil {
		return err
	}
	stream := addr
	until := from[stream]
	if until != "" {
		if raw, err := base58Decode(until); err != nil || len(raw) != 64 {
			return opencalico.Errorf(opencalico.EInvalidCursor, "solana: the cursor of stream %s is not a signature", stream)
		}
	}
	sinkFailed := false
	fail := func(err error) error {
		if sinkFailed || ctx.Err() != nil || provider.IsAuthError(err) {
			return err
		}
		return &provider.IncompleteError{Streams: []string{stream}, Err: err}
	}

	sigs, err := ad.newSignatures(ctx, addr, until)
	if err != nil {
		return fail(err)
	}
	slices.Reverse(sigs)
	for start := 0; start < len(sigs); start += TxsPerPage {
		chunk := sigs[start:min(start+TxsPerPage, len(sigs))]
		var txs []*opencalico.Transaction
		for _, s := range chunk {
			var tx *Tx
			params := []any{s.Signature, map[string]any{"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0, "commitment": "finalized"}}
			if err := ad.call(ctx, "getTransaction", params, &tx); err != nil {
				return fail(err)
			}
			if tx == nil || tx.Meta == nil {
				// Listed as finalized but not served: a node missing the slot. Stop here, so
				// that the cursor does not pass it; the next read asks again.
				return fail(opencalico.Errorf(opencalico.EProviderUnavailable, "solana: transaction %s is not available from the RPC endpoint", s.Signature))
			}
			if tx.BlockTime == nil {
				tx.BlockTime = s.BlockTime
			}
			if t := Normalize(a.ConnectionID, addr, s.Signature, tx); t != nil {
				t.UserID = a.UserID
				txs = append(txs, t)
			}
		}
		page := provider.Page{Stream: stream, Cursor: chunk[len(chunk)-1].Signature, Transactions: txs}
		if err := sink(ctx, page); err != nil {
			sinkFailed = true
			return err
		}
	}
	return nil
}

// newSignatures pages the wallet's finalized signatures newest first, from the newest down to
// until (excluded; "" for all), and returns them newest first.
func (ad *Adapter) newSignatures(ctx context.Context, addr, until string) ([]SignatureInfo, error) {
	var all []SignatureInfo
	before := ""
	for {
		opts := map[string]any{"limit": ad.sigLimit, "commitment": "finalized"}
		if before != "" {
			opts["before"] = before
		}
		if until != "" {
			opts["until"] = until
		}
		var page []SignatureInfo
		if err := ad.call(ctx, "getSignaturesForAddress", []any{addr, opts}, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < ad.sigLimit {
			return all, nil
		}
		before = page[len(page)-1].Signature
	}
}
