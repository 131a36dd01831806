package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// historyCursor is where a chain's history stands: every transaction of the blocks before
// NextBlock was handed over, whole; none of NextBlock or later was.
type historyCursor struct {
	NextBlock int64 `json:"next_block"`
}

func (c historyCursor) encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// History reads the wallet's transactions not yet handed over. The account's chain is one
// stream, named by the chain, whose cursor is the next block to read.
//
// Why it is safe. A transaction's rows are spread over three lists (txlist, txlistinternal,
// tokentx) that page independently, so a transaction at the end of one list's page may have
// rows in another list's next page. The read therefore fixes an end block E (the node's head
// less the chain's confirmations, a height every list has indexed; or, when the balances
// stage hands over its tokentx list, the lower block the balances were read at: see below)
// and reads the three lists side by side: each list is known complete for the blocks before
// its "reached" block (the last block of a full page, whose remaining rows the next page
// re-reads from its start, or E+1 once a page comes back short). Only the blocks before
// B = min(reached) are complete in all three lists, and only their transactions are merged
// and handed over, with cursor B;
// rows of B and later wait in memory for the next round. Every row of a transaction is in one
// block, so no transaction is ever split by a page; a crash after any page resumes at B and
// reads again exactly the blocks not handed over, so nothing is lost or doubled. The rows of
// a re-read boundary block are recognized by their identity and kept once.
func (ad *Adapter) History(ctx context.Context, a provider.Account, from provider.Cursors, sink provider.Sink) error {
	acc, err := ad.resolve(a)
	if err != nil {
		return err
	}
	stream := acc.chain.Name
	var cur historyCursor
	if s := from[stream]; s != "" {
		if err := json.Unmarshal([]byte(s), &cur); err != nil || cur.NextBlock < 0 {
			return opencalico.Errorf(opencalico.EInvalidCursor, "ethereum: unreadable cursor of stream %s", stream)
		}
	}
	sinkFailed := false
	fail := func(err error) error {
		if sinkFailed || ctx.Err() != nil || provider.IsAuthError(err) {
			return err
		}
		return &provider.IncompleteError{Streams: []string{stream}, Err: err}
	}

	head, err := ad.headBlock(ctx, acc.chain.Name)
	if err != nil {
		return fail(err)
	}
	end := head - ad.confirmationsOf(acc.chain)
	// The tokentx list the balances stage just read, complete up to the block B it read the
	// balances at: this read stops at B rather than at its own end, so that the history
	// ends exactly where the balances were read and the two reconcile. It is safe: B was
	// the head less the confirmations when Balances ran, a moment ago, so B ≤ end (take
	// enforces it should the node's head have gone back), and every list, indexed at least
	// to end, has indexed B; the cursor is B+1 as after any read that stops at an end, and
	// the blocks after B are read by the next sync. Without a list (another process ran the
	// balances, a later sync, a resumed read) the read goes to its own end as before.
	tokenRows, handedEnd, handed := ad.tokenLists.take(acc, cur.NextBlock, end, ad.clock.Now())
	if handed {
		end = handedEnd
	}
	if cur.NextBlock > end {
		return nil // no block settled since the last read
	}

	readers := make([]*listReader, len(Actions))
	for i, action := range Actions {
		readers[i] = newListReader(ad, acc, action, cur.NextBlock, ad.offset)
		if action == ActionTokenTx && handed {
			readers[i].preload(tokenRows, end)
		}
	}
	bound := cur.NextBlock
	for bound <= end {
		for _, r := range readers {
			if !r.done && r.reached == bound {
				if err := r.fetch(ctx, end); err != nil {
					return fail(err)
				}
			}
		}
		next := end + 1
		for _, r := range readers {
			next = min(next, r.reached)
		}
		var rows []listRow
		for _, r := range readers {
			rows = append(rows, r.take(next)...)
		}
		groups := groupRows(rows)
		// The receipts come before the page is handed over, so that a page is whole and a
		// resumed read fetches exactly those of the blocks not handed over.
		if err := ad.attachReceipts(ctx, acc, groups); err != nil {
			return fail(err)
		}
		txs, err := normalizeGroups(a, acc, groups)
		if err != nil {
			return fail(err)
		}
		bound = next
		if len(txs) == 0 && bound <= end {
			continue // nothing to hand over yet; the cursor moves with the next page
		}
		page := provider.Page{Stream: stream, Cursor: historyCursor{NextBlock: bound}.encode(), Transactions: txs}
		if err := sink(ctx, page); err != nil {
			sinkFailed = true
			return err
		}
	}
	return nil
}

// groupRows merges rows by hash into transactions, in block order.
func groupRows(rows []listRow) []*Group {
	groups := map[string]*Group{}
	var order []*Group
	for _, r := range rows {
		g := groups[r.hash]
		if g == nil {
			g = &Group{Hash: r.hash}
			groups[r.hash] = g
			order = append(order, g)
		}
		switch {
		case r.normal != nil:
			g.Normal = r.normal
		case r.internal != nil:
			g.Internal = append(g.Internal, *r.internal)
		case r.token != nil:
			g.Tokens = append(g.Tokens, *r.token)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		bi, bj := order[i].Block(), order[j].Block()
		if bi != bj {
			return bi < bj
		}
		xi, xj := order[i].txIndex(), order[j].txIndex()
		if xi != xj {
			return xi < xj
		}
		return order[i].Hash < order[j].Hash
	})
	return order
}

// attachReceipts gives, on a chain with an L1 data fee, every transaction the wallet sent its
// receipt, read with eth_getTransactionReceipt in JSON-RPC batches. Other chains, and
// transactions others sent (whose fee the sender paid), need none.
func (ad *Adapter) attachReceipts(ctx context.Context, acc account, groups []*Group) error {
	if !acc.chain.L1DataFee {
		return nil
	}
	var sent []*Group
	for _, g := range groups {
		if g.Normal != nil && strings.EqualFold(g.Normal.From, acc.address) {
			sent = append(sent, g)
		}
	}
	for start := 0; start < len(sent); start += rpcBatchSize {
		batch := sent[start:min(start+rpcBatchSize, len(sent))]
		calls := make([]rpcRequest, len(batch))
		for i, g := range batch {
			calls[i] = rpcRequest{Method: "eth_getTransactionReceipt", Params: []any{g.Hash}}
		}
		res, err := ad.rpcBatch(ctx, acc.chain.Name, calls)
		if err != nil {
			return err
		}
		for i, raw := range res {
			g := batch[i]
			var r *Receipt
			if err := json.Unmarshal(raw, &r); err != nil {
				return rpcShapeErr(err)
			}
			if r == nil {
				// Etherscan listed it, so the chain has it: the node is behind or pruned.
				return &opencalico.Error{Code: opencalico.EProviderUnavailable, ProviderID: ProviderID,
					Message: fmt.Sprintf("The %s RPC endpoint has no receipt for transaction %s, whose L1 data fee it gives; the history resumes there.", acc.chain.Name, g.Hash)}
			}
			if !strings.EqualFold(r.TransactionHash, g.Hash) {
				return rpcShapeErr(fmt.Errorf("asked the receipt of %s, got that of %.70q", g.Hash, r.TransactionHash))
			}
			g.Receipt = r
		}
	}
	return nil
}

// normalizeGroups normalizes each transaction, keeping the order.
func normalizeGroups(a provider.Account, acc account, order []*Group) ([]*opencalico.Transaction, error) {
	var txs []*opencalico.Transaction
	for _, g := range order {
		t, err := Normalize(a.ConnectionID, acc.chain, acc.address, *g)
		if err != nil {
			return nil, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
				Message: fmt.Sprintf("Transaction %s has an amount or fee that is not a number, or lacks its receipt.", g.Hash), Err: err}
		}
		if t == nil {
			continue
		}
		t.UserID = a.UserID
		txs = append(txs, t)
	}
	return txs, nil
}

// listRow is a row of one of the lists, with its block and identity.
type listRow struct {
	block    int64
	hash     string
	key      string
	normal   *NormalTx
	internal *InternalTx
	token    *TokenTransfer
}

// listReader pages one list of one wallet by raising startblock, as Etherscan caps
// page × offset at 10,000: each request starts at the last block of the previous full page
// (whose rows may go on past the page) and the rows already held are recognized by key.
type listReader struct {
	ad     *Adapter
	acc    account
	action string
	offset int
	// next is the startblock of the next request; every row of the blocks before reached is
	// held (or was taken); done says the list is read to the end block.
	next, reached int64
	done          bool
	rows          []listRow
	keys          map[string]bool
}

func newListReader(ad *Adapter, acc account, action string, from int64, offset int) *listReader {
	return &listReader{ad: ad, acc: acc, action: action, offset: offset, next: from, reached: from, keys: map[string]bool{}}
}

// fetch reads the next page, and moves reached past the blocks it completes.
func (r *listReader) fetch(ctx context.Context, end int64) error {
	// seen ranks identical rows (see read); the pages of one block share it, as they are one
	// run of that block's rows.
	seen := map[string]int{}
	rows, err := r.read(ctx, r.next, end, 1, seen)
	if err != nil {
		return err
	}
	r.add(rows)
	if len(rows) < r.offset {
		r.reached, r.next, r.done = end+1, end+1, true
		return nil
	}
	if last := rows[len(rows)-1].block; last > r.next {
		r.reached, r.next = last, last
		return nil
	}
	// A whole page in one block: raising startblock cannot pass it, so the block is read on
	// its own, page after page, as far as the 10,000-row window allows.
	block := r.next
	for page := 2; ; page++ {
		if page*r.offset > MaxResultWindow {
			return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
				Message: fmt.Sprintf("Etherscan lists more than %d %s rows of the wallet in block %d, more than it can page.", MaxResultWindow, r.action, block)}
		}
		rows, err := r.read(ctx, block, block, page, seen)
		if err != nil {
			return err
		}
		r.add(rows)
		if len(rows) < r.offset {
			break
		}
	}
	r.reached, r.next = block+1, block+1
	if r.next > end {
		r.done = true
	}
	return nil
}

func (r *listReader) add(rows []listRow) {
	for _, row := range rows {
		if r.keys[row.key] {
			continue
		}
		r.keys[row.key] = true
		r.rows = append(r.rows, row)
	}
}

// preload fills the reader with rows read before, complete up to end: the list is read.
func (r *listReader) preload(rows []listRow, end int64) {
	r.add(rows)
	r.reached, r.next, r.done = end+1, end+1, true
}

// take removes and returns the rows of the blocks before bound. Their keys go too: no
// request starts before bound again.
func (r *listReader) take(bound int64) []listRow {
	var out, keep []listRow
	for _, row := range r.rows {
		if row.block < bound {
			out = append(out, row)
			delete(r.keys, row.key)
		} else {
			keep = append(keep, row)
		}
	}
	r.rows = keep
	return out
}

// read requests one page and gives each row its block and identity: the hash for txlist (a
// wallet meets a transaction once there), hash and traceId for internal transfers, hash and
// logIndex for token transfers. Where the answer lacks the index, the row's content and its
// rank among identical rows of the page stand in: a page always holds a block's rows from
// the block's start, in the same order, and the later pages of a block that fills whole
// pages go on counting in seen from where the earlier ones stopped.
func (r *listReader) read(ctx context.Context, start, end int64, page int, seen map[string]int) ([]listRow, error) {
	var rows []listRow
	identity := func(base string) string {
		n := seen[base]
		seen[base] = n + 1
		return base + "#" + strconv.Itoa(n)
	}
	block := func(s string) (int64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, r.ad.shapeErr(r.action, fmt.Errorf("block number %.20q", s))
		}
		return n, nil
	}
	switch r.action {
	case ActionTxList:
		var list []NormalTx
		if err := r.ad.etherscanList(ctx, r.acc, r.action, start, end, page, r.offset, &list); err != nil {
			return nil, err
		}
		for i := range list {
			b, err := block(list[i].BlockNumber)
			if err != nil {
				return nil, err
			}
			h := strings.ToLower(list[i].Hash)
			rows = append(rows, listRow{block: b, hash: h, key: h, normal: &list[i]})
		}
	case ActionInternal:
		var list []InternalTx
		if err := r.ad.etherscanList(ctx, r.acc, r.action, start, end, page, r.offset, &list); err != nil {
			return nil, err
		}
		for i := range list {
			x := &list[i]
			b, err := block(x.BlockNumber)
			if err != nil {
				return nil, err
			}
			h := strings.ToLower(x.Hash)
			key := h + "|" + x.TraceID
			if x.TraceID == "" {
				key = identity(strings.ToLower(h + "|" + x.From + "|" + x.To + "|" + x.Value + "|" + x.Type))
			}
			rows = append(rows, listRow{block: b, hash: h, key: key, internal: x})
		}
	case ActionTokenTx:
		var list []TokenTransfer
		if err := r.ad.etherscanList(ctx, r.acc, r.action, start, end, page, r.offset, &list); err != nil {
			return nil, err
		}
		for i := range list {
			x := &list[i]
			b, err := block(x.BlockNumber)
			if err != nil {
				return nil, err
			}
			h := strings.ToLower(x.Hash)
			key := h + "|" + x.LogIndex
			if x.LogIndex == "" {
				key = identity(strings.ToLower(h + "|" + x.ContractAddress + "|" + x.From + "|" + x.To + "|" + x.Value))
			}
			rows = append(rows, listRow{block: b, hash: h, key: key, token: x})
		}
	}
	return rows, nil
}
