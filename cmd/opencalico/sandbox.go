package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/api"
	"github.com/opencalico/opencalico/connect"
	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/bitcoin"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/provider/ethereum"
	"github.com/opencalico/opencalico/provider/kraken"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	coinbasesim "github.com/opencalico/opencalico/provider/sim/coinbase"
	esplorasim "github.com/opencalico/opencalico/provider/sim/esplora"
	etherscansim "github.com/opencalico/opencalico/provider/sim/etherscan"
	krakensim "github.com/opencalico/opencalico/provider/sim/kraken"
	solanasim "github.com/opencalico/opencalico/provider/sim/solana"
	"github.com/opencalico/opencalico/provider/solana"
	"github.com/opencalico/opencalico/store"
)

// Sandbox mode (serve --sandbox) runs the Binance, Kraken and Coinbase simulators, and the
// Bitcoin (Esplora), Solana (JSON-RPC) and Ethereum/EVM (Etherscan v2 + JSON-RPC) ones, in
// the server's process, on loopback ports, and points the adapters at them — except where
// OPENCALICO_PROVIDER_<ID>_BASE_URL is set, which always wins. Each simulator holds seeded
// accounts:
//
//	account 0, 1   good credentials
//	account 2      its key revoked at start: case revoked
//	account 3      with a wrong secret: case invalid_credentials (an account of its own, so
//	               that it is not already_connected once the good ones are)
//
// and a second simulator of the same provider, behind the same port, holds one account whose
// every request is answered with the provider's rate-limit error (case rate_limited): Binance
// a 418 ban of one second (the adapter answers rate_limited at once, and holds the server's
// other Binance calls back for that second, as it must for a real ban of the IP), Kraken and
// Coinbase a 429 with Retry-After: 1 (the adapters retry, then answer provider_unavailable
// after five attempts, six or seven seconds). The
// simulators' fault queues are not per account, so the rate-limited account gets a simulator
// of its own: requests are routed to it by their API key, and faults injected there reach no
// other account.

// The sizes of the simulated accounts: small enough that a first sync takes a second or two.
const (
	sandboxSeed   = 1
	sandboxEvents = 200
	sandboxYears  = 1
	// sandboxKrakenDecay is the Kraken rate-limit counter's decay, per second, of the
	// simulator and the adapter alike (Kraken's Pro tier): the starter tier's 0.33 would
	// make each further page of a ledger wait six seconds.
	sandboxKrakenDecay = 1
)

// sandboxSims are the running simulators of sandbox mode.
type sandboxSims struct {
	servers []*http.Server
	// urls are the simulators' base URLs, by provider.
	urls map[opencalico.ProviderID]string
	// creds are the credentials listed by GET /sandbox/credentials.
	creds map[opencalico.ProviderID]api.SandboxProviderCredentials
	// coinbase is the Coinbase simulator, whose OAuth server sandbox mode registers with.
	coinbase *coinbasesim.Simulator
	// etherscanKey is the API key the Etherscan simulator takes.
	etherscanKey string
}

// The sandbox's OAuth client at the Coinbase simulator. The simulator's login takes
// user1@coinbase-sim.example (and user2…) with the password sim-password.
const (
	sandboxCoinbaseClientID     = "opencalico-sandbox"
	sandboxCoinbaseClientSecret = "opencalico-sandbox-secret"
)

// coinbaseOAuth registers the server's return page with the Coinbase simulator and returns
// the client to reach it, so that sandbox users can connect Coinbase through its consent.
// An explicit OPENCALICO_PROVIDER_COINBASE_BASE_URL wins: then there is no simulated consent.
func (sb *sandboxSims) coinbaseOAuth(issuer string) *coinbaseOAuthClient {
	if os.Getenv(provider.BaseURLEnv(coinbase.ID)) != "" {
		return nil
	}
	sb.coinbase.RegisterOAuthClient(coinbasesim.OAuthClient{ID: sandboxCoinbaseClientID, Secret: sandboxCoinbaseClientSecret,
		RedirectURIs: []string{strings.TrimRight(issuer, "/") + connect.ReturnPath}})
	return &coinbaseOAuthClient{ID: sandboxCoinbaseClientID, Secret: sandboxCoinbaseClientSecret, APIBaseURL: sb.urls[coinbase.ID]}
}

// startSandboxSims starts the simulators on loopback ports of host.
func startSandboxSims(host string) (*sandboxSims, error) {
	sb := &sandboxSims{urls: map[opencalico.ProviderID]string{}, creds: map[opencalico.ProviderID]api.SandboxProviderCredentials{}}

	// Binance.
	b := binancesim.New(binancesim.Options{Seed: sandboxSeed, Accounts: 4, Trades: sandboxEvents,
		Deposits: sandboxEvents / 10, Withdrawals: sandboxEvents / 20, Years: sandboxYears})
	bRL := binancesim.New(binancesim.Options{Seed: sandboxSeed + 1000, Accounts: 1, Trades: 20, Deposits: 2, Withdrawals: 1, Years: sandboxYears})
	b.Revoke(2)
	var bcreds []map[string]string
	for _, c := range b.Credentials() {
		bcreds = append(bcreds, c)
	}
	bRLKey := bRL.Credentials()[0]["api_key"]
	binanceHandler := byKey(func(r *http.Request) string { return r.Header.Get("X-MBX-APIKEY") }, bRLKey,
		b.Handler(), bRL.Handler(), func() {
			// A 418 (an IP ban of one second) rather than a 429: the adapter fails at once
			// with rate_limited. After a 429 it would hold every Binance call of the server
			// back and retry until the credential check times out (20 s).
			bRL.Inject(binancesim.Fault{Kind: binancesim.FaultBan, RetryAfter: 1})
		})
	if err := sb.add(host, binance.ID, binanceHandler, bcreds, bRL.Credentials()[0], wrongHMACSecret); err != nil {
		return nil, err
	}

	// Kraken.
	k := krakensim.New(krakensim.Options{Seed: sandboxSeed, Accounts: 4, Events: sandboxEvents, Years: sandboxYears,
		DecayPerSecond: sandboxKrakenDecay})
	kRL := krakensim.New(krakensim.Options{Seed: sandboxSeed + 1000, Accounts: 1, Events: 20, Years: sandboxYears,
		DecayPerSecond: sandboxKrakenDecay})
	k.Revoke(2)
	kRLKey := kRL.Credentials()[0]["api_key"]
	krakenHandler := byKey(func(r *http.Request) string { return r.Header.Get("API-Key") }, kRLKey,
		k.Handler(), kRL.Handler(), func() {
			// An HTTP 429 with Retry-After: 1 rather than "EAPI:Rate limit exceeded", which
			// the adapter waits six seconds after, so that the check fails within seconds.
			kRL.Inject("", krakensim.FaultHTTP429)
		})
	if err := sb.add(host, kraken.ProviderID, krakenHandler, k.Credentials(), kRL.Credentials()[0], wrongBase64Secret); err != nil {
		sb.close()
		return nil, err
	}

	// Coinbase.
	c := coinbasesim.New(coinbasesim.Options{Seed: sandboxSeed, Accounts: 4, Events: sandboxEvents, Years: sandboxYears})
	cRL := coinbasesim.New(coinbasesim.Options{Seed: sandboxSeed + 1000, Accounts: 1, Events: 20, Years: sandboxYears})
	c.Revoke(2)
	cRLKey := cRL.Credentials()[0]["api_key"]
	coinbaseHandler := byKey(coinbaseKeyName, cRLKey, c.Handler(), cRL.Handler(), func() {
		cRL.Inject(coinbasesim.Fault{Kind: coinbasesim.Fault429})
	})
	if err := sb.add(host, coinbase.ID, coinbaseHandler, c.Credentials(), cRL.Credentials()[0], wrongCoinbaseSecret); err != nil {
		sb.close()
		return nil, err
	}
	sb.coinbase = c

	// Bitcoin: a single bech32 address and a BIP84 zpub wallet, whose funds lie past unused
	// addresses (the gap limit finds them). The address receives, twenty minutes after it,
	// the latest bitcoin withdrawal of a good Kraken account, so that a user who
	// connects both sees the two sides linked by one transfer_id. Its own history ends the
	// day before, so that the payment is its newest transaction.
	eopts := esplorasim.Options{Seed: sandboxSeed, Transactions: sandboxWalletTxs, Pending: 1,
		Years: sandboxYears, RequestsPerSecond: sandboxWalletRate}
	var withdrawals []krakensim.Withdrawal
	// The first of the good Kraken accounts that withdrew bitcoin, by its label.
	withdrawer := ""
	for i := range 2 {
		if withdrawals = k.Withdrawals(i, "XXBT"); len(withdrawals) > 0 {
			withdrawer = fmt.Sprintf("Sandbox account %d", i+1)
			break
		}
	}
	if len(withdrawals) > 0 {
		eopts.HistoryEnd = withdrawals[len(withdrawals)-1].Time.AddDate(0, 0, -1)
	}
	e := esplorasim.New(eopts)
	ecreds := e.Credentials()
	single, zpub := ecreds[2]["address"], ecreds[6]["address"] // esplorasim.Kinds: p2wpkh, zpub
	singleLabel := "Bitcoin address (bech32)"
	if len(withdrawals) > 0 {
		w := withdrawals[len(withdrawals)-1]
		e.Pay(2, w.Amount.Shift(8).IntPart(), w.Time.Add(20*time.Minute))
		singleLabel += ", where Kraken's " + withdrawer + " withdrew bitcoin"
	}
	if err := sb.addWallets(host, bitcoin.ProviderID, e.Handler(), []api.SandboxCredential{
		{Label: singleLabel, Connection: wallet(single, bitcoin.Chain)},
		{Label: "Bitcoin wallet (zpub, gap limit 20)", Connection: wallet(zpub, bitcoin.Chain)},
	}, []api.SandboxCredential{
		{Label: "Address with a wrong checksum", Case: string(opencalico.EInvalidAddress), Connection: wallet(breakChecksum(single), bitcoin.Chain)},
		// BIP173's own testnet vector: a valid address of another network.
		{Label: "Testnet address", Case: string(opencalico.EInvalidAddress), Connection: wallet("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", bitcoin.Chain)},
	}); err != nil {
		sb.close()
		return nil, err
	}

	// Solana.
	so := solanasim.New(solanasim.Options{Seed: sandboxSeed, Accounts: 2, Transactions: sandboxWalletTxs, RequestsPerSecond: sandboxWalletRate})
	socreds := so.Credentials()
	if err := sb.addWallets(host, solana.ProviderID, so.Handler(), []api.SandboxCredential{
		{Label: "Solana wallet 1", Connection: wallet(socreds[0]["address"], "solana")},
		{Label: "Solana wallet 2", Connection: wallet(socreds[1]["address"], "solana")},
	}, []api.SandboxCredential{
		{Label: "Not a Solana address", Case: string(opencalico.EInvalidAddress), Connection: wallet(breakChecksum(socreds[0]["address"])+"0OIl", "solana")},
	}); err != nil {
		sb.close()
		return nil, err
	}

	// Ethereum and the EVM chains: one simulator answers Etherscan v2 and each chain's
	// JSON-RPC, and enforces Etherscan's free key limit of 3 requests a second.
	es := etherscansim.New(etherscansim.Options{Seed: sandboxSeed, Wallets: 2, TxsPerWallet: sandboxWalletTxs})
	sb.etherscanKey = es.APIKey()
	addr := es.Wallet(0)
	if err := sb.addWallets(host, ethereum.ProviderID, es.Handler(), []api.SandboxCredential{
		{Label: "Ethereum wallet", Connection: wallet(addr, "ethereum")},
		{Label: "The same wallet on Polygon", Connection: wallet(addr, "polygon")},
		{Label: "Another wallet on Arbitrum", Connection: wallet(es.Wallet(1), "arbitrum")},
	}, []api.SandboxCredential{
		{Label: "Mixed-case address with a wrong EIP-55 checksum", Case: string(opencalico.EInvalidAddress), Connection: wallet(flipCase(addr), "ethereum")},
		{Label: "Too short", Case: string(opencalico.EInvalidAddress), Connection: wallet(addr[:40], "ethereum")},
	}); err != nil {
		sb.close()
		return nil, err
	}
	return sb, nil
}

// flipCase changes the case of the first letter of a checksummed address after its 0x, which
// the EIP-55 checksum catches.
func flipCase(a string) string {
	b := []byte(a)
	for i := 2; i < len(b); i++ {
		switch c := b[i]; {
		case c >= 'a' && c <= 'f':
			b[i] = c - 'a' + 'A'
			return string(b)
		case c >= 'A' && c <= 'F':
			b[i] = c - 'A' + 'a'
			return string(b)
		}
	}
	return a
}

// The sizes of the simulated wallets, and the rate their simulated nodes allow (the adapters
// are given the same): a first sync takes a few seconds.
const (
	sandboxWalletTxs  = 60
	sandboxWalletRate = 50
)

// wallet is a wallet connection object.
func wallet(address, chain string) map[string]string {
	return map[string]string{"type": string(opencalico.AuthWallet), "address": address, "chain": chain}
}

// breakChecksum changes the last character of an address, which its checksum catches.
func breakChecksum(a string) string {
	last := a[len(a)-1]
	repl := byte('q')
	if last == 'q' {
		repl = 'p'
	}
	return a[:len(a)-1] + string(repl)
}

// addWallets serves a blockchain's simulator and lists its wallets.
func (sb *sandboxSims) addWallets(host string, id opencalico.ProviderID, h http.Handler, good, bad []api.SandboxCredential) error {
	if err := sb.serve(host, id, h); err != nil {
		return err
	}
	sb.creds[id] = api.SandboxProviderCredentials{Good: good, Bad: bad}
	return nil
}

// serve runs a simulator on a loopback port of host.
func (sb *sandboxSims) serve(host string, id opencalico.ProviderID, h http.Handler) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	sb.servers = append(sb.servers, hs)
	go func() { _ = hs.Serve(ln) }()
	sb.urls[id] = "http://" + ln.Addr().String()
	return nil
}

// add serves one provider's simulator and lists its credentials: creds are the seeded
// accounts (0 and 1 good, 2 revoked, 3 given a wrong secret), limited the rate-limited
// account's.
func (sb *sandboxSims) add(host string, id opencalico.ProviderID, h http.Handler, creds []map[string]string,
	limited map[string]string, wrong func(string) string) error {
	if err := sb.serve(host, id, h); err != nil {
		return err
	}
	conn := func(c map[string]string) map[string]string {
		return map[string]string{"type": string(opencalico.AuthAPIKey), "api_key": c["api_key"], "secret_key": c["secret_key"]}
	}
	bad := conn(creds[3])
	bad["secret_key"] = wrong(creds[3]["secret_key"])
	sb.creds[id] = api.SandboxProviderCredentials{
		Good: []api.SandboxCredential{
			{Label: "Sandbox account 1", Connection: conn(creds[0])},
			{Label: "Sandbox account 2", Connection: conn(creds[1])},
		},
		Bad: []api.SandboxCredential{
			{Label: "Wrong secret", Case: "invalid_credentials", Connection: bad},
			{Label: "Revoked key", Case: "revoked", Connection: conn(creds[2])},
			{Label: "Rate-limited account", Case: "rate_limited", Connection: conn(limited)},
		},
	}
	return nil
}

// close stops the simulators.
func (sb *sandboxSims) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range sb.servers {
		_ = hs.Shutdown(ctx)
	}
}

// credentials lists the credentials of the providers whose adapter reads a simulator: one
// pointed elsewhere by OPENCALICO_PROVIDER_<ID>_BASE_URL is left out, its simulator's keys
// being of no use there.
func (sb *sandboxSims) credentials() map[opencalico.ProviderID]api.SandboxProviderCredentials {
	out := map[opencalico.ProviderID]api.SandboxProviderCredentials{}
	for id, c := range sb.creds {
		if os.Getenv(provider.BaseURLEnv(id)) == "" {
			out[id] = c
		}
	}
	return out
}

// registry returns base with the simulated providers' adapters pointed at the simulators,
// unless OPENCALICO_PROVIDER_<ID>_BASE_URL names another endpoint. Other adapters are kept
// as they are; a simulated provider that base does not offer (Ethereum without an Etherscan
// key) is offered against its simulator.
func (sb *sandboxSims) registry(base *provider.Registry, af *adapterFlags, log *slog.Logger) *provider.Registry {
	var all []provider.Adapter
	offered := map[opencalico.ProviderID]bool{}
	for _, p := range base.Catalog() {
		a, err := base.Adapter(p.ID)
		if err != nil {
			continue
		}
		offered[p.ID] = true
		if u, ok := sb.urls[p.ID]; ok {
			if env := provider.BaseURLEnv(p.ID); os.Getenv(env) != "" {
				log.Warn("sandbox: "+env+" is set and wins over the simulator", "provider_id", string(p.ID))
			} else {
				a = sb.adapter(p.ID, u, af)
			}
		}
		all = append(all, a)
	}
	for id, u := range sb.urls {
		if !offered[id] && os.Getenv(provider.BaseURLEnv(id)) == "" {
			all = append(all, sb.adapter(id, u, af))
		}
	}
	return provider.NewRegistry(all...)
}

// adapter builds the adapter of a simulated provider against its simulator.
func (sb *sandboxSims) adapter(id opencalico.ProviderID, baseURL string, af *adapterFlags) provider.Adapter {
	switch id {
	case binance.ID:
		return binance.New(binance.Options{BaseURL: baseURL, LimitKey: af.egressAddress})
	case kraken.ProviderID:
		return kraken.New(kraken.Options{BaseURL: baseURL, DecayPerSecond: sandboxKrakenDecay})
	case coinbase.ID:
		return coinbase.New(coinbase.Options{BaseURL: baseURL})
	case bitcoin.ProviderID:
		return bitcoin.New(bitcoin.Options{BaseURL: baseURL, RequestsPerSecond: sandboxWalletRate})
	case solana.ProviderID:
		return solana.New(solana.Options{BaseURL: baseURL, RequestsPerSecond: sandboxWalletRate})
	case ethereum.ProviderID:
		return ethereum.New(ethereum.Options{BaseURL: baseURL, APIKey: sb.etherscanKey,
			RPCURL: func(chain string) string { return baseURL + "/rpc/" + chain }})
	}
	panic("sandbox: no simulator for " + string(id))
}

// byKey routes the requests signed with limitedKey to limited, after inject queued one fault
// there, and every other request to main.
func byKey(keyOf func(*http.Request) string, limitedKey string, main, limited http.Handler, inject func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if keyOf(r) == limitedKey {
			inject()
			limited.ServeHTTP(w, r)
			return
		}
		main.ServeHTTP(w, r)
	})
}

// coinbaseKeyName reads the key name (the kid) of a Coinbase CDP JWT without verifying it:
// the simulator verifies it.
func coinbaseKeyName(r *http.Request) string {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Kid
}

// The wrong secrets have the form of the right ones, so that the provider, not a format
// check, refuses them.
func wrongHMACSecret(string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

func wrongBase64Secret(string) string {
	var b [64]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func wrongCoinbaseSecret(right string) string {
	if strings.Contains(right, "PRIVATE KEY") {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			panic(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}

// sandboxClient is what serve --sandbox prints and keeps in <data dir>/sandbox-client.json.
type sandboxClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURI  string `json:"redirect_uri"`
	AuthorizeURL string `json:"authorize_url"`
}

type sandboxClientFile struct {
	SandboxClient sandboxClient `json:"sandbox_client"`
}

const sandboxClientFileName = "sandbox-client.json"

// ensureSandboxClient registers the sandbox client, or reuses the one of
// <dataDir>/sandbox-client.json when the database still has it with that secret and redirect
// URI. The secret is stored hashed, so the file is the only place it can be read again: it is
// written 0600, and only in sandbox mode.
func ensureSandboxClient(ctx context.Context, db *store.Store, issuer, dataDir string) (*sandboxClient, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	redirectURI := issuer + "/sandbox/callback"
	path := filepath.Join(dataDir, sandboxClientFileName)
	var saved sandboxClientFile
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &saved); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c, err := db.ClientByID(ctx, saved.SandboxClient.ClientID)
		switch {
		case err == nil && !c.Public && oauth.SecretMatches(c.SecretHash, saved.SandboxClient.ClientSecret) &&
			slices.Contains(c.RedirectURIs, redirectURI):
			out := saved.SandboxClient
			out.RedirectURI = redirectURI
			out.AuthorizeURL = sandboxAuthorizeURL(issuer, c.ID, redirectURI)
			return &out, writeSandboxClient(path, out)
		case err != nil && opencalico.ErrorCodeOf(err) != opencalico.ENotFound:
			return nil, err
		}
		// Deleted, changed, or registered for another address: register a new one.
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	c, secret, err := oauth.NewClient("opencalico sandbox", []string{redirectURI}, false, false)
	if err != nil {
		return nil, err
	}
	if err := db.CreateClient(ctx, c); err != nil {
		return nil, err
	}
	out := sandboxClient{ClientID: c.ID, ClientSecret: secret, RedirectURI: redirectURI,
		AuthorizeURL: sandboxAuthorizeURL(issuer, c.ID, redirectURI)}
	return &out, writeSandboxClient(path, out)
}

func sandboxAuthorizeURL(issuer, clientID, redirectURI string) string {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {oauth.ScopeAccountsRead}, "state": {"sandbox"}}
	return issuer + "/oauth/authorize?" + q.Encode()
}

// writeSandboxClient writes the file 0600, replacing it whole.
func writeSandboxClient(path string, c sandboxClient) error {
	b, err := json.Marshal(sandboxClientFile{SandboxClient: c})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// mount adds the sandbox routes and prints the sandbox client as one JSON line on stdout.
func (sb *sandboxSims) mount(srv *api.Server, db *store.Store, authServer *oauth.Server, client *sandboxClient, stdout io.Writer) error {
	srv.MountSandbox(api.Sandbox{Clients: db, Users: db, IssueTokens: authServer.IssueTokensForUser,
		Credentials: sb.credentials})
	b, err := json.Marshal(sandboxClientFile{SandboxClient: *client})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}
