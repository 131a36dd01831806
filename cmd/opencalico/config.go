package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// envName is the environment variable that stands for a flag: --data-dir is
// OPENCALICO_DATA_DIR.
func envName(flagName string) string {
	return "OPENCALICO_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// masterKeyNote ends the usage of the commands that read the master key, which has no flag.
const masterKeyNote = `
  OPENCALICO_MASTER_KEY
      the master key itself (base64 of 32 bytes), used instead of the key file; during a
      rotation "new,old". Only a variable, never a flag, so it stays out of process lists.
`

// newFlagSet returns a flag set whose usage lists each flag with its environment variable,
// then the notes.
func newFlagSet(name, synopsis string, stderr io.Writer, notes ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: opencalico %s\n\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(stderr, "  --%s, %s%s\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		})
		for _, n := range notes {
			fmt.Fprint(stderr, n)
		}
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line from its
// environment variable, so that the command line always wins.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %v", envName(f.Name), e)
			}
		}
	})
	return err
}

// storeFlags are the flags of every command that opens the database.
type storeFlags struct {
	dataDir     string
	databaseURL string
}

func (c *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory for the SQLite database, the master key file and other state")
	fs.StringVar(&c.databaseURL, "database-url", "", "postgres://… to use PostgreSQL; empty for SQLite in the data directory")
}

// keyFlags say where the master key comes from. The key itself is read only from
// OPENCALICO_MASTER_KEY, never from a flag, so that it does not show in process lists.
type keyFlags struct {
	keyFile string
}

func (c *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.keyFile, "master-key-file", "", "master key file (default <data-dir>/master.key); OPENCALICO_MASTER_KEY, if set, is used instead")
}

func (c *keyFlags) path(dataDir string) string {
	if c.keyFile != "" {
		return c.keyFile
	}
	return filepath.Join(dataDir, "master.key")
}

// logFlags choose the log format and level.
type logFlags struct {
	level  string
	format string
}

func (c *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.format, "log-format", "text", "text or json")
}

func (c *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.format)
}

// flagSet is the part of *flag.FlagSet that flag groups register on.
type flagSet interface {
	StringVar(p *string, name, value, usage string)
	IntVar(p *int, name string, value int, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}
