// Package kraken simulates Kraken's private REST API for tests and sandbox mode: the Balance
// and Ledgers calls over a deterministic synthetic account, with Kraken's signature check,
// nonce rule, per-key rate-limit counter and error bodies, and faults injected on demand.
//
// It deliberately shares no code with the adapter (provider/kraken): the known-answer vector
// of PROVIDERS.md decides the signature on both sides.
package kraken

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// Options configure a simulator.
type Options struct {
	Seed  int64
	Clock provider.Clock // nil: the wall clock
	// Accounts is the number of seeded accounts (default 1).
	Accounts int
	// Events is the number of economic events generated per account (default 3000); most
	// are one or two ledger rows.
	Events int
	// HistoryEnd is when the generated history ends (default 2026-01-01 UTC); it begins
	// Years before (default 4).
	HistoryEnd time.Time
	Years      int
	// MaxCounter and DecayPerSecond are the per-key rate-limit counter: each call adds its
	// cost (Ledgers and TradesHistory 2, others 1), the counter decays continuously, and a
	// call that would lift it above MaxCounter fails with EAPI:Rate limit exceeded. Defaults:
	// the starter tier, 20 and 0.33.
	MaxCounter     float64
	DecayPerSecond float64
	// SlowDelay is how long a FaultSlow answer is held back, in real time (default 2 s).
	SlowDelay time.Duration
}

// Fault is a failure the simulator answers instead of the real answer.
type Fault int

// The faults.
const (
	FaultHTTP500          Fault = iota + 1 // HTTP 500
	FaultHTTP520                           // Cloudflare's 520
	FaultHTTP429                           // HTTP 429 with Retry-After: 1
	FaultRateLimit                         // EAPI:Rate limit exceeded in HTTP 200
	FaultUnavailable                       // EService:Unavailable
	FaultThrottled                         // EService:Throttled
	FaultInvalidNonce                      // EAPI:Invalid nonce
	FaultSlow                              // the answer held back for SlowDelay
	FaultTruncated                         // a valid answer cut in half
	FaultMalformed                         // an HTML error page with status 200
	FaultPermissionDenied                  // EGeneral:Permission denied (key lacks a right)
)

// Stats count what the simulator served.
type Stats struct {
	Requests        int
	ByMethod        map[string]int
	RateLimitErrors int // calls refused by the enforced counter (injected ones not counted)
	InvalidNonces   int // enforced, not injected
	InvalidSigs     int
	FaultsServed    int
}

// Simulator is a fake Kraken. It is safe for concurrent use.
type Simulator struct {
	opts     Options
	clock    provider.Clock
	mu       sync.Mutex
	accounts []*account
	byKey    map[string]*account
	faults   []queuedFault
	stats    Stats
	hook     func(method string, call int)
}

type queuedFault struct {
	method string // "" for any
	fault  Fault
}

// New generates the accounts from the seed. The same options give the same accounts, ids
// and amounts.
func New(opts Options) *Simulator {
	if opts.Accounts <= 0 {
		opts.Accounts = 1
	}
	if opts.Events <= 0 {
		opts.Events = 3000
	}
	if opts.HistoryEnd.IsZero() {
		opts.HistoryEnd = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Years <= 0 {
		opts.Years = 4
	}
	if opts.MaxCounter <= 0 {
		opts.MaxCounter = 20
	}
	if opts.DecayPerSecond <= 0 {
		opts.DecayPerSecond = 0.33
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 2 * time.Second
	}
	s := &Simulator{opts: opts, clock: opts.Clock, byKey: map[string]*account{}, stats: Stats{ByMethod: map[string]int{}}}
	if s.clock == nil {
		s.clock = provider.RealClock{}
	}
	for i := 0; i < opts.Accounts; i++ {
		rng := rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i)))
		a := &account{rng: rng, balances: map[string]decimal.Decimal{}, ids: map[string]bool{}}
		key := make([]byte, 42)
		secret := make([]byte, 64)
		for j := range key {
			key[j] = byte(rng.IntN(256))
		}
		for j := range secret {
			secret[j] = byte(rng.IntN(256))
		}
		a.apiKey = base64.StdEncoding.EncodeToString(key)
		a.secret = secret
		a.generate(opts.Events, opts.HistoryEnd.AddDate(-opts.Years, 0, 0), opts.HistoryEnd)
		s.accounts = append(s.accounts, a)
		s.byKey[a.apiKey] = a
	}
	return s
}

// Credentials returns the good credentials of each account, by the field names of the
// adapter's AuthMetaData ("api_key", "secret_key").
func (s *Simulator) Credentials() []map[string]string {
	out := make([]map[string]string, len(s.accounts))
	for i, a := range s.accounts {
		out[i] = map[string]string{"api_key": a.apiKey, "secret_key": base64.StdEncoding.EncodeToString(a.secret)}
	}
	return out
}

// Inject queues faults, served in order to the next calls of method ("Balance", "Ledgers",
// or "" for any method).
func (s *Simulator) Inject(method string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		s.faults = append(s.faults, queuedFault{method, f})
	}
}

// Revoke makes an account's key unknown, as deleting it on kraken.com does.
func (s *Simulator) Revoke(account int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[account].revoked = true
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByMethod = make(map[string]int, len(s.stats.ByMethod))
	for k, v := range s.stats.ByMethod {
		st.ByMethod[k] = v
	}
	return st
}

// OnCall sets a hook run before each authenticated call is answered, with the method and
// the number of calls of that method so far (1 for the first). Tests use it to append ledger
// rows while a read is in progress.
func (s *Simulator) OnCall(hook func(method string, call int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// Append books n new events on an account at the simulator's current time (never before the
// newest row), as new activity would during a sync.
func (s *Simulator) Append(account, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[account]
	t := tickOf(s.clock.Now())
	for i := 0; i < n; i++ {
		if last := a.rows[len(a.rows)-1].time; t <= last {
			t = last + 1
		}
		a.event(t)
	}
}

// AppendLate books one deposit whose time is age before the newest row's (age 0: the same
// instant), as a row booked late with an earlier time would be. It lands inside the window
// of a read in progress, which shifts offsets counted from the newest row.
func (s *Simulator) AppendLate(account int, age time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[account]
	a.deposit(a.rows[len(a.rows)-1].time - tick(age/(time.Second/ticksPerSecond)))
}

// Withdrawal is a withdrawal row of an account's ledger: what left (a positive amount, the
// fee apart) and when.
type Withdrawal struct {
	Amount, Fee decimal.Decimal
	Time        time.Time
}

// Withdrawals returns an account's withdrawals of asset (Kraken's code: "XXBT"), oldest first,
// so that a test or the sandbox can make a wallet receive one.
func (s *Simulator) Withdrawals(account int, asset string) []Withdrawal {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Withdrawal
	for _, r := range s.accounts[account].byTime {
		if r.typ == "withdrawal" && r.asset == asset {
			out = append(out, Withdrawal{Amount: r.amount.Neg(), Fee: r.fee,
				Time: time.Unix(0, int64(r.time)*(int64(time.Second)/ticksPerSecond)).UTC()})
		}
	}
	return out
}

// LedgerRows returns the number of ledger rows of an account.
func (s *Simulator) LedgerRows(account int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accounts[account].rows)
}

// Handler serves the private API under /0/private/.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /0/private/{method}", s.private)
	return mux
}

// costs are the counter points of each method; unknown methods cost 1.
var costs = map[string]float64{"Ledgers": 2, "TradesHistory": 2, "QueryLedgers": 2}

func writeErrors(w http.ResponseWriter, errs ...string) {
	w.Header().Set("Content-Type", "application/json")
	body, _ := json.Marshal(map[string]any{"error": errs, "result": map[string]any{}})
	_, _ = w.Write(body)
}

func (s *Simulator) private(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	body, err := readBody(r)
	if err != nil {
		writeErrors(w, "EGeneral:Invalid arguments")
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByMethod[method]++
	calls := s.stats.ByMethod[method]
	fault := s.takeFault(method)
	s.mu.Unlock()

	if fault != 0 && s.serveFault(w, r, fault, method) {
		return
	}
	if r.Context().Err() != nil {
		// The caller gave up during a slow answer; nobody reads what would follow.
		return
	}

	s.mu.Lock()
	a, code := s.authenticate(r, body)
	if code != "" {
		s.mu.Unlock()
		writeErrors(w, code)
		return
	}
	if !s.admit(a, method) {
		s.stats.RateLimitErrors++
		s.mu.Unlock()
		writeErrors(w, "EAPI:Rate limit exceeded")
		return
	}
	hook := s.hook
	s.mu.Unlock()

	if hook != nil {
		hook(method, calls)
	}

	form, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	var result any
	var errs []string
	switch method {
	case "Balance":
		result = a.balanceResult()
	case "Ledgers":
		result, errs = a.ledgersResult(form)
	default:
		errs = []string{"EGeneral:Unknown method"}
	}
	s.mu.Unlock()
	if len(errs) > 0 {
		writeErrors(w, errs...)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	out, _ := json.Marshal(map[string]any{"error": []string{}, "result": result})
	if fault == FaultTruncated {
		out = out[:len(out)/2]
	}
	_, _ = w.Write(out)
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20))
	return buf.Bytes(), err
}

// takeFault pops the first queued fault for method. The caller holds s.mu.
func (s *Simulator) takeFault(method string) Fault {
	for i, f := range s.faults {
		if f.method == "" || f.method == method {
			s.faults = slices.Delete(s.faults, i, i+1)
			s.stats.FaultsServed++
			return f.fault
		}
	}
	return 0
}

// serveFault answers with the fault, or returns false when the fault only changes how the
// real answer is delivered (slow, truncated).
func (s *Simulator) serveFault(w http.ResponseWriter, r *http.Request, f Fault, method string) bool {
	switch f {
	case FaultHTTP500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case FaultHTTP520:
		w.WriteHeader(520)
		_, _ = w.Write([]byte("<html>520: Web server is returning an unknown error</html>"))
	case FaultHTTP429:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case FaultRateLimit:
		writeErrors(w, "EAPI:Rate limit exceeded")
	case FaultUnavailable:
		writeErrors(w, "EService:Unavailable")
	case FaultThrottled:
		writeErrors(w, "EService:Throttled: 1700000000")
	case FaultInvalidNonce:
		writeErrors(w, "EAPI:Invalid nonce")
	case FaultPermissionDenied:
		writeErrors(w, "EGeneral:Permission denied")
	case FaultMalformed:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>We'll be back soon.</body></html>"))
	case FaultSlow:
		t := time.NewTimer(s.opts.SlowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		return false
	case FaultTruncated:
		return false
	default:
		return false
	}
	return true
}

// authenticate checks the key, the signature and the nonce, in Kraken's order, and returns
// the account or Kraken's error. The caller holds s.mu.
func (s *Simulator) authenticate(r *http.Request, body []byte) (*account, string) {
	a := s.byKey[r.Header.Get("API-Key")]
	if a == nil || a.revoked {
		return nil, "EAPI:Invalid key"
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, "EGeneral:Invalid arguments"
	}
	nonceText := form.Get("nonce")
	nonce, err := strconv.ParseInt(nonceText, 10, 64)
	if err != nil {
		return nil, "EAPI:Invalid nonce"
	}
	given, err := base64.StdEncoding.DecodeString(r.Header.Get("API-Sign"))
	if err != nil || !hmac.Equal(given, Sign(a.secret, r.URL.Path, nonceText, body)) {
		s.stats.InvalidSigs++
		return nil, "EAPI:Invalid signature"
	}
	if nonce <= a.lastNonce {
		s.stats.InvalidNonces++
		return nil, "EAPI:Invalid nonce"
	}
	a.lastNonce = nonce
	return a, ""
}

// Sign computes Kraken's API-Sign (before base64): HMAC-SHA512 keyed with the decoded secret
// over the URI path followed by SHA-256(nonce + POST body).
func Sign(secret []byte, path, nonce string, body []byte) []byte {
	inner := sha256.New()
	inner.Write([]byte(nonce))
	inner.Write(body)
	mac := hmac.New(sha512.New, secret)
	mac.Write([]byte(path))
	mac.Write(inner.Sum(nil))
	return mac.Sum(nil)
}

// admit applies the per-key counter: it decays continuously, and a call that would lift it
// above the maximum is refused without counting. The caller holds s.mu.
func (s *Simulator) admit(a *account, method string) bool {
	cost, ok := costs[method]
	if !ok {
		cost = 1
	}
	now := s.clock.Now()
	if !a.counterAt.IsZero() {
		a.counter -= now.Sub(a.counterAt).Seconds() * s.opts.DecayPerSecond
		if a.counter < 0 {
			a.counter = 0
		}
	}
	a.counterAt = now
	if a.counter+cost > s.opts.MaxCounter {
		return false
	}
	a.counter += cost
	return true
}

// balanceResult is Balance's result: every asset the account ever held, as Kraken lists
// them, amounts with the asset's decimals.
func (a *account) balanceResult() map[string]string {
	out := make(map[string]string, len(a.balances))
	for asset, bal := range a.balances {
		out[asset] = bal.StringFixed(assets[asset].decimals)
	}
	return out
}

// ledgerPageSize is how many rows Ledgers returns per call.
const ledgerPageSize = 50

// ledgersResult answers Ledgers: rows after start (exclusive) up to end (inclusive), of the
// given assets and type, newest first, 50 from offset ofs, with the count of all matching.
func (a *account) ledgersResult(form url.Values) (json.RawMessage, []string) {
	start, err := parseBound(form.Get("start"), -1)
	if err != nil {
		return nil, []string{"EGeneral:Invalid arguments:start"}
	}
	end, err := parseBound(form.Get("end"), 1<<62)
	if err != nil {
		return nil, []string{"EGeneral:Invalid arguments:end"}
	}
	ofs := 0
	if v := form.Get("ofs"); v != "" {
		if ofs, err = strconv.Atoi(v); err != nil || ofs < 0 {
			return nil, []string{"EGeneral:Invalid arguments:ofs"}
		}
	}
	assetFilter := map[string]bool{}
	if v := form.Get("asset"); v != "" && v != "all" {
		for _, x := range strings.Split(v, ",") {
			assetFilter[x] = true
		}
	}
	typ := form.Get("type")
	if typ == "all" {
		typ = ""
	}
	// The window (start, end] of a.byTime, by binary search; newest first is its reverse
	// (rows of one instant in reverse booking order).
	lo := sort.Search(len(a.byTime), func(i int) bool { return a.byTime[i].time > start })
	hi := max(lo, sort.Search(len(a.byTime), func(i int) bool { return a.byTime[i].time > end }))
	var page []*ledgerRow
	count := hi - lo
	if len(assetFilter) == 0 && typ == "" {
		for i := hi - 1 - ofs; i >= lo && len(page) < ledgerPageSize; i-- {
			page = append(page, a.byTime[i])
		}
	} else {
		// Filters are rare (the adapter reads every asset and type): scan the window for the
		// count of all matching rows.
		count = 0
		for i := hi - 1; i >= lo; i-- {
			row := a.byTime[i]
			if len(assetFilter) > 0 && !assetFilter[row.asset] || typ != "" && typ != row.typ {
				continue
			}
			if count >= ofs && len(page) < ledgerPageSize {
				page = append(page, row)
			}
			count++
		}
	}
	// Written by hand so that the ledger object lists rows newest first, as Kraken's does.
	var b bytes.Buffer
	b.WriteString(`{"ledger":{`)
	for i, row := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		d := assets[row.asset].decimals
		fmt.Fprintf(&b, `%q:{"refid":%q,"time":%s,"type":%q,"subtype":%q,"aclass":"currency","asset":%q,"amount":%q,"fee":%q,"balance":%q}`,
			row.id, row.refid, row.time, row.typ, row.subtype, row.asset,
			row.amount.StringFixed(d), row.fee.StringFixed(d), row.balance.StringFixed(d))
	}
	fmt.Fprintf(&b, `},"count":%d}`, count)
	return json.RawMessage(b.Bytes()), nil
}

// parseBound reads a start or end parameter: a Unix time with up to four decimals.
func parseBound(v string, def tick) (tick, error) {
	if v == "" {
		return def, nil
	}
	d, err := decimal.NewFromString(v)
	if err != nil {
		return 0, err
	}
	return tick(d.Mul(decimal.NewFromInt(ticksPerSecond)).Floor().IntPart()), nil
}
