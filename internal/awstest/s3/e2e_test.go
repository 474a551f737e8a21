package s3_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/irsakit/irsakit/internal/awstest"
	standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/s3store"
)

// TestEndToEndIRSA runs the pod's path: the projected token, STS
// AssumeRoleWithWebIdentity, the role's s3store.Policy, and S3 found
// through AWS_ENDPOINT_URL_S3 by the SDK's own configuration loading (with
// AWS_CA_BUNDLE for the HTTPS server).
func TestEndToEndIRSA(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			env := awstest.Start(t)
			pol, err := s3store.Policy("pod-bucket", func(o *s3store.PolicyOptions) { o.Prefix = "app/" })
			if err != nil {
				t.Fatal(err)
			}
			if err := env.AttachPolicy(pol); err != nil {
				t.Fatal(err)
			}
			srv := standin.New(env.Registry, env.IAM, func(o *standin.Options) { o.Region = env.Region; o.TLS = useTLS })
			endpoint, err := srv.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			if err := srv.CreateBucket("pod-bucket"); err != nil {
				t.Fatal(err)
			}
			env.Setenv(t)
			t.Setenv("AWS_ENDPOINT_URL_S3", endpoint)
			if useTLS {
				ca := filepath.Join(t.TempDir(), "s3-ca.pem")
				if err := os.WriteFile(ca, srv.CAPEM(), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Setenv("AWS_CA_BUNDLE", ca)
			}

			sess, err := irsa.Load(ctx, func(o *irsa.Options) { o.Logger = slog.New(slog.DiscardHandler) })
			if err != nil {
				t.Fatal(err)
			}
			st, err := s3store.New(sess.Config(), "pod-bucket", func(o *s3store.Options) { o.UsePathStyle = true })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Put(ctx, "app/hello.txt", strings.NewReader("hello from a pod")); err != nil {
				t.Fatal(err)
			}
			r, err := st.Get(ctx, "app/hello.txt")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "hello from a pod" {
				t.Errorf("Get = %q", b)
			}
			n := 0
			for _, err := range st.List(ctx, "app/") {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 1 {
				t.Errorf("listed %d objects, want 1", n)
			}
			if _, err := st.Put(ctx, "other/x", strings.NewReader("x")); err == nil {
				t.Error("Put outside the role's prefix succeeded")
			}
			if got := env.STS.Calls("AssumeRoleWithWebIdentity"); got != 1 {
				t.Errorf("%d AssumeRoleWithWebIdentity calls, want 1", got)
			}

			// The plain SDK configuration path sees the same endpoint.
			cfg, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st2, err := s3store.New(cfg, "pod-bucket", func(o *s3store.Options) { o.UsePathStyle = true })
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := st2.Exists(ctx, "app/hello.txt"); !ok || err != nil {
				t.Errorf("Exists through config.LoadDefaultConfig: %v %v", ok, err)
			}
		})
	}
}
