package api

import (
	"testing"
	"time"
)

func TestTokenLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)
	l := newTokenLimiter(3)
	l.now = func() time.Time { return now }
	for i := range 3 {
		ok, remaining, reset := l.take("a")
		if !ok || remaining != 2-i || reset != 50*time.Second {
			t.Fatalf("request %d: %v %d %v", i, ok, remaining, reset)
		}
	}
	if ok, remaining, _ := l.take("a"); ok || remaining != 0 {
		t.Fatal("the fourth request in a minute went through")
	}
	if ok, _, _ := l.take("b"); !ok {
		t.Fatal("another caller was limited by a's requests")
	}
	now = now.Add(50 * time.Second)
	if ok, remaining, _ := l.take("a"); !ok || remaining != 2 {
		t.Fatal("the next minute did not start afresh")
	}
}
