package vaultauth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/vaultauth"
)

// A pod logs in to Vault with its IRSA role and keeps a token valid for as
// long as it runs.
func Example() {
	ctx := context.Background()
	sess, err := irsa.Load(ctx) // the pod's web-identity credentials
	if err != nil {
		log.Fatal(err)
	}
	src, err := vaultauth.NewTokenSource(os.Getenv("VAULT_ADDR"), "orders-api", sess.Config(),
		func(o *vaultauth.Options) { o.ServerID = "vault.example.com" })
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()

	// Ask for the token before each use: it is a memory read while the
	// token is fresh, and the source renews it in the background.
	tok, err := src.Token(ctx)
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, os.Getenv("VAULT_ADDR")+"/v1/secret/data/orders", nil)
	req.Header.Set("X-Vault-Token", tok.Value())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		src.Invalidate(tok) // revoked: the next Token logs in again
	}
}

// vaultAnswering stands in for Vault in the examples: it answers every
// login as Vault's aws auth method answers a successful one.
func vaultAnswering() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"request_id":"7f2b1c3e-0000-4000-8000-000000000000","lease_id":"","renewable":false,"lease_duration":0,
"data":null,"wrap_info":null,"warnings":null,"auth":{"client_token":"hvs.CAESIExampleExampleExample","accessor":"0b1C2d3E4f5G6h7I8j9K",
"policies":["app-read","default"],"token_policies":["app-read","default"],"metadata":{"role_id":"5d7e0c1a-0000-4000-8000-000000000000"},
"lease_duration":3600,"renewable":true,"entity_id":"","token_type":"service","orphan":true,"num_uses":0}}`)
	}))
}

// A Token prints redacted with every fmt verb and with slog: the client
// token and its accessor are only reachable through Value and Accessor.
func ExampleToken() {
	fakeVault := vaultAnswering()
	defer fakeVault.Close()
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	}
	tok, err := vaultauth.Login(context.Background(), fakeVault.URL, "app", cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok)
	fmt.Printf("%v|%+v|%s|%x\n", tok, &tok, tok, tok)
	fmt.Printf("%#v %q\n", tok, tok)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("logged in", "token", tok)
	fmt.Println(tok.Value() == "hvs.CAESIExampleExampleExample")
	// Output:
	// vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)
	// vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)|vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)|vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)|vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)
	// vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED) "vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)"
	// level=INFO msg="logged in" token.mount=aws token.role=app token.type=service token.policies="[app-read default]" token.lease=1h0m0s token.renewable=true token.value=REDACTED token.accessor=REDACTED
	// true
}

// BuildLogin signs a login for another Vault client to send, e.g.
// github.com/hashicorp/vault/api:
//
//	secret, err := client.Logical().WriteWithContext(ctx, req.Path(), req.Data())
func ExampleBuildLogin() {
	cfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	}
	req, err := vaultauth.BuildLogin(context.Background(), cfg, "orders-api", func(o *vaultauth.Options) {
		o.ServerID = "vault.example.com"
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(req)
	fmt.Println(req.Path())
	for _, k := range []string{"role", "iam_http_request_method", "iam_request_url", "iam_request_body"} {
		fmt.Println(k, req.Data()[k])
	}
	// Output:
	// vaultauth.LoginRequest(auth/aws/login role orders-api, signed for https://sts.eu-west-1.amazonaws.com/ eu-west-1, server id "vault.example.com", REDACTED)
	// auth/aws/login
	// role orders-api
	// iam_http_request_method POST
	// iam_request_url aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20v
	// iam_request_body QWN0aW9uPUdldENhbGxlcklkZW50aXR5JlZlcnNpb249MjAxMS0wNi0xNQ==
}
