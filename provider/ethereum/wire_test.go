package ethereum

import (
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

func TestClassifyEtherscan(t *testing.T) {
	const key = "SECRETKEY42"
	redact := func(s string) string { return strings.ReplaceAll(s, key, "[redacted]") }
	throttled := 0
	classify := classifyEtherscan(redact, func() { throttled++ })
	for _, c := range []struct {
		name      string
		status    int
		body      string
		transient bool
		code      opencalico.ErrorCode // "" for success
	}{
		{"rows", 200, `{"status":"1","message":"OK","result":[]}`, false, ""},
		{"no transactions", 200, `{"status":"0","message":"No transactions found","result":[]}`, false, ""},
		{"rate limit", 200, `{"status":"0","message":"NOTOK","result":"Max calls per sec rate limit reached (3/sec)"}`, true, opencalico.EInternal},
		{"daily limit", 200, `{"status":"0","message":"NOTOK","result":"Max daily rate limit reached. 100000 (100%) of Total calls per day"}`, false, opencalico.ERateLimited},
		{"invalid key", 200, `{"status":"0","message":"NOTOK","result":"Invalid API Key (#err2)|x"}`, false, opencalico.EProviderError},
		{"missing key", 200, `{"status":"0","message":"NOTOK","result":"Missing/Invalid API Key"}`, false, opencalico.EProviderError},
		{"window", 200, `{"status":"0","message":"NOTOK","result":"Result window is too large, PageNo x Offset size must be less than or equal to 10000"}`, false, opencalico.EProviderError},
		{"timeout", 200, `{"status":"0","message":"NOTOK","result":"Query Timeout occured. Please select a smaller result dataset"}`, true, opencalico.EInternal},
		{"free plan", 200, `{"status":"0","message":"NOTOK","result":"Free API access is not supported for this chain. Please upgrade your api plan for full chain coverage. https://etherscan.io/apis"}`, false, opencalico.EProviderError},
		{"bad address", 200, `{"status":"0","message":"NOTOK","result":"Error! Invalid address format"}`, false, opencalico.EInvalidAddress},
		{"echoing the key", 200, `{"status":"0","message":"NOTOK","result":"unknown key SECRETKEY42"}`, false, opencalico.EProviderError},
		{"html", 200, `<html>Just a moment...</html>`, true, opencalico.EInternal},
		{"cut", 200, `{"status":"1","message":"OK","result":[{"blockNu`, true, opencalico.EInternal},
		{"502", 502, `<html>Bad Gateway</html>`, true, opencalico.EInternal},
		{"403", 403, `forbidden`, false, opencalico.EProviderError},
	} {
		err := classify(&provider.Response{Status: c.status, Body: []byte(c.body)})
		if provider.IsTransient(err) != c.transient || opencalico.ErrorCodeOf(err) != c.code {
			t.Errorf("%s: got %v (code %s)", c.name, err, opencalico.ErrorCodeOf(err))
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the key shows in %v", c.name, err)
		}
	}
	if throttled != 1 {
		t.Errorf("the limiter was paused %d times", throttled)
	}
}

func TestDefaultsFromEnvironment(t *testing.T) {
	t.Setenv(APIKeyEnv, "ENVKEY")
	t.Setenv(provider.BaseURLEnv(ProviderID), "http://sim.local/")
	t.Setenv(provider.BaseURLEnv(RPCProviderID), "http://sim.local/rpc")
	if provider.BaseURLEnv(RPCProviderID) != "OPENCALICO_PROVIDER_ETHEREUM_RPC_BASE_URL" {
		t.Fatal(provider.BaseURLEnv(RPCProviderID))
	}
	ad := New(Options{})
	if ad.apiKey != "ENVKEY" || ad.baseURL != "http://sim.local" || ad.rpcURL("base") != "http://sim.local/rpc/base" || ad.offset != DefaultOffset {
		t.Errorf("key %q base %q rpc %q", ad.apiKey, ad.baseURL, ad.rpcURL("base"))
	}
	t.Setenv(provider.BaseURLEnv(RPCProviderID), "")
	if got := New(Options{Offset: 50000}); got.rpcURL("polygon") != "https://polygon-rpc.com" || got.offset != MaxOffset {
		t.Errorf("rpc %q offset %d", got.rpcURL("polygon"), got.offset)
	}
}
