package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/irsakit/irsakit/irsa"
)

func TestConfigErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "S3_BUCKET"},
		{map[string]string{"S3_BUCKET": "b", "S3_MAX_KEYS": "0"}, "S3_MAX_KEYS"},
	} {
		err := run(context.Background(), func(k string) string { return tc.env[k] }, &bytes.Buffer{}, log)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}

// In a pod without IRSA the listing is refused before any AWS call, instead
// of failing later with AccessDenied from the node's role.
func TestNodeRoleRefused(t *testing.T) {
	for _, k := range []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	err := run(context.Background(), func(k string) string { return map[string]string{"S3_BUCKET": "mcp-data"}[k] }, &bytes.Buffer{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, irsa.ErrNodeRole) {
		t.Fatalf("err = %v, want irsa.ErrNodeRole", err)
	}
}
