package syncer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	krakensim "github.com/opencalico/opencalico/provider/sim/kraken"
)

// A simulator in a child process
//
// The Kraken simulator keeps its whole generated ledger in memory (about half a kilobyte a
// row with its decimals, strings and time index: a peak RSS of 560 MiB at a million rows),
// which would dominate the peak RSS of a benchmark that means to show that the sync
// engine's memory stays flat. BenchmarkLedgerMillionRows therefore runs the simulator in a child: the test binary
// re-executed with benchSimEnv set, which the init below catches before any test runs. The
// child serves the simulator on 127.0.0.1:0, prints one JSON line (benchSimInfo) on stdout,
// and exits when its stdin closes, that is when the parent ends or dies.

// benchSimEnv selects the simulator the child serves ("kraken"); benchSimRowsEnv is the number
// of ledger rows it generates (about: the generator makes one to a few rows per event).
const (
	benchSimEnv     = "OPENCALICO_BENCHSIM"
	benchSimRowsEnv = "OPENCALICO_BENCHSIM_ROWS"
)

// benchSimInfo is what the child reports: where it listens, the account's credentials, the
// number of ledger rows it generated and its own peak RSS after generating them.
type benchSimInfo struct {
	URL         string            `json:"url"`
	Credentials map[string]string `json:"credentials"`
	Rows        int               `json:"rows"`
	Events      int               `json:"events"`
	GenSeconds  float64           `json:"gen_seconds"`
	HWMKiB      int64             `json:"hwm_kib"`
}

func init() {
	if os.Getenv(benchSimEnv) == "kraken" {
		os.Exit(serveKrakenSim())
	}
}

// serveKrakenSim is the child's main: a Kraken simulator without a rate limit.
func serveKrakenSim() int {
	rows, err := strconv.Atoi(os.Getenv(benchSimRowsEnv))
	if err != nil || rows <= 0 {
		fmt.Fprintf(os.Stderr, "benchsim: %s=%q\n", benchSimRowsEnv, os.Getenv(benchSimRowsEnv))
		return 2
	}
	start := time.Now()
	// The generator makes a varying number of rows per event: measure its ratio on a small
	// account of the same seed, then size the real one from it.
	const probe = 20_000
	ratio := float64(krakensim.New(krakensim.Options{Seed: 7, Events: probe}).LedgerRows(0)) / probe
	events := max(1, int(math.Round(float64(rows)/ratio)))
	sim := krakensim.New(krakensim.Options{Seed: 7, Events: events,
		// No rate limit: the counter never fills.
		MaxCounter: 1e12, DecayPerSecond: 1e12})
	gen := time.Since(start)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsim:", err)
		return 1
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	hwm, _ := procStatusKiB("VmHWM")
	info := benchSimInfo{URL: "http://" + ln.Addr().String(), Credentials: sim.Credentials()[0],
		Rows: sim.LedgerRows(0), Events: events, GenSeconds: gen.Seconds(), HWMKiB: hwm}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return 1
	}
	// Serve until the parent closes our stdin (it ended, or died).
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startKrakenSimChild runs the simulator child with about rows ledger rows and returns what it
// reported. The child is stopped when the benchmark ends.
func startKrakenSimChild(b *testing.B, rows int) benchSimInfo {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), benchSimEnv+"=kraken", benchSimRowsEnv+"="+strconv.Itoa(rows))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		b.Fatalf("simulator child: %v", err)
	}
	var info benchSimInfo
	if err := json.Unmarshal(line, &info); err != nil {
		b.Fatalf("simulator child said %q: %v", line, err)
	}
	return info
}
