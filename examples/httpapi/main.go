package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/queue"
)

// shutdownGrace is how long a shutdown waits for requests in progress.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once instead of waiting for the shutdown
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var bad badFlags
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &bad):
		os.Exit(2) // the flag package printed the error and the usage
	case err != nil:
		fmt.Fprintln(os.Stderr, "httpapi:", err)
		os.Exit(1)
	}
}

// badFlags is the error of arguments the flag package refused: it has said
// why, with the usage.
type badFlags struct{ error }

func (e badFlags) Unwrap() error { return e.error }

// config is the command line.

type config struct {
	addr      string
	db        string
	token     string
	tokenFrom string // "flag", "env" or "random"
}

// parse reads the flags; the token comes from -token, else $POOLQ_TOKEN
// (read with lookupEnv), else crypto/rand. A -token or $POOLQ_TOKEN that
// is given but blank, empty included, is refused: a unit file's
// -token "$SECRET" with SECRET unset would otherwise serve with a token no
// client has. The flag package writes its errors and the usage (-h) to
// errOut, stderr in main, as its default does.
func parse(args []string, errOut io.Writer, lookupEnv func(string) (string, bool)) (config, error) {
	var c config
	fs := flag.NewFlagSet("httpapi", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&c.db, "db", "poolq-httpapi.db", "SQLite file (created if missing), or a PostgreSQL URL postgres://…")
	fs.StringVar(&c.token, "token", "", "bearer token clients must send (default: $POOLQ_TOKEN, else a random one)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, badFlags{err}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	flagSet := false
	fs.Visit(func(f *flag.Flag) { flagSet = flagSet || f.Name == "token" })
	env, envSet := lookupEnv("POOLQ_TOKEN")
	// Trimmed, as the server trims the token a client presents: a secret
	// read from a file often ends in a newline, which no header can carry.
	switch given, env := strings.TrimSpace(c.token), strings.TrimSpace(env); {
	case given != "":
		c.token, c.tokenFrom = given, "flag"
	case flagSet:
		return c, errors.New("-token is blank: give a token, or leave it out for $POOLQ_TOKEN or a random one")
	case env != "":
		c.token, c.tokenFrom = env, "env"
	case envSet:
		return c, errors.New("$POOLQ_TOKEN is blank: give a token, or unset it for a random one")
	default:
		c.token, c.tokenFrom = rand.Text(), "random"
	}
	return c, nil
}

// run serves the API until ctx ends, then shuts down gracefully: it stops
// accepting connections, ends waiting dispatches, and waits up to
// shutdownGrace for the requests in progress. The banner and the logs go
// to out, the flag package's errors and usage to errOut.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	cfg, err := parse(args, errOut, os.LookupEnv)
	if err != nil {
		return err
	}
	st, err := opendb.Open(ctx, cfg.db)
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := queue.New(st, queue.Options{})
	if err != nil {
		return err
	}
	defer eng.Close()

	logs := slog.NewTextHandler(out, nil)
	api := newServer(eng, cfg.token, slog.New(logs))
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      MaxWait + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logs, slog.LevelWarn),
	}
	srv.RegisterOnShutdown(api.stopWaiting)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	banner(out, cfg, "http://"+ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// banner prints where the server listens, the token and a sample curl (the
// reference page's create request).
func banner(out io.Writer, cfg config, base string) {
	fmt.Fprintf(out, "poolq httpapi listening on %s (database %s)\n", base, opendb.Describe(cfg.db))
	auth := "Bearer " + cfg.token
	switch cfg.tokenFrom {
	case "env":
		fmt.Fprintln(out, "token: $POOLQ_TOKEN")
		auth = "Bearer $POOLQ_TOKEN"
	case "flag":
		fmt.Fprintf(out, "token: %s (from -token)\n", cfg.token)
	default:
		fmt.Fprintf(out, "token: %s (random; set -token or POOLQ_TOKEN to choose one)\n", cfg.token)
	}
	fmt.Fprintf(out, `try:
  curl --request POST \
    --url %s/api/v1/pools \
    --header "Authorization: %s" \
    --header 'Content-Type: application/json' \
    --data '{"name": "VIP customers", "description": "High-value leads, push first", "type": "FIFO", "max_parallel_items": 10, "max_retries": 3, "is_active": true}'
`, base, auth)
}
