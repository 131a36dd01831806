package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/api"
	"github.com/opencalico/opencalico/openapi"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
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
	)
	sf.register(fs)
	kf.register(fs)
	lf.register(fs)
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&environment, "env", "development", "development or production; production never creates a master key by itself")
	fs.Int64Var(&maxBody, "max-body-bytes", api.DefaultConfig().MaxBodyBytes, "largest request body accepted; larger ones get 413")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for requests in flight")
	fs.BoolVar(&migrate, "migrate", true, "apply pending database migrations at start")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if environment != "development" && environment != "production" {
		return fmt.Errorf("--env %q: want development or production", environment)
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
		if err := db.Migrate(ctx); err != nil {
			return fmt.Errorf("migrating the database: %w", err)
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
	_ = keyring // the connection services seal and open credentials with it

	srv := api.NewServer(api.Config{MaxBodyBytes: maxBody}, log, db, openapi.Handler())
	return listenAndServe(ctx, log, addr, srv, shutdownTimeout)
}

// listenAndServe serves until ctx ends (SIGINT, SIGTERM), then stops accepting and waits up
// to timeout for requests in flight, so that a rolling restart drops nothing.
func listenAndServe(ctx context.Context, log *slog.Logger, addr string, h http.Handler, timeout time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
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
