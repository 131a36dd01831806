package provider

import (
	"context"
	"time"
)

// Clock is the time source of adapters and limiters. Tests and benchmarks scale it so that
// an hour of rate-limited syncing runs in seconds with the same shape.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ScaledClock runs Factor times faster than the wall clock from the moment it is made: one
// real millisecond is Factor simulated milliseconds. The simulators and the adapters of a
// test must share one ScaledClock so that both see the same time.
type ScaledClock struct {
	Factor float64
	start  time.Time
	origin time.Time
}

// NewScaledClock returns a clock that starts at origin and runs factor times faster.
func NewScaledClock(origin time.Time, factor float64) *ScaledClock {
	return &ScaledClock{Factor: factor, start: time.Now(), origin: origin}
}

// Now returns the simulated time.
func (c *ScaledClock) Now() time.Time {
	elapsed := time.Since(c.start)
	return c.origin.Add(time.Duration(float64(elapsed) * c.Factor))
}

// Sleep waits d of simulated time.
func (c *ScaledClock) Sleep(ctx context.Context, d time.Duration) error {
	return RealClock{}.Sleep(ctx, time.Duration(float64(d)/c.Factor))
}
