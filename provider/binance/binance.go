// Package binance reads a Binance spot account with a read-only API key: balances from
// /api/v3/account, trades from /api/v3/myTrades (per symbol), and deposits and withdrawals
// from the capital history endpoints. Requests are signed with HMAC-SHA256 and drawn from a
// per-IP weight budget shared by every account of the process (see WeightLimiter).
package binance

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// ID is the provider id.
const ID opencalico.ProviderID = "binance"

// DefaultBaseURL is Binance's production API.
const DefaultBaseURL = "https://api.binance.com"

// Options configure an adapter.
type Options struct {
	// BaseURL defaults to provider.BaseURL(ID, DefaultBaseURL).
	BaseURL string
	HTTP    *http.Client
	Clock   provider.Clock

	// Limiter is the weight budget. Nil makes one for this adapter; pass the same limiter
	// to adapters that share an egress IP.
	Limiter *WeightLimiter
	// WeightPerMinute is Binance's per-IP limit (default 6000) and WeightReserve the part of
	// it left for other users of the IP (default 0: the limiter already counts every request
	// in each minute the server may count it in); they size a limiter made here.
	WeightPerMinute int
	WeightReserve   int
	// LimitKey names the egress address whose budget calls draw from (default "default").
	LimitKey string

	// RecvWindow is how long, in milliseconds, a signed request stays valid (default 10000,
	// at most 60000).
	RecvWindow int
	// HistoryStart is where a first history read begins (default 2017-07-01, Binance's
	// launch).
	HistoryStart time.Time
	// MaxAttempts, BaseDelay and AttemptTimeout tune the client's retries.
	MaxAttempts    int
	BaseDelay      time.Duration
	AttemptTimeout time.Duration
}

// Adapter reads Binance accounts. It is safe for concurrent use by many accounts.
type Adapter struct {
	baseURL      string
	client       *provider.Client
	clock        provider.Clock
	limiter      *WeightLimiter
	limitKey     string
	recvWindow   int
	historyStart time.Time

	mu       sync.Mutex
	offset   time.Duration // server time − local time
	syncedAt time.Time     // zero: never synced
}

// offsetTTL is how long a measured clock offset is trusted before it is measured again.
const offsetTTL = 30 * time.Minute

// New returns an adapter.
func New(opts Options) *Adapter {
	if opts.BaseURL == "" {
		opts.BaseURL = provider.BaseURL(ID, DefaultBaseURL)
	}
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Limiter == nil {
		opts.Limiter = NewWeightLimiter(opts.Clock, opts.WeightPerMinute, opts.WeightReserve)
	}
	if opts.LimitKey == "" {
		opts.LimitKey = "default"
	}
	if opts.RecvWindow <= 0 || opts.RecvWindow > 60000 {
		opts.RecvWindow = 10000
	}
	if opts.HistoryStart.IsZero() {
		opts.HistoryStart = time.Date(2017, 7, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Adapter{
		baseURL: strings.TrimRight(opts.BaseURL, "/"),
		client: &provider.Client{
			HTTP:           opts.HTTP,
			Limiter:        opts.Limiter,
			Classify:       classify,
			Clock:          opts.Clock,
			MaxAttempts:    opts.MaxAttempts,
			BaseDelay:      opts.BaseDelay,
			AttemptTimeout: opts.AttemptTimeout,
			ProviderID:     ID,
		},
		clock:        opts.Clock,
		limiter:      opts.Limiter,
		limitKey:     opts.LimitKey,
		recvWindow:   opts.RecvWindow,
		historyStart: opts.HistoryStart.UTC(),
	}
}

// Provider returns the catalog entry.
func (a *Adapter) Provider() opencalico.Provider {
	return opencalico.Provider{
		ID:        ID,
		Name:      "Binance",
		Kind:      opencalico.KindExchange,
		LogoURL:   "https://public.bnbstatic.com/static/images/common/favicon.ico",
		AuthTypes: []opencalico.AuthType{opencalico.AuthAPIKey},
		AuthMetaData: []opencalico.AuthMetaData{{
			AuthType: opencalico.AuthAPIKey,
			Fields: []opencalico.AuthField{
				{Name: "api_key", Label: "API Key", Secret: false},
				{Name: "secret_key", Label: "Secret Key", Secret: true},
			},
			// Binance's guide to creating an API key; only "Enable Reading" is needed.
			HelpURL: "https://www.binance.com/en/support/faq/how-to-create-api-keys-on-binance-360002502072",
		}},
	}
}

// keys are an account's opened credentials.
type keys struct{ apiKey, secret string }

func credentials(acc provider.Account) (keys, error) {
	k := keys{apiKey: acc.Credentials["api_key"], secret: acc.Credentials["secret_key"]}
	if k.apiKey == "" || k.secret == "" {
		return keys{}, &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "A Binance connection needs an API key and its secret key.", Err: provider.ErrNoCredentials}
	}
	return k, nil
}

// Sign returns Binance's signature of a payload (the query string followed by the body):
// hex(HMAC-SHA256(secret, payload)).
func Sign(secret, payload string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// param is one query parameter; a slice of them keeps the order in which they are signed.
type param struct{ name, value string }

func encode(params []param) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
	}
	return b.String()
}

// public calls an endpoint that needs no key.
func (a *Adapter) public(ctx context.Context, path string, weight int, out any) error {
	res, err := a.client.Do(ctx, provider.Request{
		Method: http.MethodGet, URL: a.baseURL + path, LimitKey: a.limitKey, Cost: weight,
	})
	if err != nil {
		return err
	}
	return decode(path, res.Body, out)
}

// signed calls an endpoint with the account's key and signature. A -1021 answer (our
// timestamp outside recvWindow) means our clock offset went stale: it is measured again and
// the call repeated once.
func (a *Adapter) signed(ctx context.Context, k keys, path string, params []param, weight int, out any) error {
	for attempt := 0; ; attempt++ {
		if err := a.syncTime(ctx, attempt > 0); err != nil {
			return err
		}
		res, err := a.client.Do(ctx, provider.Request{
			Method:   http.MethodGet,
			URL:      a.baseURL + path,
			Header:   http.Header{"X-MBX-APIKEY": []string{k.apiKey}},
			LimitKey: a.limitKey,
			Cost:     weight,
			Sign:     a.signer(k.secret, params),
		})
		var be *binanceError
		if errors.As(err, &be) && be.Code == -1021 && attempt == 0 {
			continue
		}
		if err != nil {
			return err
		}
		return decode(path, res.Body, out)
	}
}

// signer appends recvWindow, a fresh timestamp and the signature (last) to the query, on
// every attempt.
func (a *Adapter) signer(secret string, params []param) func(*http.Request) error {
	return func(r *http.Request) error {
		all := append(append([]param(nil), params...),
			param{"recvWindow", strconv.Itoa(a.recvWindow)},
			param{"timestamp", strconv.FormatInt(a.serverNow().UnixMilli(), 10)})
		query := encode(all)
		r.URL.RawQuery = query + "&signature=" + Sign(secret, query)
		return nil
	}
}

// serverNow is Binance's clock as we estimate it.
func (a *Adapter) serverNow() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.clock.Now().Add(a.offset)
}

// syncTime measures the offset of Binance's clock from ours with GET /api/v3/time, when it
// was never measured, is older than offsetTTL, or force is set.
func (a *Adapter) syncTime(ctx context.Context, force bool) error {
	a.mu.Lock()
	fresh := !a.syncedAt.IsZero() && a.clock.Now().Sub(a.syncedAt) < offsetTTL
	a.mu.Unlock()
	if fresh && !force {
		return nil
	}
	before := a.clock.Now()
	var body struct {
		ServerTime int64 `json:"serverTime"`
	}
	if err := a.public(ctx, "/api/v3/time", 1, &body); err != nil {
		return err
	}
	after := a.clock.Now()
	// The server read its clock about halfway through the round trip.
	mid := before.Add(after.Sub(before) / 2)
	a.mu.Lock()
	a.offset = time.UnixMilli(body.ServerTime).Sub(mid)
	a.syncedAt = after
	a.mu.Unlock()
	return nil
}

func decode(path string, body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		// Classify lets through only valid JSON, so this is a shape we did not expect.
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
			Message: fmt.Sprintf("Binance answered %s in an unexpected shape.", path), Err: err}
	}
	return nil
}

// accountInfo is the part of GET /api/v3/account we read.
type accountInfo struct {
	Balances []wireBalance `json:"balances"`
}

type wireBalance struct {
	Asset  string `json:"asset"`
	Free   string `json:"free"`
	Locked string `json:"locked"`
}

func (a *Adapter) account(ctx context.Context, k keys) (*accountInfo, error) {
	var info accountInfo
	err := a.signed(ctx, k, "/api/v3/account", []param{{"omitZeroBalances", "true"}}, 20, &info)
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// Verify checks the key with one account read (weight 20).
func (a *Adapter) Verify(ctx context.Context, acc provider.Account) error {
	k, err := credentials(acc)
	if err != nil {
		return err
	}
	_, err = a.account(ctx, k)
	return err
}

// Balances reads the spot balances: quantity = free + locked.
//
// Simple Earn flexible positions show up in spot balances as LD-prefixed assets (LDBTC) and
// are reported as the asset Binance names; locked staking and other wallets (funding,
// margin, futures) are not read.
func (a *Adapter) Balances(ctx context.Context, acc provider.Account) ([]opencalico.Position, error) {
	k, err := credentials(acc)
	if err != nil {
		return nil, err
	}
	info, err := a.account(ctx, k)
	if err != nil {
		return nil, err
	}
	return normalizeBalances(acc.ConnectionID, info.Balances, a.clock.Now())
}

func normalizeBalances(connectionID string, rows []wireBalance, at time.Time) ([]opencalico.Position, error) {
	out := make([]opencalico.Position, 0, len(rows))
	for _, b := range rows {
		free, err := decimal.NewFromString(b.Free)
		if err != nil {
			return nil, malformed("balance", b.Asset, err)
		}
		locked, err := decimal.NewFromString(b.Locked)
		if err != nil {
			return nil, malformed("balance", b.Asset, err)
		}
		total := free.Add(locked)
		if total.IsZero() {
			continue
		}
		out = append(out, opencalico.Position{
			ConnectionID: connectionID,
			ProviderID:   ID,
			AssetSymbol:  b.Asset,
			Quantity:     total,
			Available:    free,
			Locked:       locked,
			Staked:       decimal.Zero,
			UpdatedAt:    at.UTC(),
		})
	}
	return out, nil
}

func malformed(what, id string, err error) error {
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
		Message: fmt.Sprintf("Binance sent a malformed %s (%s).", what, id), Err: err}
}
