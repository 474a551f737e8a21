package elasticacheauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/elasticacheauth"
)

// A Token never prints its secret: not with fmt's verbs, not with slog.
func ExampleToken() {
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}, nil
	})
	src, err := elasticacheauth.NewTokenSource("orders", "app-user", creds, func(o *elasticacheauth.Options) {
		o.Region = "us-east-1"
	})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	tok, err := src.Token(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(tok)
	fmt.Printf("%v|%+v|%s|%q\n", tok, tok, tok, tok)
	fmt.Printf("%#v\n", tok)
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		// Drop what changes from run to run: the time and the expiry.
		if a.Key == slog.TimeKey || a.Key == "expires" {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("minted", "token", tok)
	// Output:
	// elasticacheauth.Token(app-user@orders elasticache us-east-1 REDACTED)
	// elasticacheauth.Token(app-user@orders elasticache us-east-1 REDACTED)|elasticacheauth.Token(app-user@orders elasticache us-east-1 REDACTED)|elasticacheauth.Token(app-user@orders elasticache us-east-1 REDACTED)|"elasticacheauth.Token(app-user@orders elasticache us-east-1 REDACTED)"
	// elasticacheauth.Token(app-user@orders elasticache us-east-1 REDACTED)
	// level=INFO msg=minted token.user=app-user token.cache=orders token.service=elasticache token.region=us-east-1 token.serverless=false token.value=REDACTED
}

// Derive the cache name, region and serverless flag from an endpoint.
func ExampleParseEndpoint() {
	for _, host := range []string{
		"master.orders.abc123.use1.cache.amazonaws.com:6379",
		"clustercfg.orders-cluster.abc123.euw1.cache.amazonaws.com:6379",
		"sessions-x1y2z3.serverless.apse2.cache.amazonaws.com:6379",
	} {
		e, err := elasticacheauth.ParseEndpoint(host)
		if err != nil {
			panic(err)
		}
		fmt.Println(e.CacheName, e.Kind, e.Region, e.Serverless)
	}
	// Output:
	// orders primary us-east-1 false
	// orders-cluster configuration eu-west-1 false
	// sessions serverless ap-southeast-2 true
}
