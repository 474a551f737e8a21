package secretsmanager_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	standin "github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

const (
	region     = "eu-west-1"
	account    = sigv4.DefaultAccount
	adminRole  = "arn:aws:iam::111122223333:role/admin"
	readerRole = "arn:aws:iam::111122223333:role/reader"
	emptyRole  = "arn:aws:iam::111122223333:role/nothing"
	trust      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
)

var (
	reg      *sigv4.Registry
	policies *iam.IAM
	srv      *standin.Server
	baseURL  string
)

func TestMain(m *testing.M) {
	reg = sigv4.NewRegistry(nil)
	policies = iam.New(account)
	must(policies.PutRole(adminRole, []byte(trust), []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}]}`)))
	must(policies.PutRole(readerRole, []byte(trust), []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/readable-??????"}]}`)))
	must(policies.PutRole(emptyRole, []byte(trust)))
	srv = standin.New(reg, policies, func(o *standin.Options) { o.Region = region })
	var err error
	baseURL, err = srv.Start()
	must(err)
	code := m.Run()
	_ = srv.Close()
	os.Exit(code)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func session(t testing.TB, role string) sigv4.Credentials {
	t.Helper()
	c, err := reg.IssueSession(role, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clientFor(c sigv4.Credentials, optFns ...func(*aws.Config)) *sm.Client {
	cfg := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		BaseEndpoint: aws.String(baseURL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	for _, fn := range optFns {
		fn(&cfg)
	}
	return sm.NewFromConfig(cfg)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// uniq returns a secret name not used by other tests.
func uniq(t testing.TB, prefix string) string {
	return prefix + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "." + strconv.FormatInt(seq.Add(1), 10)
}

var seq atomic.Int64

func TestLifecycleThroughSDK(t *testing.T) {
	ctx := context.Background()
	admin := clientFor(session(t, adminRole))
	name := uniq(t, "app/")

	created, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{"password":"v1"}`), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ARN)
	prefix := "arn:aws:secretsmanager:" + region + ":" + account + ":secret:" + name + "-"
	if !strings.HasPrefix(arn, prefix) || len(arn) != len(prefix)+6 {
		t.Fatalf("ARN %q does not look like %s??????", arn, prefix)
	}
	v1 := aws.ToString(created.VersionId)
	if len(v1) != 36 {
		t.Fatalf("version id %q is not the SDK's idempotency token (a UUID)", v1)
	}

	// By name, full ARN and partial ARN.
	for _, id := range []string{name, arn, strings.TrimSuffix(arn, arn[len(arn)-7:])} {
		out, err := admin.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue(%q): %v", id, err)
		}
		if aws.ToString(out.SecretString) != `{"password":"v1"}` || aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != name ||
			aws.ToString(out.VersionId) != v1 || fmt.Sprint(out.VersionStages) != "[AWSCURRENT]" || out.CreatedDate == nil {
			t.Fatalf("GetSecretValue(%q) = %+v", id, out)
		}
	}

	// Rotation: AWSCURRENT moves, the old version becomes AWSPREVIOUS.
	put, err := admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"password":"v2"}`)})
	if err != nil {
		t.Fatal(err)
	}
	v2 := aws.ToString(put.VersionId)
	if fmt.Sprint(put.VersionStages) != "[AWSCURRENT]" || v2 == v1 {
		t.Fatalf("PutSecretValue = %+v", put)
	}
	desc, err := admin.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(desc.VersionIdsToStages[v1]) != "[AWSPREVIOUS]" || fmt.Sprint(desc.VersionIdsToStages[v2]) != "[AWSCURRENT]" ||
		aws.ToString(desc.Description) != "d" || desc.LastAccessedDate == nil || desc.LastChangedDate == nil {
		t.Fatalf("DescribeSecret = %+v", desc)
	}
	get := func(in *sm.GetSecretValueInput) string {
		t.Helper()
		in.SecretId = aws.String(name)
		out, err := admin.GetSecretValue(ctx, in)
		if err != nil {
			t.Fatalf("GetSecretValue(%+v): %v", in, err)
		}
		return aws.ToString(out.SecretString)
	}
	if got := get(&sm.GetSecretValueInput{}); got != `{"password":"v2"}` {
		t.Fatalf("AWSCURRENT after rotation = %s", got)
	}
	if got := get(&sm.GetSecretValueInput{VersionStage: aws.String("AWSPREVIOUS")}); got != `{"password":"v1"}` {
		t.Fatalf("AWSPREVIOUS = %s", got)
	}
	if got := get(&sm.GetSecretValueInput{VersionId: aws.String(v1)}); got != `{"password":"v1"}` {
		t.Fatalf("by version id = %s", got)
	}
	if got := get(&sm.GetSecretValueInput{VersionId: aws.String(v2), VersionStage: aws.String("AWSCURRENT")}); got != `{"password":"v2"}` {
		t.Fatalf("by version id and stage = %s", got)
	}

	// Roll back with UpdateSecretVersionStage: AWS demands RemoveFromVersionId.
	_, err = admin.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v1)})
	var ipe *types.InvalidParameterException
	if !errors.As(err, &ipe) || !strings.Contains(apiMessage(err), "RemoveFromVersionId") {
		t.Fatalf("move without RemoveFromVersionId: %v", err)
	}
	if _, err = admin.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(v1), RemoveFromVersionId: aws.String(v2)}); err != nil {
		t.Fatal(err)
	}
	if got := get(&sm.GetSecretValueInput{}); got != `{"password":"v1"}` {
		t.Fatalf("AWSCURRENT after rollback = %s", got)
	}
	if got := get(&sm.GetSecretValueInput{VersionStage: aws.String("AWSPREVIOUS")}); got != `{"password":"v2"}` {
		t.Fatalf("AWSPREVIOUS after rollback = %s", got)
	}

	// Idempotent PutSecretValue: same token and value is a no-op, another value is refused.
	tok := "11111111-2222-4333-8444-555555555555"
	for i := 0; i < 2; i++ {
		out, err := admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v3")})
		if err != nil || aws.ToString(out.VersionId) != tok {
			t.Fatalf("PutSecretValue #%d = %+v, %v", i, out, err)
		}
	}
	_, err = admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("other")})
	var ree *types.ResourceExistsException
	if !errors.As(err, &ree) {
		t.Fatalf("modifying a version: %v", err)
	}

	// A custom stage.
	if _, err := admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("pending"), VersionStages: []string{"AWSPENDING"}}); err != nil {
		t.Fatal(err)
	}
	if got := get(&sm.GetSecretValueInput{VersionStage: aws.String("AWSPENDING")}); got != "pending" {
		t.Fatalf("AWSPENDING = %s", got)
	}
	if got := get(&sm.GetSecretValueInput{}); got != "v3" {
		t.Fatalf("AWSCURRENT = %s", got)
	}
}

func TestBinarySecret(t *testing.T) {
	ctx := context.Background()
	admin := clientFor(session(t, adminRole))
	name := uniq(t, "bin/")
	blob := []byte{0, 1, 2, 0xff, 'x'}
	if _, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretBinary: blob}); err != nil {
		t.Fatal(err)
	}
	out, err := admin.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.SecretBinary, blob) || out.SecretString != nil {
		t.Fatalf("binary round trip: %+v", out)
	}
}

// The server refuses what Secrets Manager refuses, with its codes.
func TestRejections(t *testing.T) {
	ctx := context.Background()
	admin := clientFor(session(t, adminRole))
	readable := "app/readable"
	if _, ok := srv.ARN(readable); !ok {
		if _, _, err := srv.CreateString(readable, "r"); err != nil {
			t.Fatal(err)
		}
	}
	other := uniq(t, "app/other")
	otherARN, _, err := srv.CreateString(other, "o")
	if err != nil {
		t.Fatal(err)
	}
	deleted := uniq(t, "app/deleted")
	if _, _, err := srv.CreateString(deleted, "d"); err != nil {
		t.Fatal(err)
	}
	must(srv.Delete(deleted))
	broken := uniq(t, "app/kms")
	if _, _, err := srv.CreateString(broken, "k"); err != nil {
		t.Fatal(err)
	}
	must(srv.SetDecryptFailure(broken, true))
	empty := uniq(t, "app/empty")
	if _, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(empty)}); err != nil {
		t.Fatal(err)
	}

	unknown := clientFor(sigv4.Credentials{AccessKeyID: "ASIAUNKNOWNUNKNOWN00", SecretAccessKey: "x", SessionToken: "y"})
	good := session(t, adminRole)
	wrongSecret := good
	wrongSecret.SecretAccessKey = "not-the-secret"
	expired, err := reg.IssueSession(adminRole, "old", 0)
	if err != nil {
		t.Fatal(err)
	}
	reader := clientFor(session(t, readerRole))
	nobody := clientFor(session(t, emptyRole))

	get := func(c *sm.Client, id string, optFns ...func(*sm.GetSecretValueInput)) error {
		in := &sm.GetSecretValueInput{SecretId: aws.String(id)}
		for _, fn := range optFns {
			fn(in)
		}
		_, err := c.GetSecretValue(ctx, in)
		return err
	}
	cases := []struct {
		name, code, msg string
		call            func() error
	}{
		{"unknown access key", "UnrecognizedClientException", "The security token included in the request is invalid.", func() error { return get(unknown, readable) }},
		{"wrong secret key", "InvalidSignatureException", "The request signature we calculated does not match", func() error { return get(clientFor(wrongSecret), readable) }},
		{"expired credentials", "ExpiredTokenException", "The security token included in the request is expired", func() error { return get(clientFor(expired), readable) }},
		{"wrong region", "InvalidSignatureException", "region", func() error {
			return get(clientFor(good, func(c *aws.Config) { c.Region = "us-east-1" }), readable)
		}},
		{"no policy", "AccessDeniedException", "User: arn:aws:sts::111122223333:assumed-role/nothing/test is not authorized to perform: secretsmanager:GetSecretValue on resource: app/readable because no identity-based policy allows the secretsmanager:GetSecretValue action",
			func() error { return get(nobody, readable) }},
		{"outside the policy", "AccessDeniedException", "secretsmanager:GetSecretValue on resource: " + otherARN, func() error { return get(reader, otherARN) }},
		{"describe not granted", "AccessDeniedException", "secretsmanager:DescribeSecret", func() error {
			_, err := reader.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(readable)})
			return err
		}},
		{"unknown secret, narrow policy: IAM decides first", "AccessDeniedException", "on resource: app/nope", func() error { return get(reader, "app/nope") }},
		{"unknown secret", "ResourceNotFoundException", "Secrets Manager can't find the specified secret.", func() error { return get(admin, "app/nope") }},
		{"unknown ARN suffix", "ResourceNotFoundException", "can't find", func() error { return get(admin, otherARN[:len(otherARN)-6]+"ZZZZZZ") }},
		{"other account", "ResourceNotFoundException", "can't find", func() error {
			return get(admin, strings.Replace(otherARN, account, "999999999999", 1))
		}},
		{"unknown stage", "ResourceNotFoundException", "staging label: NOPE", func() error {
			return get(admin, readable, func(in *sm.GetSecretValueInput) { in.VersionStage = aws.String("NOPE") })
		}},
		{"unknown version", "ResourceNotFoundException", "VersionId: 00000000-0000-4000-8000-000000000000", func() error {
			return get(admin, readable, func(in *sm.GetSecretValueInput) { in.VersionId = aws.String("00000000-0000-4000-8000-000000000000") })
		}},
		{"short version id", "ValidationException", "versionId", func() error {
			return get(admin, readable, func(in *sm.GetSecretValueInput) { in.VersionId = aws.String("v1") })
		}},
		{"secret without value", "ResourceNotFoundException", "staging label: AWSCURRENT", func() error { return get(admin, empty) }},
		{"marked for deletion", "InvalidRequestException", "marked for deletion", func() error { return get(admin, deleted) }},
		{"KMS key unusable", "DecryptionFailure", "can't decrypt", func() error { return get(admin, broken) }},
		{"both string and binary", "InvalidParameterException", "both", func() error {
			_, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("x/both"), SecretString: aws.String("s"), SecretBinary: []byte("b")})
			return err
		}},
		{"bad name", "InvalidParameterException", "Invalid name", func() error {
			_, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("has space"), SecretString: aws.String("s")})
			return err
		}},
		{"existing name", "ResourceExistsException", "already exists", func() error {
			_, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(other), SecretString: aws.String("s")})
			return err
		}},
		{"put without value", "InvalidRequestException", "SecretString or SecretBinary", func() error {
			_, err := admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(other)})
			return err
		}},
		{"put not granted", "AccessDeniedException", "secretsmanager:PutSecretValue", func() error {
			_, err := reader.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(readable), SecretString: aws.String("x")})
			return err
		}},
		{"remove AWSCURRENT without moving it", "InvalidParameterException", "AWSCURRENT", func() error {
			st := srv.Stages(other)
			var cur string
			for id, s := range st {
				cur = id
				_ = s
			}
			_, err := admin.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(other), VersionStage: aws.String("AWSCURRENT"), RemoveFromVersionId: aws.String(cur)})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if apiCode(err) != tc.code || !strings.Contains(apiMessage(err), tc.msg) {
				t.Fatalf("got %v (code %q, message %q), want %s containing %q", err, apiCode(err), apiMessage(err), tc.code, tc.msg)
			}
		})
	}
	// The reader's policy does allow its own secret.
	if err := get(reader, readable); err != nil {
		t.Fatalf("reader denied its own secret: %v", err)
	}
	var rnf *types.ResourceNotFoundException
	if err := get(admin, "app/nope"); !errors.As(err, &rnf) {
		t.Fatalf("not found is not typed: %T", err)
	}
	var df *types.DecryptionFailure
	if err := get(admin, broken); !errors.As(err, &df) {
		t.Fatalf("DecryptionFailure is not typed: %T", err)
	}
}

// rawCall signs (or not) a hand-built request, for what the SDK never sends.
func rawCall(t *testing.T, c sigv4.Credentials, target, ctype, body string, mutate func(*http.Request)) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if c.AccessKeyID != "" {
		sum := sha256.Sum256([]byte(body))
		s := v4.NewSigner()
		if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken},
			req, hex.EncodeToString(sum[:]), "secretsmanager", region, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Fatalf("response Content-Type %q", ct)
	}
	if resp.Header.Get("X-Amzn-RequestId") == "" {
		t.Fatal("no x-amzn-RequestId")
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		var anyJSON map[string]any
		if err2 := json.Unmarshal(b, &anyJSON); err2 != nil {
			t.Fatalf("response is not JSON: %s", b)
		}
	}
	return resp.StatusCode, m
}

func TestProtocolRejections(t *testing.T) {
	c := session(t, adminRole)
	const ct = "application/x-amz-json-1.1"
	cases := []struct {
		name, target, ctype, body string
		creds                     sigv4.Credentials
		mutate                    func(*http.Request)
		code                      string
	}{
		{"unsigned", "secretsmanager.GetSecretValue", ct, `{"SecretId":"x"}`, sigv4.Credentials{}, nil, "MissingAuthenticationTokenException"},
		{"body changed after signing", "secretsmanager.GetSecretValue", ct, `{"SecretId":"x"}`, c, func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"SecretId":"y"}`))
			r.ContentLength = int64(len(`{"SecretId":"y"}`))
		}, "InvalidSignatureException"},
		{"signed for another service", "secretsmanager.GetSecretValue", ct, `{"SecretId":"x"}`, c, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/secretsmanager/", "/kms/", 1))
		}, "InvalidSignatureException"},
		{"session token missing", "secretsmanager.GetSecretValue", ct, `{"SecretId":"x"}`, c, func(r *http.Request) { r.Header.Del("X-Amz-Security-Token") }, "UnrecognizedClientException"},
		{"unknown operation", "secretsmanager.StealSecret", ct, `{}`, c, nil, "UnknownOperationException"},
		{"wrong content type", "secretsmanager.GetSecretValue", "application/json", `{"SecretId":"x"}`, c, nil, "UnknownOperationException"},
		{"malformed JSON", "secretsmanager.GetSecretValue", ct, `{"SecretId":`, c, nil, "SerializationException"},
		{"wrong member type", "secretsmanager.GetSecretValue", ct, `{"SecretId":42}`, c, nil, "SerializationException"},
		{"missing SecretId", "secretsmanager.GetSecretValue", ct, `{}`, c, nil, "ValidationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, m := rawCall(t, tc.creds, tc.target, tc.ctype, tc.body, tc.mutate)
			if status != http.StatusBadRequest || m["__type"] != tc.code {
				t.Fatalf("got %d %v, want 400 %s", status, m, tc.code)
			}
		})
	}
}

func TestCountsAndFaults(t *testing.T) {
	ctx := context.Background()
	name := uniq(t, "faults/")
	if _, _, err := srv.CreateString(name, "v"); err != nil {
		t.Fatal(err)
	}
	cl := clientFor(session(t, adminRole))
	get := func(ctx context.Context) error {
		_, err := cl.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name)})
		return err
	}
	before := srv.Calls(standin.OpGetSecretValue)
	srv.FailNext(standin.OpGetSecretValue, 2, "InternalServiceError")
	for i := 0; i < 2; i++ {
		var ise *types.InternalServiceError
		if err := get(ctx); !errors.As(err, &ise) {
			t.Fatalf("fault %d: %v", i, err)
		}
	}
	if err := get(ctx); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	srv.FailNext(standin.OpGetSecretValue, 1, "DecryptionFailure")
	var df *types.DecryptionFailure
	if err := get(ctx); !errors.As(err, &df) {
		t.Fatalf("injected DecryptionFailure: %v", err)
	}
	if got := srv.Calls(standin.OpGetSecretValue) - before; got != 4 {
		t.Fatalf("counted %d GetSecretValue calls, want 4", got)
	}

	srv.SetDown(true)
	err := get(ctx)
	srv.SetDown(false)
	if err == nil || apiCode(err) != "" {
		t.Fatalf("down server answered: %v", err)
	}
	if err := get(ctx); err != nil {
		t.Fatalf("back up: %v", err)
	}

	srv.SetDelay(time.Minute)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = get(tctx)
	cancel()
	srv.SetDelay(0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed server: %v", err)
	}
}

// The request the SDK sends and the answers the server gives match the
// shapes in the SDK module's own request/response snapshots.
func TestWireMatchesSDKSnapshots(t *testing.T) {
	dir := sdkModuleDir(t)
	ctx := context.Background()
	rec := &recorder{}
	cl := clientFor(session(t, adminRole), func(c *aws.Config) { c.HTTPClient = &http.Client{Transport: rec} })
	name := uniq(t, "wire/")
	created, err := cl.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	put, err := cl.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: created.VersionId, RemoveFromVersionId: put.VersionId}); err != nil {
		t.Fatal(err)
	}
	_, _ = cl.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("wire/none")})

	for _, ex := range rec.exchanges {
		op := strings.TrimPrefix(ex.target, "secretsmanager.")
		t.Run(op+"/"+fmt.Sprint(ex.status), func(t *testing.T) {
			reqSnap := readSnap(t, dir+"/request_snapshot/"+op+".request.snap")
			if !strings.HasPrefix(reqSnap, ex.method+" "+ex.path+"\n") {
				t.Errorf("request line %s %s, snapshot %q", ex.method, ex.path, firstLine(reqSnap))
			}
			for _, h := range []string{"Content-Type: " + ex.ctype, "X-Amz-Target: " + ex.target} {
				if !strings.Contains(reqSnap, h) {
					t.Errorf("snapshot lacks %q", h)
				}
			}
			respFile := dir + "/response_snapshot/" + op + ".response.snap"
			if ex.status != 200 {
				respFile = dir + "/response_snapshot/" + ex.errType + ".error.snap"
			}
			respSnap := readSnap(t, respFile)
			snapKeys := jsonKeys(t, respSnap[strings.Index(respSnap, "{"):])
			for k := range jsonKeys(t, ex.respBody) {
				if !snapKeys[k] && !(ex.status != 200 && k == "Message") {
					t.Errorf("response member %q is not in %s", k, respFile)
				}
			}
			if !strings.HasPrefix(respSnap, fmt.Sprint(ex.status)+"\n") {
				t.Errorf("status %d, snapshot %q", ex.status, firstLine(respSnap))
			}
		})
	}
}

func sdkModuleDir(t *testing.T) string {
	t.Helper()
	gomod := os.Getenv("GOMODCACHE")
	if gomod == "" {
		home, _ := os.UserHomeDir()
		gomod = home + "/go/pkg/mod"
	}
	version := ""
	info, err := os.ReadFile("../../../go.mod")
	if err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "github.com/aws/aws-sdk-go-v2/service/secretsmanager" {
				version = f[1]
			}
		}
	}
	dir := gomod + "/github.com/aws/aws-sdk-go-v2/service/secretsmanager@" + version
	if _, err := os.Stat(dir + "/request_snapshot"); version == "" || err != nil {
		t.Skipf("SDK module snapshots not found at %s", dir)
	}
	return dir
}

func readSnap(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func jsonKeys(t *testing.T, s string) map[string]bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &m); err != nil {
		t.Fatalf("not a JSON object: %q", s)
	}
	keys := map[string]bool{}
	for k := range m {
		keys[k] = true
	}
	return keys
}

type exchange struct {
	method, path, ctype, target string
	status                      int
	respBody, errType           string
}

type recorder struct{ exchanges []exchange }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	ex := exchange{method: req.Method, path: req.URL.Path, ctype: req.Header.Get("Content-Type"), target: req.Header.Get("X-Amz-Target"),
		status: resp.StatusCode, respBody: string(b)}
	if resp.StatusCode != 200 {
		var e struct {
			Type string `json:"__type"`
		}
		_ = json.Unmarshal(b, &e)
		ex.errType = e.Type
	}
	r.exchanges = append(r.exchanges, ex)
	return resp, nil
}

// FuzzRequestBody: whatever a signed caller sends, the server answers with
// a well-formed JSON 1.1 response (success or a 4xx with __type), never a
// crash or a 5xx.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []string{`{"SecretId":"app/readable"}`, `{"SecretId":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/readable"}`,
		`{"Name":"fz/a","SecretString":"x"}`, `{"SecretId":"fz/a","SecretBinary":"AAEC"}`, `{"SecretId":"fz/a","VersionStage":"X","MoveToVersionId":"` + strings.Repeat("a", 32) + `"}`,
		`[]`, `null`, `{"SecretId":null}`, `{"SecretId":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:"}`} {
		for _, op := range []string{"GetSecretValue", "DescribeSecret", "CreateSecret", "PutSecretValue", "UpdateSecretVersionStage"} {
			f.Add(op, s)
		}
	}
	c, err := reg.IssueSession(adminRole, "fuzz", 24*time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op, body string) {
		for i := 0; i < len(op); i++ {
			if op[i] < 0x20 || op[i] > 0x7e {
				t.Skip("not a valid header value; net/http refuses to send it")
			}
		}
		status, m := rawCall(t, c, "secretsmanager."+op, "application/x-amz-json-1.1", body, nil)
		switch {
		case status == 200:
		case status == 400 && m["__type"] != "":
		default:
			t.Fatalf("%s %q: status %d %v", op, body, status, m)
		}
	})
}
