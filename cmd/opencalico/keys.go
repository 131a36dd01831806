package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys", "keys rotate [flags]", stderr, masterKeyNote)
	var (
		sf     storeFlags
		kf     keyFlags
		grace  time.Duration
		asJSON bool
	)
	sf.register(fs)
	kf.register(fs)
	fs.DurationVar(&grace, "grace", secrets.DefaultGracePeriod, "wait before the last pass, for seals in flight on running servers")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON even on a terminal")
	if len(args) == 0 || args[0] != "rotate" {
		fs.Usage()
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	db, err := store.Open(ctx, sf.databaseURL, sf.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	// Rotation never creates a first key: a missing key file here means a wrong --data-dir.
	ring, _, err := secrets.LoadKeyring(os.Getenv("OPENCALICO_MASTER_KEY"), kf.path(sf.dataDir), false)
	if err != nil {
		return err
	}
	if grace <= 0 {
		grace = -1 // RotateOptions: negative means no wait
	}
	report, err := secrets.Rotate(ctx, db, ring, secrets.RotateOptions{
		GracePeriod: grace,
		Progress: func(p secrets.RotationProgress) {
			fmt.Fprintf(stderr, "pass %d: %d secrets scanned, %d re-wrapped\n", p.Pass, p.Scanned, p.Rewrapped)
		},
	})
	if err != nil {
		return err
	}
	if asJSON || !isTerminal(stdout) {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"new_key_id": report.NewKeyID, "retired_key_ids": report.RetiredKeyIDs,
			"rewrapped": report.Rewrapped, "passes": report.Passes, "source": report.Source,
		})
	}
	fmt.Fprintf(stdout, "every secret is wrapped under key %s (%d re-wrapped in %d passes)\n",
		report.NewKeyID, report.Rewrapped, report.Passes)
	if report.Source != secrets.SourceFile && len(report.RetiredKeyIDs) > 0 {
		fmt.Fprintf(stdout, "keys %v are no longer used: remove them from OPENCALICO_MASTER_KEY\n", report.RetiredKeyIDs)
	}
	return nil
}
