package irsa_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/irsakit/irsakit/irsa"
)

func ExampleLoad() {
	ctx := context.Background()
	sess, err := irsa.Load(ctx)
	if errors.Is(err, irsa.ErrNodeRole) {
		log.Fatal(err) // the service account lacks eks.amazonaws.com/role-arn
	}
	if err != nil {
		log.Fatal(err)
	}
	client := s3.NewFromConfig(sess.Config())
	_ = client
}

func ExampleDetect() {
	env := irsa.Detect(func(k string) string {
		return map[string]string{
			"KUBERNETES_SERVICE_HOST": "10.100.0.1",
			"AWS_REGION":              "us-east-1",
			"AWS_ROLE_ARN":            "arn:aws:iam::111122223333:role/mcp-server-role",
		}[k]
	})
	fmt.Println(env.Mode, env.InPod, env.Region)
	for _, p := range env.Problems {
		fmt.Println(p.Var+":", p.Message)
	}
	// Output:
	// instance-role true us-east-1
	// AWS_WEB_IDENTITY_TOKEN_FILE: AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not
	// AWS_ROLE_ARN: no IRSA or Pod Identity environment in this pod: the SDK would fall back to the node's instance role
}

func ExampleTrustPolicy() {
	provider, _ := irsa.OIDCProviderARN("aws", "111122223333", "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE")
	doc, err := irsa.TrustPolicy(provider, "mcp", "mcp-server")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(doc))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Effect": "Allow",
	//       "Principal": {
	//         "Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
	//       },
	//       "Action": "sts:AssumeRoleWithWebIdentity",
	//       "Condition": {
	//         "StringEquals": {
	//           "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:aud": "sts.amazonaws.com",
	//           "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub": "system:serviceaccount:mcp:mcp-server"
	//         }
	//       }
	//     }
	//   ]
	// }
}

// A pod's IRSA role reaches a role of another account, for that account's
// database or buckets; every client of the chained session's Config uses
// the assumed role. No AWS call is made until the first use.
func ExampleSession_AssumeRole() {
	ctx := context.Background()
	// In a pod, irsa.Load(ctx) finds IRSA or EKS Pod Identity; static keys
	// stand in for them here so the example runs anywhere.
	base, err := irsa.Load(ctx, func(o *irsa.Options) {
		o.Region = "eu-west-1"
		o.Logger = slog.New(slog.DiscardHandler)
		o.ConfigOptions = append(o.ConfigOptions, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "example-secret", "")))
	})
	if err != nil {
		log.Fatal(err)
	}
	ledger, err := base.AssumeRole("arn:aws:iam::444455556666:role/ledger-reader", func(o *irsa.AssumeRoleOptions) {
		o.ExternalID = "ledger-7f3a"
		o.Tags = map[string]string{"team": "payments"}
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ledger.Mode(), ledger.RoleARN(), ledger.Region())
	client := s3.NewFromConfig(ledger.Config()) // or rdsauth.NewPool(ctx, dsn, ledger.Config())
	_ = client
	// Output:
	// assumed-role arn:aws:iam::444455556666:role/ledger-reader eu-west-1
}

func ExampleRoleTrustPolicy() {
	doc, err := irsa.RoleTrustPolicy("arn:aws:iam::111122223333:role/mcp-server-role", func(o *irsa.RoleTrustPolicyOptions) {
		o.ExternalID = "ledger-7f3a"
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(doc))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Effect": "Allow",
	//       "Principal": {
	//         "AWS": "arn:aws:iam::111122223333:role/mcp-server-role"
	//       },
	//       "Action": "sts:AssumeRole",
	//       "Condition": {
	//         "StringEquals": {
	//           "sts:ExternalId": "ledger-7f3a"
	//         }
	//       }
	//     }
	//   ]
	// }
}

// Session statistics for a metrics or debug handler: counters, times and
// an error class, never a credential.
func ExampleSession_Stats() {
	sess, err := irsa.Load(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	st := sess.Stats()
	slog.Info("aws credentials", "fetches", st.Fetches, "failures", st.Failures, "served_stale", st.ServedStale,
		"last_error_class", st.LastErrorClass, "expires", st.Expires)
}
