package vaultauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/vaultauth"
)

// A pod's IRSA session logs in: the SDK's default chain (environment
// variables, as EKS sets them) or an aws.Config built in code gets
// web-identity credentials from STS, and Vault's aws auth method verifies
// the GetCallerIdentity request signed with them.
func TestLoginIRSA(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	configs := []struct {
		name string
		cfg  func(t *testing.T) aws.Config
	}{
		{"LoadDefaultConfig with AWS_ENDPOINT_URL_STS", func(t *testing.T) aws.Config {
			require.NoError(t, env.RotateToken())
			env.Setenv(t)
			cfg, err := config.LoadDefaultConfig(ctx)
			require.NoError(t, err)
			return cfg
		}},
		{"aws.Config with an STS endpoint option", func(t *testing.T) aws.Config { return irsaConfig(t) }},
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			mark := len(env.STS.CallLog())
			tok, err := vaultauth.Login(ctx, srv.URL, "app", cfg, opts()...)
			require.NoError(t, err)

			assert.True(t, strings.HasPrefix(tok.Value(), "hvs."), "a service token")
			assert.NotEmpty(t, tok.Accessor())
			assert.Equal(t, []string{"app-read", "default"}, tok.Policies())
			assert.Equal(t, time.Hour, tok.LeaseDuration())
			assert.True(t, tok.Renewable())
			assert.Equal(t, "service", tok.Type())
			assert.Equal(t, "app", tok.Role())
			assert.Equal(t, "aws", tok.Mount())
			assert.Equal(t, tok.Obtained().Add(time.Hour), tok.Expires())
			assert.NotEmpty(t, tok.Metadata()["role_id"])

			l, err := srv.LookupSelf(ctx, tok.Value())
			require.NoError(t, err)
			assert.Equal(t, []string{"app-read", "default"}, l.Policies)

			// Vault asked STS who signed, and it was the key STS had just
			// issued to the pod's role.
			calls := env.STS.CallLog()[mark:]
			var issued, verified []string
			for _, c := range calls {
				switch c.Action {
				case sts.ActionAssumeRoleWithWebIdentity:
					issued = append(issued, c.AccessKeyID)
				case sts.ActionGetCallerIdentity:
					assert.Empty(t, c.Code)
					verified = append(verified, c.AccessKeyID)
				}
			}
			require.Len(t, issued, 1)
			assert.Equal(t, issued, verified)
		})
	}
}

// Without a role, Vault picks the role named like the IAM role.
func TestLoginRoleFromIAMRoleName(t *testing.T) {
	needVault(t)
	tok, err := vaultauth.Login(context.Background(), srv.URL, "", roleConfig(t, time.Hour), opts()...)
	require.NoError(t, err)
	assert.Equal(t, []string{"by-name", "default"}, tok.Policies())
	assert.Equal(t, "", tok.Role())
}

// tamper is an HTTP transport that rewrites the login's JSON body after
// signing, as an attacker replaying a captured login would.
type tamper func(data map[string]any)

func (f tamper) RoundTrip(req *http.Request) (*http.Response, error) {
	var data map[string]any
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, err
	}
	f(data)
	nb, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(nb))
	r.ContentLength = int64(len(nb))
	return http.DefaultTransport.RoundTrip(r)
}

func tamperHeaders(f func(h http.Header)) tamper {
	return func(data map[string]any) {
		raw, _ := base64.StdEncoding.DecodeString(data["iam_request_headers"].(string))
		var h http.Header
		if err := json.Unmarshal(raw, &h); err != nil {
			panic(err)
		}
		f(h)
		nb, _ := json.Marshal(h)
		data["iam_request_headers"] = base64.StdEncoding.EncodeToString(nb)
	}
}

// Vault refuses a login for the wrong server id, role or principal, or with
// a request changed after signing; the error names Vault's message.
func TestLoginRefused(t *testing.T) {
	needVault(t)
	revoked := func(t *testing.T) aws.Config {
		cfg := roleConfig(t, time.Hour)
		c, err := cfg.Credentials.Retrieve(context.Background())
		require.NoError(t, err)
		env.Registry.Revoke(c.AccessKeyID)
		return cfg
	}
	cases := []struct {
		name string
		role string
		cfg  func(t *testing.T) aws.Config
		opt  func(o *vaultauth.Options)
		msg  string
	}{
		{name: "wrong server id", role: "app", opt: func(o *vaultauth.Options) { o.ServerID = "other.example" },
			msg: `error validating X-Vault-AWS-IAM-Server-ID header: expected "vault.irsakit.test" but got "other.example"`},
		{name: "no server id", role: "app", opt: func(o *vaultauth.Options) { o.ServerID = "" },
			msg: `error validating X-Vault-AWS-IAM-Server-ID header: missing header "X-Vault-AWS-IAM-Server-ID"`},
		{name: "unknown role", role: "nope", msg: "entry for role nope not found"},
		{name: "role bound to another ARN", role: "other",
			msg: `IAM Principal "arn:aws:sts::` + env.Account + `:assumed-role/mcp-server-role/awstest-session" does not belong to the role "other"`},
		{name: "body changed after signing", role: "app", opt: func(o *vaultauth.Options) {
			o.HTTPClient = &http.Client{Transport: tamper(func(d map[string]any) {
				d["iam_request_body"] = base64.StdEncoding.EncodeToString([]byte("Version=2011-06-15&Action=GetCallerIdentity"))
			})}
		}, msg: "received error code 403 from STS"},
		{name: "signature changed", role: "app", opt: func(o *vaultauth.Options) {
			o.HTTPClient = &http.Client{Transport: tamperHeaders(func(h http.Header) {
				a := h.Get("Authorization")
				h.Set("Authorization", a[:len(a)-6]+"000000")
			})}
		}, msg: "SignatureDoesNotMatch"},
		{name: "server id changed after signing", role: "app", opt: func(o *vaultauth.Options) {
			o.ServerID = "other.example"
			o.HTTPClient = &http.Client{Transport: tamperHeaders(func(h http.Header) {
				h.Set(vaultauth.ServerIDHeader, serverID)
			})}
		}, msg: "SignatureDoesNotMatch"},
		{name: "revoked credentials", role: "app", cfg: revoked, msg: "InvalidClientTokenId"},
		{name: "signed for a region STS is not in", role: "app", opt: func(o *vaultauth.Options) { o.Region = "eu-west-1" },
			msg: "credential should be scoped to a valid region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := roleConfig(t, time.Hour)
			if tc.cfg != nil {
				cfg = tc.cfg(t)
			}
			o := opts()
			if tc.opt != nil {
				o = append(o, tc.opt)
			}
			tok, err := vaultauth.Login(context.Background(), srv.URL, tc.role, cfg, o...)
			require.Error(t, err)
			assert.True(t, tok.IsZero())
			var ve *vaultauth.VaultError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "login", ve.Op)
			assert.Equal(t, "auth/aws/login", ve.Path)
			assert.Equal(t, http.StatusBadRequest, ve.StatusCode)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), "vaultauth: Vault refused login at auth/aws/login (HTTP 400 Bad Request): ")
			assert.False(t, vaultauth.IsPermissionDenied(err))
		})
	}
}

// A LoginRequest is what any Vault client writes to auth/MOUNT/login: the
// fields Vault documents, the request signed for the session's STS
// endpoint with the server id inside the signature.
func TestBuildLogin(t *testing.T) {
	ctx := context.Background()
	cfg := roleConfig(t, time.Hour)
	req, err := vaultauth.BuildLogin(ctx, cfg, "app", opts()...)
	require.NoError(t, err)
	assert.Equal(t, "auth/aws/login", req.Path())
	assert.Equal(t, "app", req.Role())
	assert.Equal(t, env.STS.URL()+"/", req.STSURL())
	assert.Equal(t, env.Region, req.Region())
	assert.Equal(t, serverID, req.ServerID())
	assert.Equal(t, clk.Now(), req.SignedAt())
	assert.Equal(t, clk.Now().Add(15*time.Minute), req.Expires())

	data := req.Data()
	assert.Equal(t, "app", data["role"])
	assert.Equal(t, "POST", data["iam_http_request_method"])
	decode := func(k string) string {
		b, err := base64.StdEncoding.DecodeString(data[k].(string))
		require.NoError(t, err, k)
		return string(b)
	}
	assert.Equal(t, env.STS.URL()+"/", decode("iam_request_url"))
	assert.Equal(t, "Action=GetCallerIdentity&Version=2011-06-15", decode("iam_request_body"))
	var h http.Header
	require.NoError(t, json.Unmarshal([]byte(decode("iam_request_headers")), &h))
	assert.Equal(t, serverID, h.Get(vaultauth.ServerIDHeader))
	assert.Contains(t, h.Get("Authorization"), "/"+env.Region+"/sts/aws4_request")
	assert.Regexp(t, `SignedHeaders=[^,]*x-vault-aws-iam-server-id`, h.Get("Authorization"))
	assert.NotEmpty(t, h.Get("X-Amz-Security-Token"))
	for k := range h {
		// Vault refuses X-Amz-* headers outside its allow list.
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			assert.Contains(t, []string{"X-Amz-Date", "X-Amz-Security-Token"}, k)
		}
	}
	data["role"] = "changed"
	assert.Equal(t, "app", req.Data()["role"], "Data returns a copy")

	t.Run("sent by another client", func(t *testing.T) {
		needVault(t)
		out, err := srv.Do(ctx, http.MethodPost, req.Path(), "", req.Data())
		require.NoError(t, err)
		a, _ := out["auth"].(map[string]any)
		assert.NotEmpty(t, a["client_token"])
	})
}

// A mount enabled at another path, inside a namespace, is reached with
// Options.Mount and Options.Namespace, and only with them.
func TestMountAndNamespace(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	cfg := roleConfig(t, time.Hour)
	tok, err := vaultauth.Login(ctx, nsSrv.URL, "app", cfg, opts(func(o *vaultauth.Options) {
		o.Mount = "/" + nsMount + "/"
		o.Namespace = namespace
	})...)
	require.NoError(t, err)
	assert.Equal(t, []string{"default", "team"}, tok.Policies())
	assert.Equal(t, nsMount, tok.Mount())

	for name, o := range map[string]func(*vaultauth.Options){
		"no namespace":  func(o *vaultauth.Options) { o.Mount = nsMount },
		"default mount": func(o *vaultauth.Options) { o.Namespace = namespace },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := vaultauth.Login(ctx, nsSrv.URL, "app", cfg, opts(o)...)
			var ve *vaultauth.VaultError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, http.StatusNotFound, ve.StatusCode)
			assert.Contains(t, err.Error(), "no handler for route")
		})
	}
}

// Bad input fails before anything is sent, with an error that names the
// input and the fix.
func TestBadInput(t *testing.T) {
	good := roleConfig(t, time.Hour)
	noRegion := good
	noRegion.Region = ""
	cases := []struct {
		name  string
		addr  string
		role  string
		cfg   aws.Config
		opt   func(*vaultauth.Options)
		is    error
		parts []string
	}{
		{"empty address", "", "app", good, nil, vaultauth.ErrInvalidAddress, []string{`""`, "VAULT_ADDR"}},
		{"no scheme", "vault.example.com:8200", "app", good, nil, vaultauth.ErrInvalidAddress, []string{"vault.example.com:8200", "https://"}},
		{"other scheme", "ftp://vault.example.com", "app", good, nil, vaultauth.ErrInvalidAddress, []string{"ftp://vault.example.com"}},
		{"query", "https://vault.example.com/?x=1", "app", good, nil, vaultauth.ErrInvalidAddress, []string{"query"}},
		{"port", "https://vault.example.com:99999", "app", good, nil, vaultauth.ErrInvalidAddress, []string{"port"}},
		{"plain http", "http://vault.example.com:8200", "app", good, nil, vaultauth.ErrInsecureTransport, []string{"http://vault.example.com:8200", "AllowHTTP"}},
		{"role with a space", "https://vault.example.com", "my role", good, nil, vaultauth.ErrInvalidRole, []string{`"my role"`, "auth/aws/role/NAME"}},
		{"role with a slash", "https://vault.example.com", "a/b", good, nil, vaultauth.ErrInvalidRole, []string{`"a/b"`}},
		{"mount with ..", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.Mount = "../sys" }, vaultauth.ErrInvalidOptions, []string{`"../sys"`, "vault auth enable -path"}},
		{"mount with //", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.Mount = "a//b" }, vaultauth.ErrInvalidOptions, []string{`"a//b"`}},
		{"namespace", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.Namespace = "my team" }, vaultauth.ErrInvalidOptions, []string{`"my team"`}},
		{"server id with a line break", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.ServerID = "a\r\nX-Evil: 1" }, vaultauth.ErrInvalidOptions, []string{"line break"}},
		{"server id with spaces", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.ServerID = " vault " }, vaultauth.ErrInvalidOptions, []string{`" vault "`}},
		{"no credentials", "https://vault.example.com", "app", aws.Config{Region: "us-east-1"}, nil, vaultauth.ErrNoCredentials, []string{"irsa.Load"}},
		{"no region", "https://vault.example.com", "app", noRegion, nil, vaultauth.ErrNoRegion, []string{"AWS_REGION"}},
		{"STS endpoint with a query", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.STSEndpoint = "https://sts.example.com/?a=b" }, vaultauth.ErrInvalidEndpoint, []string{"https://sts.example.com/?a=b", "query string"}},
		{"invalid region", "https://vault.example.com", "app", good, func(o *vaultauth.Options) { o.Region = "us east 1" }, vaultauth.ErrInvalidRegion, []string{`"us east 1"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o []func(*vaultauth.Options)
			if tc.opt != nil {
				o = append(o, tc.opt)
			}
			src, err := vaultauth.NewTokenSource(tc.addr, tc.role, tc.cfg, o...)
			require.ErrorIs(t, err, tc.is)
			assert.Nil(t, src)
			for _, p := range tc.parts {
				assert.Contains(t, err.Error(), p)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "vaultauth: "), err.Error())
			// Login checks the same, before sending anything.
			_, err = vaultauth.Login(context.Background(), tc.addr, tc.role, tc.cfg, o...)
			assert.ErrorIs(t, err, tc.is)
		})
	}
	t.Run("user info is not echoed", func(t *testing.T) {
		_, err := vaultauth.NewTokenSource("https://admin:hunter2@vault.example.com", "app", good)
		require.ErrorIs(t, err, vaultauth.ErrInvalidAddress)
		assert.NotContains(t, err.Error(), "hunter2")
	})
	t.Run("loopback http needs no opt-in", func(t *testing.T) {
		for _, a := range []string{"http://127.0.0.1:8200", "http://localhost:8100/", "http://[::1]:8200"} {
			src, err := vaultauth.NewTokenSource(a, "app", good)
			require.NoError(t, err, a)
			require.NoError(t, src.Close())
		}
		src, err := vaultauth.NewTokenSource("http://vault.internal:8200", "app", good, func(o *vaultauth.Options) { o.AllowHTTP = true })
		require.NoError(t, err)
		require.NoError(t, src.Close())
	})
}

// Credentials that have expired by the time of signing are refused before
// anything is signed.
func TestExpiredCredentials(t *testing.T) {
	cfg := withSTS(aws.Config{Region: env.Region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "tok",
			CanExpire: true, Expires: clk.Now().Add(-time.Minute), Source: "test"}, nil
	})})
	_, err := vaultauth.BuildLogin(context.Background(), cfg, "app", opts()...)
	require.ErrorIs(t, err, vaultauth.ErrCredentialsExpired)
	assert.Contains(t, err.Error(), "(test)")

	failing := withSTS(aws.Config{Region: env.Region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no web identity token")
	})})
	_, err = vaultauth.Login(context.Background(), "http://127.0.0.1:1", "app", failing, opts()...)
	require.ErrorContains(t, err, "vaultauth: retrieving AWS credentials: no web identity token")

	static := withSTS(aws.Config{Region: env.Region, Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", "")})
	_, err = vaultauth.BuildLogin(context.Background(), static, "app", opts()...)
	assert.NoError(t, err, "long-term keys do not expire")
}
