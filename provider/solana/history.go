package solana

import (
	"context"
	"slices"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// TokenAccountsStream names, in an IncompleteError, the listing of the wallet's token
// accounts (getTokenAccountsByOwner): when it fails, token accounts not read before are
// missing from the read.
const TokenAccountsStream = "token-accounts"

// History reads the wallet's finalized transactions not yet handed over.
//
// A node lists a transaction for an address iff the address is among the transaction's
// account keys. A token transfer into an existing token account names that account, not
// its owner, so the wallet's own signatures miss such receives. The read therefore has one
// stream per address: the wallet, named by its address, and each token account it owns (SPL
// Token and Token-2022, and those read before, still in the cursors: a closed account's
// history stays readable), named by the token account's address. A stream's cursor is the
// newest signature of that address handed over.
//
// Each stream's signatures are paged newest first with `before` down to its cursor
// (`until`); then each stream, the wallet first, fetches its transactions and hands them over
// oldest first, PageSize signatures a page, the page's cursor naming the newest one: a crash
// after any page resumes exactly there.
//
// A transaction several streams list is handed over by one of them only, its owner: the
// wallet when the wallet is among its keys, else the first (by address) of the wallet's
// token accounts among them. The others pass it by, so that it is one transaction, handed
// once. This holds across interrupted reads too: the owner hands over every transaction of
// its own history newer than its cursor, whatever the other streams' cursors are. Within one
// read, a transaction is fetched once: one the wallet lists is passed by without a fetch,
// and one several token accounts list is kept until the last of them has passed.
//
// Streams fail on their own: the others are read to the end, then an IncompleteError names
// the failed ones; a failed owner hands its transactions over at the next read.
func (ad *Adapter) History(ctx context.Context, a provider.Account, from provider.Cursors, sink provider.Sink) error {
	addr, err := resolveAccount(a)
	if err != nil {
		return err
	}
	for stream, cursor := range from {
		if stream != addr {
			if _, err := ValidateAddress(stream); err != nil {
				return opencalico.Errorf(opencalico.EInvalidCursor, "solana: the cursor stream %q is neither the wallet nor a token account", stream)
			}
		}
		if cursor != "" {
			if raw, err := base58Decode(cursor); err != nil || len(raw) != 64 {
				return opencalico.Errorf(opencalico.EInvalidCursor, "solana: the cursor of stream %s is not a signature", stream)
			}
		}
	}

	r := &historyRead{ad: ad, account: a, wallet: addr, sink: sink,
		listed: map[string][]SignatureInfo{}, walletListed: map[string]bool{}, pending: map[string]int{}, cache: map[string]*Tx{}}
	fail := func(stream string, err error) error {
		if ctx.Err() != nil || provider.IsAuthError(err) {
			return err
		}
		r.failed = append(r.failed, stream)
		if r.firstErr == nil {
			r.firstErr = err
		}
		return nil
	}

	// The wallet's signatures first: a failing node is then reported against the wallet.
	sigs, err := ad.newSignatures(ctx, addr, from[addr])
	if err != nil {
		if err := fail(addr, err); err != nil {
			return err
		}
	} else {
		r.listed[addr] = sigs
		for _, s := range sigs {
			r.walletListed[s.Signature] = true
		}
	}

	// The token accounts: owned now, or read before.
	known := map[string]bool{}
	for stream := range from {
		if stream != addr {
			known[stream] = true
		}
	}
	accounts, err := ad.tokenAccounts(ctx, addr)
	if err != nil {
		if err := fail(TokenAccountsStream, err); err != nil {
			return err
		}
	}
	for _, acc := range accounts {
		if acc.Pubkey != addr {
			known[acc.Pubkey] = true
		}
	}
	for k := range known {
		r.tokenStreams = append(r.tokenStreams, k)
	}
	slices.Sort(r.tokenStreams)
	for _, stream := range r.tokenStreams {
		sigs, err := ad.newSignatures(ctx, stream, from[stream])
		if err != nil {
			if err := fail(stream, err); err != nil {
				return err
			}
			continue
		}
		r.listed[stream] = sigs
		for _, s := range sigs {
			r.pending[s.Signature]++
		}
	}

	for _, stream := range append([]string{addr}, r.tokenStreams...) {
		sigs, ok := r.listed[stream]
		if !ok {
			continue
		}
		if err := r.readStream(ctx, stream, sigs); err != nil {
			if r.sinkFailed {
				return err
			}
			if err := fail(stream, err); err != nil {
				return err
			}
		}
	}
	if len(r.failed) > 0 {
		return &provider.IncompleteError{Streams: r.failed, Err: r.firstErr}
	}
	return nil
}

// historyRead is the state of one History call.
type historyRead struct {
	ad           *Adapter
	account      provider.Account
	wallet       string
	sink         provider.Sink
	tokenStreams []string                   // sorted: the order that picks an owner
	listed       map[string][]SignatureInfo // per stream listed, its new signatures, newest first
	walletListed map[string]bool            // the wallet's new signatures
	// pending counts, per signature, the token streams yet to pass it; cache keeps a
	// transaction a token stream fetched until the last of them has passed.
	pending    map[string]int
	cache      map[string]*Tx
	failed     []string
	firstErr   error
	sinkFailed bool
}

// owner is the stream that hands a transaction over: the wallet if among its keys, else the
// first of the token streams among them; "" if none is (a node listing by other rules: the
// stream reading it then keeps it, rather than losing it).
func (r *historyRead) owner(tx *Tx) string {
	keys := make(map[string]bool, len(tx.Transaction.Message.AccountKeys))
	for _, k := range tx.Transaction.Message.AccountKeys {
		keys[k.Pubkey] = true
	}
	if keys[r.wallet] {
		return r.wallet
	}
	for _, s := range r.tokenStreams {
		if keys[s] {
			return s
		}
	}
	return ""
}

// readStream hands over a stream's transactions oldest first, those it owns, a page per
// PageSize signatures.
func (r *historyRead) readStream(ctx context.Context, stream string, sigs []SignatureInfo) error {
	isWallet := stream == r.wallet
	for end := len(sigs); end > 0; end -= r.ad.pageSize {
		chunk := sigs[max(0, end-r.ad.pageSize):end] // newest first
		var txs []*opencalico.Transaction
		for i := len(chunk) - 1; i >= 0; i-- {
			s := chunk[i]
			if !isWallet && r.walletListed[s.Signature] {
				// Among the wallet's keys, hence the wallet's: no fetch needed.
				r.pending[s.Signature]--
				continue
			}
			tx, err := r.transaction(ctx, s, isWallet)
			if err != nil {
				return err
			}
			if owner := r.owner(tx); !isWallet && owner != "" && owner != stream {
				continue
			}
			if t := Normalize(r.account.ConnectionID, r.wallet, s.Signature, tx); t != nil {
				t.UserID = r.account.UserID
				txs = append(txs, t)
			}
		}
		page := provider.Page{Stream: stream, Cursor: chunk[0].Signature, Transactions: txs}
		if err := r.sink(ctx, page); err != nil {
			r.sinkFailed = true
			return err
		}
	}
	return nil
}

// transaction fetches a listed transaction, or takes it from the cache of those that other
// token streams list too.
func (r *historyRead) transaction(ctx context.Context, s SignatureInfo, isWallet bool) (*Tx, error) {
	if !isWallet {
		r.pending[s.Signature]--
		if tx, ok := r.cache[s.Signature]; ok {
			if r.pending[s.Signature] <= 0 {
				delete(r.cache, s.Signature)
			}
			return tx, nil
		}
	}
	var tx *Tx
	params := []any{s.Signature, map[string]any{"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0, "commitment": "finalized"}}
	if err := r.ad.call(ctx, "getTransaction", params, &tx); err != nil {
		return nil, err
	}
	if tx == nil || tx.Meta == nil {
		// Listed as finalized but not served: a node missing the slot. The stream stops
		// here, so that its cursor does not pass it; the next read asks again.
		return nil, opencalico.Errorf(opencalico.EProviderUnavailable, "solana: transaction %s is not available from the RPC endpoint", s.Signature)
	}
	if tx.BlockTime == nil {
		tx.BlockTime = s.BlockTime
	}
	if !isWallet && r.pending[s.Signature] > 0 {
		r.cache[s.Signature] = tx
	}
	return tx, nil
}

// newSignatures pages an address's finalized signatures newest first, from the newest down
// to until (excluded; "" for all), and returns them newest first.
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
