package s3store_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/irsakit/irsakit/internal/awstest"
	standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/internal/awstest/versitygw"
	"github.com/irsakit/irsakit/s3store"
)

// exampleBucket and examplePrefix are what the examples' role may use.
const (
	exampleBucket = "my-bucket"
	examplePrefix = "reports/"
)

// examplePod sets the process environment of a pod whose service account
// is annotated with a role allowed s3store.Policy for exampleBucket and
// examplePrefix, so that the examples run exactly as written for a pod:
// irsa.Load finds AWS_ROLE_ARN and the projected token, STS at
// AWS_ENDPOINT_URL_STS and S3 at AWS_ENDPOINT_URL_S3. The servers are
// versitygw's when it runs, else the in-process OIDC, STS and S3
// stand-ins. Tests that set their own pod environment (podConfig) restore
// this one when they end.
func examplePod(e *versitygw.Env) (closeFn func(), err error) {
	ctx := context.Background()
	policy, err := s3store.Policy(exampleBucket, func(o *s3store.PolicyOptions) { o.Prefix = examplePrefix })
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3store-example-")
	if err != nil {
		return nil, err
	}
	closers := []func(){func() { _ = os.RemoveAll(dir) }}
	closeFn = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeFn()
		}
	}()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, err
	}
	vars := map[string]string{"AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_EC2_METADATA_DISABLED": "true"}
	if e != nil {
		const sa = "example-app"
		subject := versitygw.Subject("apps", sa)
		roleARN, err := e.CreateRole(ctx, sa, subject, map[string]string{"s3store": string(policy)})
		if err != nil {
			return nil, err
		}
		tokenFile := filepath.Join(dir, "token")
		if _, err := e.Issuer.WriteTokenFile(tokenFile, subject); err != nil {
			return nil, err
		}
		if err := e.CreateBucket(ctx, exampleBucket); err != nil {
			return nil, err
		}
		maps.Copy(vars, e.IRSAVars(roleARN, tokenFile))
	} else {
		pod, err := awstest.New(func(o *awstest.Options) { o.RolePolicies = [][]byte{policy} })
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = pod.Close() })
		srv := standin.New(pod.Registry, pod.IAM, func(o *standin.Options) { o.Region = pod.Region })
		endpoint, err := srv.Start()
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = srv.Close() })
		if err := srv.CreateBucket(exampleBucket); err != nil {
			return nil, err
		}
		for _, kv := range pod.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		vars["AWS_ENDPOINT_URL_S3"] = endpoint
	}
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL",
		"AWS_DEFAULT_REGION", "KUBERNETES_SERVICE_HOST",
	} {
		if err := os.Unsetenv(k); err != nil {
			return nil, err
		}
	}
	for k, v := range vars {
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	return closeFn, nil
}
