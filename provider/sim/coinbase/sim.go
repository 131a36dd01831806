// Package coinbase simulates the Coinbase v2 API for tests and sandbox mode: CDP key JWTs
// verified exactly, wallets and their transactions with Coinbase's paging, the per-key rate
// limit, and faults on demand. It does not import the adapter: the two must not share a
// misunderstanding.
package coinbase

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// Options configure a Simulator.
type Options struct {
	Seed  int64
	Clock provider.Clock // default: the wall clock
	// Accounts is the number of seeded users, each with its own CDP key (default 1). Even
	// accounts get an ES256 key, odd ones an Ed25519 key.
	Accounts int
	// Events per account (default 3000), spread over Years (default 4) before the clock's now.
	Events int
	Years  int
	// Pending is the number of the newest rows of each account left pending (default 4),
	// until Settle.
	Pending int
	// RateLimit requests per RateWindow per key (default 10,000 per hour), counted over a
	// sliding window.
	RateLimit  int
	RateWindow time.Duration
	// Skew is the clock skew allowed on a JWT's nbf and exp (default 5 s).
	Skew time.Duration
}

// Stats count what the simulator saw.
type Stats struct {
	Requests    int
	RateLimited int // 429 rate_limit_exceeded answers from the enforced limit (not injected)
	AuthFailed  int
	Faults      int
}

// Simulator is a fake Coinbase. It is safe for concurrent use.
type Simulator struct {
	opts  Options
	clock provider.Clock

	mu      sync.Mutex
	users   []*user
	byKey   map[string]*user
	revoked map[string]bool
	nonces  map[string]time.Time // kid|nonce → when it may be forgotten
	window  map[string][]time.Time
	faults  []*Fault
	stats   Stats
	gens    []*generator
	oauth   *oauthState // OAuth2 clients, grants and tokens (oauth.go)
}

type user struct {
	id, name string
	keyName  string
	public   crypto.PublicKey
	alg      string
	secret   string
	wallets  []*wallet
}

type wallet struct {
	id, code, name, typ string
	created             time.Time
	txs                 []*tx
	byID                map[string]*tx
}

func (w *wallet) add(t *tx) {
	w.txs = append(w.txs, t)
	w.byID[t.ID] = t
}

// sortTxs keeps a wallet oldest first, the order the listing pages from.
func (w *wallet) sortTxs() {
	sort.SliceStable(w.txs, func(i, j int) bool { return w.txs[i].CreatedAt.Before(w.txs[j].CreatedAt) })
}

func (u *user) wallet(code string) *wallet {
	for _, w := range u.wallets {
		if w.code == code {
			return w
		}
	}
	panic("sim: no wallet " + code)
}

// balance is the net of the wallet's history: the figure reconciliation checks.
func (w *wallet) balance() decimal.Decimal {
	sum := decimal.Zero
	for _, t := range w.txs {
		if t.counts() {
			sum = sum.Add(t.amount)
		}
	}
	return sum
}

// New builds a simulator and its seeded accounts.
func New(opts Options) *Simulator {
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Accounts <= 0 {
		opts.Accounts = 1
	}
	if opts.Events <= 0 {
		opts.Events = 3000
	}
	if opts.Years <= 0 {
		opts.Years = 4
	}
	if opts.Pending < 0 {
		opts.Pending = 0
	} else if opts.Pending == 0 {
		opts.Pending = 4
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 10000
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Hour
	}
	if opts.Skew <= 0 {
		opts.Skew = 5 * time.Second
	}
	s := &Simulator{opts: opts, clock: opts.Clock, byKey: map[string]*user{}, revoked: map[string]bool{},
		nonces: map[string]time.Time{}, window: map[string][]time.Time{}, oauth: newOAuthState()}
	now := s.clock.Now().UTC()
	start := now.AddDate(-opts.Years, 0, 0)
	for i := range opts.Accounts {
		rng := mrand.New(mrand.NewPCG(uint64(opts.Seed), uint64(i)+1))
		g := &generator{rng: rng, balance: map[string]decimal.Decimal{}}
		u := &user{}
		g.u = u
		u.id = g.id()
		u.name = fmt.Sprintf("Sim User %d", i+1)
		u.keyName = "organizations/" + g.id() + "/apiKeys/" + g.id()
		if i%2 == 0 {
			u.alg = "ES256"
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			der, err := x509.MarshalECPrivateKey(key)
			if err != nil {
				panic(err)
			}
			u.secret = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
			u.public = key.Public()
		} else {
			u.alg = "EdDSA"
			seed := make([]byte, ed25519.SeedSize)
			for j := range seed {
				seed[j] = byte(rng.Uint32())
			}
			key := ed25519.NewKeyFromSeed(seed)
			u.secret = base64.StdEncoding.EncodeToString(key)
			u.public = key.Public()
		}
		for _, a := range assets {
			typ := "wallet"
			if a.code == "USD" {
				typ = "fiat"
			}
			u.wallets = append(u.wallets, &wallet{id: g.id(), code: a.code, name: a.code + " Wallet", typ: typ,
				created: start, byID: map[string]*tx{}})
		}
		g.generate(opts.Events, start, now.Add(-time.Hour))
		s.markPending(u, opts.Pending)
		for _, w := range u.wallets {
			w.sortTxs()
		}
		s.users = append(s.users, u)
		s.gens = append(s.gens, g)
		s.byKey[u.keyName] = u
	}
	return s
}

// markPending leaves the newest n sends and deposits of a user pending: they already move the
// balance, as Coinbase's do, and change status on Settle.
func (s *Simulator) markPending(u *user, n int) {
	var all []*tx
	for _, w := range u.wallets {
		for _, t := range w.txs {
			if t.Status == "completed" && (t.Type == "send" || t.Type == "fiat_deposit" || t.Type == "receive") {
				all = append(all, t)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].CreatedAt.After(all[j].CreatedAt) })
	for _, t := range all[:min(n, len(all))] {
		t.Status = "pending"
		if t.Network != nil {
			t.Network.Status = "pending"
		}
	}
}

// Credentials are the good credentials of each seeded account, by the adapter's field names.
func (s *Simulator) Credentials() []map[string]string {
	out := make([]map[string]string, len(s.users))
	for i, u := range s.users {
		out[i] = map[string]string{"api_key": u.keyName, "secret_key": u.secret}
	}
	return out
}

// Revoke makes an account's key answer 401 from now on.
func (s *Simulator) Revoke(account int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[s.users[account].keyName] = true
}

// Settle completes every pending row (pending → completed, same id, new updated_at).
func (s *Simulator) Settle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	now := s.clock.Now().UTC()
	for _, u := range s.users {
		for _, w := range u.wallets {
			for _, t := range w.txs {
				if t.Status == "pending" {
					t.Status, t.UpdatedAt = "completed", now
					if t.Network != nil {
						t.Network.Status = "confirmed"
					}
					n++
				}
			}
		}
	}
	return n
}

// AddActivity books n more events for an account at the clock's now (new rows for an
// incremental sync; conversions and fills among them pair across wallets as usual).
func (s *Simulator) AddActivity(account, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gens[account]
	now := s.clock.Now().UTC()
	g.generate(n, now.Add(-time.Minute), now)
	for _, w := range g.u.wallets {
		w.sortTxs()
	}
}

// Balances returns an account's balances by currency (non-zero only): the net of its history.
func (s *Simulator) Balances(account int) map[string]decimal.Decimal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]decimal.Decimal{}
	for _, w := range s.users[account].wallets {
		if b := w.balance(); !b.IsZero() {
			out[w.code] = b
		}
	}
	return out
}

// Rows counts an account's rows of each Coinbase type.
func (s *Simulator) Rows(account int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, w := range s.users[account].wallets {
		for _, t := range w.txs {
			out[t.Type]++
		}
	}
	return out
}

// Stats returns the counters so far.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// FaultKind is a failure the simulator can be told to produce.
type FaultKind int

// The faults.
const (
	Fault5xx        FaultKind = iota + 1 // 503 with an HTML body, as a load balancer answers
	Fault429                             // 429 rate_limit_exceeded with Retry-After: 1
	FaultSlow                            // answer after Delay
	FaultTruncated                       // a 200 whose body stops half-way
	FaultMalformed                       // a 200 whose body is not JSON
	FaultExpiredJWT                      // 401 as if the JWT had expired (Coinbase: clock skew)
)

// Fault is an injected failure: the next Times requests whose path starts with Path ("" for
// any) get Kind.
type Fault struct {
	Kind  FaultKind
	Path  string
	Times int
	Delay time.Duration
}

// Inject queues a fault.
func (s *Simulator) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// takeFault returns the first queued fault matching path, using one of its times.
func (s *Simulator) takeFault(path string) *Fault {
	for i, f := range s.faults {
		if f.Path == "" || len(path) >= len(f.Path) && path[:len(f.Path)] == f.Path {
			f.Times--
			if f.Times <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			c := *f
			return &c
		}
	}
	return nil
}
