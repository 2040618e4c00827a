// Command ferretdb-test runs FerretDB v1 (SQLite backend) for fieldcrypt's
// integration tests and demo.
//
// It is FerretDB's own embeddable package (github.com/FerretDB/FerretDB/ferretdb)
// behind a tiny main: the module proxy's copy of cmd/ferretdb refuses to start
// without the build/version/version.txt that FerretDB's release tooling
// generates, while the embeddable package is meant to be built this way. The
// embeddable package keeps its state in memory and disables telemetry itself.
//
// It listens on -listen-addr (port 0 picks a free port) and prints one line,
// "READY <mongodb uri>", to stdout once it accepts connections. It stops on
// SIGINT/SIGTERM, or when its stdin closes, so it never outlives the test run
// that started it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:0", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "", "SQLite data directory URI, e.g. file:/tmp/data/")
	watchStdin := flag.Bool("exit-on-stdin-close", true, "stop when stdin is closed")
	flag.Parse()

	if *sqliteURL == "" {
		log.Fatal("-sqlite-url is required")
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil {
			log.Print(err)
		}
	}()

	fmt.Printf("READY %s\n", f.MongoDBURI())
	<-done
}
