// Command opencalico runs the opencalico server and its operator tasks.
//
// The command only wires packages together: configuration comes from flags and OPENCALICO_*
// variables, and everything it starts is built by the packages it imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/opencalico/opencalico"
)

const usage = `opencalico — a self-hostable crypto account aggregation server.

Usage:
  opencalico serve [flags]          run the HTTP server (see opencalico serve -h)
  opencalico migrate up|status      apply or list database migrations
  opencalico keys rotate            re-wrap every stored secret under a new master key
  opencalico clients create|list|delete   manage the partner clients of the OAuth server
  opencalico sim [flags]            run the provider simulators on loopback ports
  opencalico demo                   start a sandbox server and walk through the API with it
  opencalico version                print the version

Every flag can also be set by an environment variable OPENCALICO_<FLAG>, with dashes as
underscores: --data-dir is OPENCALICO_DATA_DIR. A flag given on the command line wins.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "opencalico:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "sim":
		return runSim(ctx, args[1:], stdout, stderr)
	case "clients":
		return runClients(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "opencalico %s (%s)\n", opencalico.Version, runtime.Version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return errUsage
}
