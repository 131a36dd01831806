package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/pgtest"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
	"github.com/opencalico/opencalico/syncer"
)

// startSims runs `opencalico sim` and returns what it printed per provider.
func startSims(t *testing.T, args ...string) map[string]simulated {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"sim"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sims := map[string]simulated{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for len(sims) < simCount && sc.Scan() {
		var s simulated
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("sim printed %q: %v", sc.Text(), err)
		}
		sims[s.Provider] = s
	}
	if len(sims) != simCount {
		t.Fatalf("sim printed %d simulators, want %d", len(sims), simCount)
	}
	return sims
}

// simCount is how many simulators `opencalico sim` runs: three exchanges, three blockchains.
const simCount = 6

func TestSimPrintsUsableSimulators(t *testing.T) {
	sims := startSims(t, "--accounts", "2", "--events", "50")
	for _, id := range []string{"binance", "kraken", "coinbase"} {
		s := sims[id]
		if !strings.HasPrefix(s.BaseURL, "http://127.0.0.1:") || len(s.Credentials) == 0 || len(s.MoreCredentials) != 1 {
			t.Fatalf("%s: %+v", id, s)
		}
		t.Setenv(provider.BaseURLEnv(opencalico.ProviderID(id)), s.BaseURL)
	}
	reg := (&adapterFlags{egressAddress: "test"}).registry(nil)
	for _, id := range []string{"binance", "kraken", "coinbase"} {
		a, err := reg.Adapter(opencalico.ProviderID(id))
		if err != nil {
			t.Fatal(err)
		}
		good := provider.Account{ConnectionID: "c", Credentials: sims[id].Credentials}
		if err := a.Verify(context.Background(), good); err != nil {
			t.Errorf("%s: the printed credentials do not verify: %v", id, err)
		}
		bad := provider.Account{ConnectionID: "c", Credentials: provider.Credentials{}}
		for k, v := range sims[id].Credentials {
			bad.Credentials[k] = v
		}
		bad.Credentials["api_key"] = "not-a-key"
		if err := a.Verify(context.Background(), bad); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Errorf("%s: a wrong key gave %v", id, err)
		}
	}
	// The blockchains: their wallets verify once the printed variables are set.
	for _, id := range []string{"bitcoin", "solana", "ethereum"} {
		s := sims[id]
		t.Setenv(provider.BaseURLEnv(opencalico.ProviderID(id)), s.BaseURL)
		for k, v := range s.Env {
			t.Setenv(k, v)
		}
	}
	reg = (&adapterFlags{egressAddress: "test"}).registry(nil)
	for _, id := range []string{"bitcoin", "solana", "ethereum"} {
		a, err := reg.Adapter(opencalico.ProviderID(id))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append([]map[string]string{sims[id].Credentials}, sims[id].MoreCredentials...) {
			if err := a.Verify(context.Background(), provider.Account{ConnectionID: "c", Address: c["address"]}); err != nil {
				t.Errorf("%s: the printed wallet %s does not verify: %v", id, c["address"], err)
			}
		}
	}
}

// TestWorkersShareTheQueue syncs 50 connections twice, against the same simulators: once
// with one worker process, once with two of which one is killed mid-sync. Every job must
// complete exactly once, and every connection must end with exactly the transactions the
// single worker stored.
func TestWorkersShareTheQueue(t *testing.T) {
	sims := startSims(t, "--accounts", "22", "--events", "150")
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*7 + 3)
	}
	masterKey := base64.StdEncoding.EncodeToString(key)
	type account struct {
		provider string
		creds    map[string]string
	}
	var accounts []account
	for _, p := range []struct {
		id string
		n  int
	}{{"binance", 6}, {"kraken", 22}, {"coinbase", 22}} {
		all := append([]map[string]string{sims[p.id].Credentials}, sims[p.id].MoreCredentials...)
		for i := range p.n {
			accounts = append(accounts, account{p.id, all[i]})
		}
	}
	env := []string{"OPENCALICO_MASTER_KEY=" + masterKey}
	for id, s := range sims {
		env = append(env, provider.BaseURLEnv(opencalico.ProviderID(id))+"="+s.BaseURL)
	}

	run := func(t *testing.T, workers int, kill bool) (map[string]map[string]string, *store.Store) {
		ctx := context.Background()
		dbURL := pgtest.URL(t)
		st, err := store.Open(ctx, dbURL, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := migrateAll(ctx, st); err != nil {
			t.Fatal(err)
		}
		ring, err := secrets.ParseEnvKeys(masterKey)
		if err != nil {
			t.Fatal(err)
		}
		sealer := secrets.NewSealer(ring)
		queue, err := syncer.New(syncer.Config{InsertOnly: true}, st, provider.NewRegistry(), sealer, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		user := &opencalico.User{Email: "workers@example.com"}
		if err := st.CreateUser(ctx, user); err != nil {
			t.Fatal(err)
		}
		names := map[string]string{} // connection id → provider/index
		for i, a := range accounts {
			c := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: user.ID, ProviderID: opencalico.ProviderID(a.provider),
				Type: opencalico.AuthAPIKey, Fingerprint: fmt.Sprint("fp", i)}
			sealed, err := sealer.SealCredentials(c.ID, a.creds)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateConnection(ctx, c, &sealed); err != nil {
				t.Fatal(err)
			}
			if err := queue.Enqueue(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			names[c.ID] = fmt.Sprintf("%s/%d", a.provider, i)
		}

		args := []string{"--role", "worker", "--sync-workers", "2", "--sync-lease-ttl", "3s",
			"--sync-job-timeout", "3s", "--sync-rescue-after", "4s"}
		var procs []*server
		for range workers {
			procs = append(procs, startServe(t, append(env, "OPENCALICO_DATABASE_URL="+dbURL), append(args, "--data-dir", t.TempDir())...))
		}
		killed := !kill
		deadline := time.Now().Add(150 * time.Second)
		for {
			conns, err := st.ListConnections(ctx, user.ID)
			if err != nil {
				t.Fatal(err)
			}
			done := 0
			for _, c := range conns {
				if c.Status == opencalico.StatusActive && c.TransactionsSyncedAt != nil {
					done++
				}
				if c.Status == opencalico.StatusError || c.Status == opencalico.StatusReauthRequired {
					t.Logf("%s %s: %+v", names[c.ID], c.Status, c.StatusDetail)
				}
			}
			if !killed && done >= 8 {
				_ = procs[0].cmd.Process.Kill() // SIGKILL: no shutdown, jobs left running
				killed = true
				t.Logf("killed a worker with %d of %d connections synced", done, len(conns))
			}
			if done == len(conns) {
				break
			}
			if time.Now().After(deadline) {
				rows, _ := st.DB().Query(`SELECT id, kind, state, attempt, args::text, coalesce(errors::text, '') FROM river_job WHERE state <> 'completed'`)
				for rows != nil && rows.Next() {
					var id, attempt int
					var kind, state, args, errs string
					_ = rows.Scan(&id, &kind, &state, &attempt, &args, &errs)
					t.Logf("job %d %s %s attempt %d %s %s", id, kind, state, attempt, args, errs)
				}
				for _, c := range conns {
					if c.Status != opencalico.StatusActive {
						t.Logf("%s %s %s", c.ID, names[c.ID], c.Status)
					}
				}
				t.Fatalf("%d of %d connections synced after 4 minutes", done, len(conns))
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, p := range procs[boolToInt(kill):] {
			p.stop(t)
		}

		out := map[string]map[string]string{}
		for id, name := range names {
			c, err := st.ConnectionByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.StatusDetail.Mismatches) > 0 || len(c.StatusDetail.Incomplete) > 0 {
				t.Errorf("%s: %+v", name, c.StatusDetail)
			}
			out[name] = snapshotConnection(t, st, user.ID, id)
		}
		return out, st
	}

	single, _ := run(t, 1, false)
	shared, st := run(t, 2, true)
	for name, want := range single {
		got := shared[name]
		if len(got) != len(want) || len(want) == 0 {
			t.Errorf("%s: %d transactions with two workers, %d with one", name, len(got), len(want))
			continue
		}
		for ext, h := range want {
			if got[ext] != h {
				t.Errorf("%s: transaction %s differs", name, ext)
				break
			}
		}
	}
	// Every job completed exactly once: one balances and one history job per connection,
	// nothing left running, retried into a duplicate, or discarded.
	rows, err := st.DB().Query(`SELECT kind, state, count(*), max(attempt) FROM river_job GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var summary []string
	for rows.Next() {
		var kind, state string
		var n, attempts int
		if err := rows.Scan(&kind, &state, &n, &attempts); err != nil {
			t.Fatal(err)
		}
		summary = append(summary, fmt.Sprintf("%s %s %d (max attempt %d)", kind, state, n, attempts))
	}
	want := fmt.Sprintf("[sync.balances completed %d", len(accounts))
	if len(summary) != 2 || !strings.HasPrefix(fmt.Sprint(summary), want) ||
		!strings.HasPrefix(summary[1], fmt.Sprintf("sync.history completed %d ", len(accounts))) {
		t.Fatalf("jobs: %v", summary)
	}
	t.Logf("jobs: %v", summary)
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// snapshotConnection reads every transaction of a connection as external id → content hash.
func snapshotConnection(t *testing.T, st *store.Store, userID, connID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var after *store.TransactionKey
	for {
		page, err := st.ListTransactions(context.Background(), store.TransactionFilter{
			UserID: userID, ConnectionIDs: []string{connID}, Limit: 100, After: after, Order: store.Asc})
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range page {
			if _, dup := out[tx.ExternalID]; dup {
				t.Fatalf("transaction %s stored twice", tx.ExternalID)
			}
			out[tx.ExternalID] = tx.ContentHash()
		}
		if len(page) < 100 {
			return out
		}
		k := store.TransactionKeyOf(page[len(page)-1])
		after = &k
	}
}
