// Command secret-reader is the smallest IRSA program of the guides — a pod
// that reads one secret — done right: credentials from the pod's service
// account (irsa.Load), the secret through a cache (secrets), and the value
// never printed: it reports the version, the stages, the size and, for a
// JSON secret, the field names.
//
//	SECRET_ID=prod/app/db secret-reader
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/secrets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Getenv("SECRET_ID"), os.Stdout, log); err != nil {
		log.Error("secret-reader failed", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

func run(ctx context.Context, id string, out io.Writer, log *slog.Logger) error {
	if id == "" {
		return errors.New("set SECRET_ID to the secret's name or ARN")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sess, err := irsa.Load(ctx, func(o *irsa.Options) { o.Logger = log })
	if err != nil {
		return err
	}
	cache, err := secrets.New(sess.Config())
	if err != nil {
		return err
	}
	defer cache.Close()
	v, err := cache.Get(ctx, id)
	if err != nil {
		return err // errors.Is(err, secrets.ErrNotFound / ErrAccessDenied) name the cause
	}
	fmt.Fprintf(out, "secret:   %s\n", v.ARN)
	fmt.Fprintf(out, "version:  %s %v\n", v.VersionID, v.VersionStages())
	fmt.Fprintf(out, "size:     %d bytes (value not shown)\n", len(v.Bytes()))
	var fields map[string]json.RawMessage
	if !v.IsBinary() && json.Unmarshal(v.Bytes(), &fields) == nil {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(out, "fields:   %v\n", keys)
	}
	return nil
}
