package solana

import "github.com/opencalico/opencalico/provider"

// Limiter is the rate-limit policy of Solana RPC hosts: public endpoints limit requests per
// second per client address (api.mainnet-beta.solana.com: about 100 per 10 s, 40 per 10 s for
// a single method) and answer 429 with Retry-After beyond it, so every account of the process
// shares one token bucket per host.
type Limiter = provider.BucketLimiter

// NewLimiter returns a limiter of rate requests per second per host with the given burst.
func NewLimiter(clock provider.Clock, rate float64, burst int) *Limiter {
	return provider.NewBucketLimiter(clock, rate, burst)
}
