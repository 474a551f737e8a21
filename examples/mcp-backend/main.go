// Command mcp-backend is the backend of the IRSA guides' MCP server, done
// right: one IRSA session (irsa.Load, which logs "Using IRSA authentication
// for AWS services") feeds an Aurora PostgreSQL pool with IAM database
// authentication (rdsauth), an ElastiCache client with IAM authentication
// and live re-authentication (elasticacheauth), an S3 store (s3store) and a
// Secrets Manager cache (secrets). Configuration comes from the
// environment (see Config). It serves /healthz (liveness), /readyz (probes
// every dependency) and a small notes API, and shuts down gracefully on
// SIGTERM.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log, Getenv, nil); err != nil {
		log.Error("mcp-backend stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

// run serves until ctx ends, then drains in-flight requests. ready, if not
// nil, receives the listening address.
func run(ctx context.Context, log *slog.Logger, getenv func(string) string, ready chan<- string) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("mcp-backend listening", slog.String("addr", ln.Addr().String()))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("mcp-backend stopped cleanly")
	return nil
}
