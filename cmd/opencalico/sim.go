package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/ethereum"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	coinbasesim "github.com/opencalico/opencalico/provider/sim/coinbase"
	esplorasim "github.com/opencalico/opencalico/provider/sim/esplora"
	etherscansim "github.com/opencalico/opencalico/provider/sim/etherscan"
	krakensim "github.com/opencalico/opencalico/provider/sim/kraken"
	solanasim "github.com/opencalico/opencalico/provider/sim/solana"
)

// simulated is one running simulator: what `opencalico sim` prints for it.
type simulated struct {
	Provider    string            `json:"provider"`
	BaseURL     string            `json:"base_url"`
	Credentials map[string]string `json:"credentials"`
	// MoreCredentials are the other seeded accounts' credentials, with --accounts > 1.
	MoreCredentials []map[string]string `json:"more_credentials,omitempty"`
	// Env are the variables that point a server at this simulator, where the base URL
	// variable is not enough (Ethereum: the Etherscan key and the JSON-RPC endpoints).
	Env map[string]string `json:"env,omitempty"`
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "sim [flags]", stderr)
	var (
		host     string
		seed     int64
		accounts int
		events   int
		factor   float64
	)
	fs.StringVar(&host, "host", "127.0.0.1", "loopback address to listen on")
	fs.Int64Var(&seed, "seed", 1, "seed of the synthetic accounts: the same seed gives the same accounts")
	fs.IntVar(&accounts, "accounts", 1, "accounts per simulator (the Bitcoin one seeds at least one wallet of each address and key kind)")
	fs.IntVar(&events, "events", 0, "events per account (0: each simulator's default, a few thousand)")
	fs.Float64Var(&factor, "clock-factor", 1, "run the simulators' clock this many times faster (rate-limit windows shrink alike)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--host %q: the simulators listen on loopback addresses only", host)
	}
	var clock provider.Clock = provider.RealClock{}
	if factor != 1 {
		clock = provider.NewScaledClock(time.Now(), factor)
	}
	type sim struct {
		id      string
		handler http.Handler
		creds   []map[string]string
		env     func(baseURL string) map[string]string
	}
	b := binancesim.New(binancesim.Options{Seed: seed, Clock: clock, Accounts: accounts, Trades: events})
	k := krakensim.New(krakensim.Options{Seed: seed, Clock: clock, Accounts: accounts, Events: events})
	c := coinbasesim.New(coinbasesim.Options{Seed: seed, Clock: clock, Accounts: accounts, Events: events})
	var bcreds []map[string]string
	for _, cr := range b.Credentials() {
		bcreds = append(bcreds, cr)
	}
	e := esplorasim.New(esplorasim.Options{Seed: seed, Clock: clock, Wallets: max(accounts, len(esplorasim.Kinds)), Transactions: events})
	so := solanasim.New(solanasim.Options{Seed: seed, Clock: clock, Accounts: accounts, Transactions: events})
	sims := []sim{{id: "binance", handler: b.Handler(), creds: bcreds}, {id: "kraken", handler: k.Handler(), creds: k.Credentials()},
		{id: "coinbase", handler: c.Handler(), creds: c.Credentials()},
		{id: "bitcoin", handler: e.Handler(), creds: e.Credentials()}, {id: "solana", handler: so.Handler(), creds: so.Credentials()}}
	es := etherscansim.New(etherscansim.Options{Seed: seed, Clock: clock, Wallets: accounts, TxsPerWallet: events})
	sims = append(sims, sim{id: "ethereum", handler: es.Handler(), creds: es.Credentials(), env: func(u string) map[string]string {
		return map[string]string{
			provider.BaseURLEnv(ethereum.ProviderID):    u,
			provider.BaseURLEnv(ethereum.RPCProviderID): u + "/rpc",
			ethereum.APIKeyEnv:                          es.APIKey(),
		}
	}})

	errc := make(chan error, len(sims))
	var servers []*http.Server
	enc := json.NewEncoder(stdout)
	for _, s := range sims {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, hs)
		go func() { errc <- hs.Serve(ln) }()
		out := simulated{Provider: s.id, BaseURL: "http://" + ln.Addr().String(), Credentials: s.creds[0]}
		if len(s.creds) > 1 {
			out.MoreCredentials = s.creds[1:]
		}
		if s.env != nil {
			out.Env = s.env(out.BaseURL)
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	fmt.Fprintln(stderr, "simulators running; point an adapter at one with OPENCALICO_PROVIDER_<ID>_BASE_URL (and the variables under \"env\" where printed). Ctrl-C stops them.")
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	return nil
}
