// Command mcp-backend is the backend of the IRSA guides' MCP server, done
// right: one IRSA session (irsa.Load, which logs "Using IRSA authentication
// for AWS services") feeds an Aurora PostgreSQL pool with IAM database
// authentication (rdsauth), an ElastiCache client with IAM authentication
// and live re-authentication (elasticacheauth), an S3 store (s3store) and a
// Secrets Manager cache (secrets). Configuration comes from the
// environment (see Config). It serves /healthz (liveness), /readyz
// (readiness: its database), /statusz (every dependency probed), a small
// notes API, and the counters of its credential, token and secret caches
// at /debug/irsa (and, through expvar, /debug/vars), and shuts down
// gracefully on SIGTERM.
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
	if err := run(ctx, log, Getenv, hooks{}); err != nil {
		log.Error("mcp-backend stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

// hooks tell a test how far run has come.
type hooks struct {
	listening func(addr string) // /healthz answers
	ready     func()            // the dependencies are connected
}

// run serves /healthz at once, connects the dependencies, then serves the
// API until ctx ends, and drains in-flight requests.
func run(ctx context.Context, log *slog.Logger, getenv func(string) string, h hooks) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	// Liveness answers before and whatever the dependencies do: a slow STS
	// or database must not get the container restarted.
	srv := &http.Server{Handler: newRouter(), ReadHeaderTimeout: 10 * time.Second}
	router := srv.Handler.(*router)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("mcp-backend listening", slog.String("addr", ln.Addr().String()))
	if h.listening != nil {
		h.listening(ln.Addr().String())
	}
	shutdown := func() error {
		log.Info("shutting down: draining requests")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}

	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		shutdown()
		return err
	}
	defer app.Close()
	router.setApp(app)
	log.Info("mcp-backend ready")
	if h.ready != nil {
		h.ready()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if err := shutdown(); err != nil {
		return err
	}
	log.Info("mcp-backend stopped cleanly")
	return nil
}
