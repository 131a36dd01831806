package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/store"
)

const clientsSynopsis = `clients create --name N --redirect-uri U [--redirect-uri U2] [--public] [--allow-plain-pkce]
       opencalico clients list [--json]
       opencalico clients delete [flags] CLIENT_ID`

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// runClients registers, lists and deletes partner clients of the authorization server.
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("clients", clientsSynopsis, stderr)
	var (
		sf             storeFlags
		name           string
		redirectURIs   stringList
		public         bool
		allowPlainPKCE bool
		asJSON         bool
	)
	sf.register(fs)
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	sub := args[0]
	switch sub {
	case "create":
		fs.StringVar(&name, "name", "", "the partner's name, shown on the consent screen")
		fs.Var(&redirectURIs, "redirect-uri", "a redirect URI (repeat for several); matched exactly")
		fs.BoolVar(&public, "public", false, "a public client (browser or mobile app): no secret, PKCE required")
		fs.BoolVar(&allowPlainPKCE, "allow-plain-pkce", false, "accept code_challenge_method=plain from this client")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON even on a terminal")
	case "delete":
	default:
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
	if current, err := db.MigrationsCurrent(ctx); err != nil {
		return err
	} else if !current {
		return errors.New("the database is not migrated: run opencalico migrate up (or start serve) first")
	}

	switch sub {
	case "create":
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		client, secret, err := oauth.NewClient(name, redirectURIs, public, allowPlainPKCE)
		if err != nil {
			return err
		}
		if err := db.CreateClient(ctx, client); err != nil {
			return err
		}
		out := map[string]string{"client_id": client.ID}
		if secret != "" {
			// Shown this once; only its hash is stored.
			out["client_secret"] = secret
		}
		return json.NewEncoder(stdout).Encode(out)
	case "list":
		clients, err := db.ListClients(ctx)
		if err != nil {
			return err
		}
		if asJSON || !isTerminal(stdout) {
			type listed struct {
				ClientID       string   `json:"client_id"`
				Name           string   `json:"name"`
				RedirectURIs   []string `json:"redirect_uris"`
				Public         bool     `json:"public"`
				AllowPlainPKCE bool     `json:"allow_plain_pkce"`
				CreatedAt      string   `json:"created_at"`
			}
			out := []listed{}
			for _, c := range clients {
				out = append(out, listed{c.ID, c.Name, c.RedirectURIs, c.Public, c.AllowPlainPKCE, c.CreatedAt.Format("2006-01-02T15:04:05Z")})
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tTYPE\tREDIRECT URIS")
		for _, c := range clients {
			kind := "confidential"
			if c.Public {
				kind = "public"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Name, kind, strings.Join(c.RedirectURIs, " "))
		}
		return tw.Flush()
	default: // delete
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		if err := db.DeleteClient(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted client %s and its consents\n", fs.Arg(0))
		return nil
	}
}
