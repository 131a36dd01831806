package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connect"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

// coinbaseOAuthClient is this server's registration as an OAuth client at Coinbase.
type coinbaseOAuthClient struct {
	ID, Secret string
	// APIBaseURL is Coinbase's (empty: the default, or OPENCALICO_PROVIDER_COINBASE_BASE_URL);
	// sandbox mode points it at the simulator, which also serves the login.
	APIBaseURL string
}

// coinbaseOAuthFromEnv reads OPENCALICO_PROVIDER_COINBASE_CLIENT_ID and _CLIENT_SECRET; nil
// when no client id is set.
func coinbaseOAuthFromEnv() *coinbaseOAuthClient {
	id := strings.TrimSpace(os.Getenv("OPENCALICO_PROVIDER_COINBASE_CLIENT_ID"))
	if id == "" {
		return nil
	}
	return &coinbaseOAuthClient{ID: id, Secret: os.Getenv("OPENCALICO_PROVIDER_COINBASE_CLIENT_SECRET")}
}

// withCoinbaseOAuth offers Coinbase through its own OAuth consent: it replaces the registry's
// Coinbase adapter by the OAuth adapter (CDP keys still work through it, and OAuth
// connections get tokens refreshed through one token source, so that the single-use refresh
// tokens rotate safely) and returns the OAuth clients for the connections service. Coinbase
// must have <issuer>/connect/oauth/return registered as the redirect URI. With no client,
// nothing changes.
func withCoinbaseOAuth(adapters *provider.Registry, client *coinbaseOAuthClient, issuer string, db *store.Store,
	sealer *secrets.Sealer) (*provider.Registry, map[opencalico.ProviderID]connections.OAuthClient, error) {
	if client == nil {
		return adapters, nil, nil
	}
	a, err := adapters.Adapter(coinbase.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("a Coinbase OAuth client is configured but Coinbase is not offered: %w", err)
	}
	base, ok := a.(*coinbase.Adapter)
	if !ok {
		return nil, nil, fmt.Errorf("the Coinbase adapter is a %T, not a *coinbase.Adapter", a)
	}
	o, err := coinbase.NewOAuth(coinbase.OAuthConfig{
		ClientID:     client.ID,
		ClientSecret: client.Secret,
		RedirectURI:  strings.TrimRight(issuer, "/") + connect.ReturnPath,
		APIBaseURL:   client.APIBaseURL,
	})
	if err != nil {
		return nil, nil, err
	}
	oa := &coinbase.OAuthAdapter{Adapter: base, Tokens: coinbase.NewTokenSource(o, db, sealer, coinbase.TokenSourceOptions{})}
	var all []provider.Adapter
	for _, p := range adapters.Catalog() {
		if p.ID == coinbase.ID {
			all = append(all, oa)
			continue
		}
		other, err := adapters.Adapter(p.ID)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, other)
	}
	return provider.NewRegistry(all...), map[opencalico.ProviderID]connections.OAuthClient{
		coinbase.ID: connections.NewOAuthClient(o, oa),
	}, nil
}
