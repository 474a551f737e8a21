package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/examples/internal/sandboxtest"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/secrets"
)

func TestReadsTheSecretWithoutPrintingIt(t *testing.T) {
	dir := t.TempDir()
	bin, err := sandboxtest.BuildIrsactl(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandboxtest.Start(ctx, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Stop(); err != nil {
			t.Error(err)
		}
	}()
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out bytes.Buffer
	if err := run(ctx, sb.Vars["SECRET_ID"], &out, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "AWSCURRENT") || !strings.Contains(out.String(), "value not shown") {
		t.Errorf("output:\n%s", out.String())
	}
	// Read the value the way an application would, and check it is not in the output.
	c, err := secrets.New(mustConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.String(ctx, sb.Vars["SECRET_ID"])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), v) {
		t.Fatal("secret-reader printed the secret value")
	}
	// A secret the role may not read: a named error, no value.
	out.Reset()
	err = run(ctx, "other/secret", &out, log)
	if !errors.Is(err, secrets.ErrAccessDenied) {
		t.Errorf("unreadable secret: %v", err)
	}
	if err := run(ctx, "", &out, log); err == nil {
		t.Error("no SECRET_ID accepted")
	}
}

func mustConfig(t *testing.T) aws.Config {
	t.Helper()
	sess, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	if err != nil {
		t.Fatal(err)
	}
	return sess.Config()
}
