package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/api"
	"github.com/opencalico/opencalico/connect"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/openapi"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
	"github.com/opencalico/opencalico/syncer"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [flags]", stderr, masterKeyNote)
	var (
		sf              storeFlags
		kf              keyFlags
		lf              logFlags
		addr            string
		environment     string
		maxBody         int64
		shutdownTimeout time.Duration
		migrate         bool
		role            string
		sync            syncFlags
		af              adapterFlags
		pf              priceFlags
		issuer          string
		sandbox         bool
	)
	sf.register(fs)
	kf.register(fs)
	lf.register(fs)
	af.register(fs)
	pf.register(fs)
	sync.register(fs)
	fs.StringVar(&role, "role", "all", "all, api or worker: api serves requests and queues syncs, worker runs syncs (and answers /healthz, /readyz, /metrics), all does both")
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&environment, "env", "development", "development or production; production never creates a master key by itself")
	fs.Int64Var(&maxBody, "max-body-bytes", api.DefaultConfig().MaxBodyBytes, "largest request body accepted; larger ones get 413")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for requests in flight")
	fs.BoolVar(&migrate, "migrate", true, "apply pending database migrations at start")
	fs.StringVar(&issuer, "issuer", "", "public base URL of the server, the OAuth issuer (default http://<addr>)")
	fs.BoolVar(&sandbox, "sandbox", false, "sandbox mode: run the exchange simulators in-process, point the adapters at them, register a sandbox client and serve /sandbox/* (never with --env production)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if environment != "development" && environment != "production" {
		return fmt.Errorf("--env %q: want development or production", environment)
	}
	if role != "all" && role != "api" && role != "worker" {
		return fmt.Errorf("--role %q: want all, api or worker", role)
	}
	if sandbox && environment == "production" {
		return errors.New("--sandbox is refused with --env production: the sandbox hands out tokens without consent")
	}
	if sandbox && role != "all" {
		return errors.New("--sandbox needs --role all: the simulators run inside the one process")
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}

	db, err := store.Open(ctx, sf.databaseURL, sf.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if migrate {
		if err := migrateAll(ctx, db); err != nil {
			return err
		}
	}

	keyPath := kf.path(sf.dataDir)
	keyring, created, err := secrets.LoadKeyring(os.Getenv("OPENCALICO_MASTER_KEY"), keyPath, environment == "development")
	if err != nil {
		return err
	}
	if created {
		log.Warn("created a new master key file; back it up: without it no stored credential can be read",
			"path", keyring.Path())
	}
	sealer := secrets.NewSealer(keyring)
	fingerprintKey, created, err := connections.LoadKey(os.Getenv("OPENCALICO_FINGERPRINT_KEY"),
		filepath.Join(sf.dataDir, "fingerprint.key"), environment == "development")
	if err != nil {
		return err
	}
	if created {
		log.Warn("created a new fingerprint key file; every process of this deployment must use the same one",
			"path", filepath.Join(sf.dataDir, "fingerprint.key"))
	}
	// Before the sync engine starts, so that a failure here leaves nothing running.
	if issuer == "" {
		issuer = "http://" + addr
	}
	authServer, err := oauth.New(ctx, oauth.Config{Issuer: issuer, Log: log}, db, sealer)
	if err != nil {
		return err
	}

	adapters := af.registry(log)
	cbClient := coinbaseOAuthFromEnv()
	var sims *sandboxSims
	if sandbox {
		if sims, err = startSandboxSims("127.0.0.1"); err != nil {
			return err
		}
		defer sims.close()
		adapters = sims.registry(adapters, &af, log)
		if cbClient == nil {
			cbClient = sims.coinbaseOAuth(issuer)
		}
	}
	adapters, oauthClients, err := withCoinbaseOAuth(adapters, cbClient, issuer, db, sealer)
	if err != nil {
		return err
	}
	priceURL := ""
	if sims != nil {
		if priceURL, err = sims.startPriceSim("127.0.0.1"); err != nil {
			return err
		}
		pf.callsPerMinute = 600
	}
	valuer, err := pf.valuer(db, priceURL)
	if err != nil {
		return err
	}
	syncCfg := sync.config(role == "api")
	syncCfg.Valuer = valuer
	engine, err := syncer.New(syncCfg, db, adapters, sealer, log)
	if err != nil {
		return err
	}
	conns, err := connections.New(connections.Config{Store: db, Sealer: sealer, Providers: adapters,
		Sync: engine, FingerprintKey: fingerprintKey, OAuth: oauthClients, Log: log})
	if err != nil {
		return err
	}
	var sbClient *sandboxClient
	if sims != nil {
		if sbClient, err = ensureSandboxClient(ctx, db, issuer, sf.dataDir); err != nil {
			return err
		}
	}
	widget, err := connect.New(connect.Config{OAuth: authServer, Users: db, Connections: conns,
		SecureCookies: strings.HasPrefix(issuer, "https://"), Log: log})
	if err != nil {
		return err
	}
	authServer.SetWidget(widget)
	// The address is taken before the engine starts or anything is printed: a server that
	// cannot listen starts nothing and says nothing else.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	// The engine runs on a context of its own so that shutdown can stop it after the HTTP
	// server, in order, rather than both at once when the signal arrives.
	if err := engine.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	log.Info("sync engine started", "role", role, "workers", sync.workers)

	srv := api.NewServer(api.Config{MaxBodyBytes: maxBody}, log, readiness{db}, openapi.Handler())
	authServer.Mount(srv)
	widget.Mount(srv)
	srv.MountV2(api.V2{Store: db, Catalog: adapters, Authenticate: authServer.Authenticate,
		CursorKey: derivedKey(fingerprintKey, "opencalico/cursor/v1"), Syncs: engine, Connections: conns, Valuer: valuer})
	if sims != nil {
		if err := sims.mount(srv, db, authServer, sbClient, stdout); err != nil {
			return err
		}
	}
	serveErr := serveOn(ctx, log, ln, srv, shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := engine.Stop(sctx); err != nil {
		log.Warn("stopping the sync engine", "err", err.Error())
	}
	return serveErr
}

// derivedKey derives a key for one purpose from the install's secret key, so that one file
// (or variable) shared by every process of a deployment serves several purposes without one
// key doing two jobs.
func derivedKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// readiness is the database as /readyz sees it: reachable, with the store's migrations and
// the job queue's all applied.
type readiness struct{ *store.Store }

func (r readiness) MigrationsCurrent(ctx context.Context) (bool, error) {
	if ok, err := r.Store.MigrationsCurrent(ctx); err != nil || !ok {
		return ok, err
	}
	return syncer.MigrationsCurrent(ctx, r.Store)
}

// migrateAll applies the store's migrations and the job queue's.
func migrateAll(ctx context.Context, db *store.Store) error {
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating the database: %w", err)
	}
	if err := syncer.Migrate(ctx, db); err != nil {
		return err
	}
	return nil
}

// syncFlags tune the sync engine.
type syncFlags struct {
	workers     int
	leaseTTL    time.Duration
	jobTimeout  time.Duration
	rescueAfter time.Duration
}

func (c *syncFlags) register(fs flagSet) {
	fs.IntVar(&c.workers, "sync-workers", 10, "syncs this process runs at once (roles all and worker)")
	fs.DurationVar(&c.leaseTTL, "sync-lease-ttl", time.Minute, "how long a connection stays claimed by a worker that stopped answering")
	fs.DurationVar(&c.jobTimeout, "sync-job-timeout", 10*time.Minute, "longest run of one sync job; longer syncs go on in further runs")
	fs.DurationVar(&c.rescueAfter, "sync-rescue-after", 0, "when a sync whose worker died is given to another worker (default: job timeout + 1m)")
}

func (c *syncFlags) config(insertOnly bool) syncer.Config {
	return syncer.Config{Workers: c.workers, InsertOnly: insertOnly, LeaseTTL: c.leaseTTL,
		JobTimeout: c.jobTimeout, RescueAfter: c.rescueAfter}
}

// serveOn serves until ctx ends (SIGINT, SIGTERM), then stops accepting and waits up to
// timeout for requests in flight, so that a rolling restart drops nothing.
func serveOn(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, timeout time.Duration) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", opencalico.Version)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
