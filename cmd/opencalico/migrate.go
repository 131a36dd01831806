package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/opencalico/opencalico/store"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate up|status [flags]", stderr)
	var sf storeFlags
	var asJSON bool
	sf.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON even on a terminal")
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		fs.Usage()
		return errUsage
	}
	verb := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	db, err := store.Open(ctx, sf.databaseURL, sf.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if verb == "up" {
		if err := migrateAll(ctx, db); err != nil {
			return err
		}
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if asJSON || !isTerminal(stdout) {
		type row struct {
			Version   int64      `json:"version"`
			Name      string     `json:"name"`
			Applied   bool       `json:"applied"`
			AppliedAt *time.Time `json:"applied_at"`
		}
		rows := make([]row, 0, len(status))
		for _, m := range status {
			r := row{Version: m.Version, Name: m.Name, Applied: m.Applied}
			if m.Applied && !m.AppliedAt.IsZero() {
				at := m.AppliedAt.UTC()
				r.AppliedAt = &at
			}
			rows = append(rows, r)
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"migrations": rows})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE")
	for _, m := range status {
		state := "pending"
		if m.Applied {
			state = "applied " + m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, state)
	}
	return tw.Flush()
}
