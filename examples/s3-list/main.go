// Command s3-list is the guides' "aws s3 ls" pod, done right: credentials
// from the pod's service account (irsa.Load — in a pod without IRSA it
// refuses the node's instance role instead of failing later with
// AccessDenied), and a lazily paginated listing of one prefix through
// s3store, which needs only s3:ListBucket with an s3:prefix condition
// (irsactl policy s3 --bucket BUCKET/PREFIX --read-only).
//
//	S3_BUCKET=my-bucket S3_PREFIX=reports/ s3-list
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/s3store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Getenv, os.Stdout, log); err != nil {
		log.Error("s3-list failed", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, out io.Writer, log *slog.Logger) error {
	bucket := getenv("S3_BUCKET")
	if bucket == "" {
		return errors.New("set S3_BUCKET (and optionally S3_PREFIX, S3_MAX_KEYS, S3_PATH_STYLE)")
	}
	prefix := getenv("S3_PREFIX")
	max := 100
	if v := getenv("S3_MAX_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("S3_MAX_KEYS=%q is not a positive number", v)
		}
		max = n
	}
	pathStyle, _ := strconv.ParseBool(getenv("S3_PATH_STYLE"))
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sess, err := irsa.Load(ctx, func(o *irsa.Options) { o.Logger = log })
	if err != nil {
		return err
	}
	store, err := s3store.New(sess.Config(), bucket, func(o *s3store.Options) { o.UsePathStyle = pathStyle })
	if err != nil {
		return err
	}
	n := 0
	for obj, err := range store.List(ctx, prefix) {
		if err != nil {
			return err // errors.Is(err, s3store.ErrAccessDenied) points at the policy
		}
		fmt.Fprintf(out, "%s  %10d  %s\n", obj.LastModified.UTC().Format(time.RFC3339), obj.Size, obj.Key)
		if n++; n >= max {
			fmt.Fprintf(out, "(first %d keys)\n", max)
			break
		}
	}
	fmt.Fprintf(out, "%d object(s) under s3://%s/%s\n", n, bucket, prefix)
	return nil
}
