package bitcoin

import "github.com/opencalico/opencalico/provider"

// Limiter is the rate-limit policy of Esplora hosts: public instances (blockstream.info,
// mempool.space) limit requests per second per client address and answer 429 beyond it, so
// every account of the process shares one token bucket per host.
type Limiter = provider.BucketLimiter

// NewLimiter returns a limiter of rate requests per second per host with the given burst.
func NewLimiter(clock provider.Clock, rate float64, burst int) *Limiter {
	return provider.NewBucketLimiter(clock, rate, burst)
}
