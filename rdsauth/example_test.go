package rdsauth_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/rdsauth"
)

// A Token never prints its value: not with fmt's verbs, not with slog.
func ExampleToken() {
	creds := credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	src, err := rdsauth.NewTokenSource("mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432", "app", creds,
		func(o *rdsauth.Options) { o.Clock = clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) })
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	tok, err := src.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok)
	fmt.Printf("%v %+v %s %x\n", tok, tok, tok, tok)
	fmt.Printf("%#v %q\n", tok, tok)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("connecting", "token", tok)
	// The password itself is only reachable through Value.
	fmt.Println(strings.HasPrefix(tok.Value(), "mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app&"))
	// Output:
	// rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED)
	// rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED) rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED) rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED) rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED)
	// rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED) "rdsauth.Token(app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 us-east-1 REDACTED)"
	// level=INFO msg=connecting token.user=app token.endpoint=mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432 token.region=us-east-1 token.expires=2026-01-02T03:19:05.000Z token.value=REDACTED
	// true
}

func ExamplePolicy() {
	doc, err := rdsauth.Policy("us-east-1", "111122223333", "db-ABCDEFGHIJKLMNOPQRSTUVWXY0", []string{"app"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(doc))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Sid": "RDSIAMConnect",
	//       "Effect": "Allow",
	//       "Action": "rds-db:connect",
	//       "Resource": "arn:aws:rds-db:us-east-1:111122223333:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/app"
	//     }
	//   ]
	// }
}

func ExampleNewPool() {
	ctx := context.Background()
	var cfg aws.Config // session.Config() from irsa.Load, or config.LoadDefaultConfig
	pool, err := rdsauth.NewPool(ctx,
		"host=mydb.c9akciq32.us-east-1.rds.amazonaws.com port=5432 user=app dbname=app sslmode=verify-full",
		cfg,
		func(o *rdsauth.Options) { o.RootCAFile = "/etc/rds/global-bundle.pem" })
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	var now time.Time
	if err := pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		log.Fatal(err)
	}
}

func ExampleConfigurePool() {
	ctx := context.Background()
	var cfg aws.Config // session.Config()
	poolCfg, err := pgxpool.ParseConfig("host=aurora.cluster-c9akciq32.eu-west-1.rds.amazonaws.com,aurora.cluster-ro-c9akciq32.eu-west-1.rds.amazonaws.com user=app dbname=app")
	if err != nil {
		log.Fatal(err)
	}
	poolCfg.MaxConns = 20
	// verify-full against the RDS CA bundle, for both hosts.
	src, err := rdsauth.ConfigurePool(poolCfg, cfg, func(o *rdsauth.Options) { o.RootCAFile = "/etc/rds/global-bundle.pem" })
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	log.Printf("tokens minted so far: %d", src.Mints())
}

func ExampleOpenDB() {
	var cfg aws.Config // session.Config()
	db, err := rdsauth.OpenDB("postgres://app@mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432/app?sslmode=verify-full&sslrootcert=/etc/rds/global-bundle.pem", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		log.Fatal(err)
	}
}

func ExampleDSQLPolicy() {
	doc, err := rdsauth.DSQLPolicy("us-east-1", "111122223333", "abcdefghijklmnopqrstuvwxyz", []string{"admin"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(doc))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Sid": "DSQLIAMConnect",
	//       "Effect": "Allow",
	//       "Action": "dsql:DbConnectAdmin",
	//       "Resource": "arn:aws:dsql:us-east-1:111122223333:cluster/abcdefghijklmnopqrstuvwxyz"
	//     }
	//   ]
	// }
}

// An Aurora DSQL cluster endpoint gets DSQL tokens; its certificate is
// verified against the system roots.
func ExampleNewPool_dsql() {
	ctx := context.Background()
	var cfg aws.Config // session.Config()
	pool, err := rdsauth.NewPool(ctx,
		"host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws user=admin dbname=postgres sslmode=verify-full",
		cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}

// A DSQL token for psql or another driver: the admin role gets a
// DbConnectAdmin token, valid here for one hour.
func ExampleNewDSQLTokenSource() {
	creds := credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	src, err := rdsauth.NewDSQLTokenSource("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "admin", creds, func(o *rdsauth.Options) {
		o.ExpiresIn = time.Hour
		o.Clock = clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	tok, err := src.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok, tok.Expires())
	fmt.Println(strings.HasPrefix(tok.Value(), "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws/?Action=DbConnectAdmin&"))
	// Output:
	// rdsauth.Token(admin@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws:5432 us-east-1 REDACTED) 2026-01-02 04:04:05 +0000 UTC
	// true
}

// Through a tunnel: the token and the certificate check stay for the
// endpoint, the TCP connection goes to the local end of the tunnel.
func ExampleOptions_dialAddress() {
	ctx := context.Background()
	var cfg aws.Config // session.Config()
	// kubectl port-forward deploy/pg-tunnel 15432:5432
	pool, err := rdsauth.NewPool(ctx,
		"host=mydb.c9akciq32.us-east-1.rds.amazonaws.com port=5432 user=app dbname=app sslmode=verify-full",
		cfg,
		func(o *rdsauth.Options) {
			o.RootCAFile = "/etc/rds/global-bundle.pem"
			o.DialAddress = "127.0.0.1:15432"
		})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}
