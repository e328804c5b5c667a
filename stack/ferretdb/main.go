// Command clickpulse-ferretdb runs FerretDB v1 (MongoDB wire protocol over SQLite) on one address.
//
// It embeds FerretDB's `ferretdb` package because `go install .../cmd/ferretdb` builds a binary
// that panics at start (its generated version file is missing from the module).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "data", "directory for the SQLite databases")
	pgURL := flag.String("postgresql-url", "", "use this PostgreSQL database as the backend instead of SQLite")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelWarn
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	abs, err := filepath.Abs(*dataDir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "clickpulse-ferretdb: data dir %q: %v\n", *dataDir, err)
		os.Exit(1)
	}

	config := &ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/?_txlock=immediate",
	}
	if *pgURL != "" {
		// The SQLite backend scans a table for every upsert (about 20 upserts/s at 20k documents, measured)
		// and hung under concurrent bulk upserts; PostgreSQL, FerretDB v1's main backend, does neither.
		config.Handler = "postgresql"
		config.SQLiteURL = ""
		config.PostgreSQLURL = *pgURL
	}
	f, err := ferretdb.New(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clickpulse-ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(os.Stderr, "clickpulse-ferretdb: listening on %s, backend %s\n", *listen, config.Handler)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "clickpulse-ferretdb: %v\n", err)
		os.Exit(1)
	}
}
