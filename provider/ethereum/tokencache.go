package ethereum

import (
	"strings"
	"sync"
	"time"
)

// tokenListCache hands the tokentx list that Balances read (to find the wallet's tokens) to
// the History read that follows it, so that a sync asks Etherscan for that list once rather
// than twice: with the key's 3 calls a second shared by every wallet, it is a quarter of a
// first sync's calls.
//
// A list is kept for the blocks its read could trust: up to the head it was read at less the
// chain's confirmations (its "complete" block, the block Balances read the balances at), the
// same rule History reads by. History takes it at most tokenListTTL after it was read, and
// only once, and then stops at its complete block, so that the history ends where the
// balances were read. Anything else (another process runs the history, a later sync) reads
// from Etherscan as before.
type tokenListCache struct {
	mu    sync.Mutex
	lists map[string]cachedTokenList
}

type cachedTokenList struct {
	rows     []listRow // ascending by block, from block 0
	complete int64     // the last block whose rows are all there
	at       time.Time
}

// tokenListTTL bounds how long a list waits for its History read: the balances stage is
// followed at once by the history stage.
const tokenListTTL = 5 * time.Minute

// maxCachedTokenLists bounds the cache; past it, the oldest half of the waiting lists goes.
const maxCachedTokenLists = 1000

func tokenListKey(acc account) string { return acc.chain.Name + "/" + strings.ToLower(acc.address) }

func (c *tokenListCache) put(acc account, rows []listRow, complete int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lists == nil {
		c.lists = map[string]cachedTokenList{}
	}
	if len(c.lists) >= maxCachedTokenLists {
		for k, l := range c.lists {
			if now.Sub(l.at) > tokenListTTL/2 {
				delete(c.lists, k)
			}
		}
		if len(c.lists) >= maxCachedTokenLists {
			c.lists = map[string]cachedTokenList{}
		}
	}
	c.lists[tokenListKey(acc)] = cachedTokenList{rows: rows, complete: complete, at: now}
}

// take removes the account's list and, when it is fresh, returns its rows of blocks
// from..end with end = min(its complete block, limit), and ok. limit is the end History would
// read to without a list; a list complete beyond it (a node whose head went back) is
// trusted only as far as that.
func (c *tokenListCache) take(acc account, from, limit int64, now time.Time) (rows []listRow, end int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := tokenListKey(acc)
	l, found := c.lists[key]
	if !found {
		return nil, 0, false
	}
	delete(c.lists, key)
	if now.Sub(l.at) > tokenListTTL {
		return nil, 0, false
	}
	end = min(l.complete, limit)
	for _, r := range l.rows {
		if r.block >= from && r.block <= end {
			rows = append(rows, r)
		}
	}
	return rows, end, true
}
