package secrets_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/irsakit/irsakit/secrets"
)

// fixedClient answers every GetSecretValue with one secret, standing in
// for Secrets Manager in the examples.
type fixedClient struct{ value string }

func (f fixedClient) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{
		Name:          in.SecretId,
		ARN:           aws.String("arn:aws:secretsmanager:eu-west-1:111122223333:secret:" + *in.SecretId + "-AbCdEf"),
		VersionId:     aws.String("EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"),
		VersionStages: []string{"AWSCURRENT"},
		SecretString:  aws.String(f.value),
	}, nil
}

func Example() {
	ctx := context.Background()
	// In a pod: sess, err := irsa.Load(ctx); cfg := sess.Config().
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := secrets.New(cfg, func(o *secrets.Options) { o.TTL = 15 * time.Minute })
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	apiKey, err := cache.String(ctx, "prod/app/api-key")
	if err != nil {
		log.Fatal(err)
	}
	_ = apiKey // use it; do not log it
}

// Printing a Value, however it is printed, shows which secret it is but
// not its content.
func ExampleValue() {
	cache, _ := secrets.NewFromClient(fixedClient{value: "hunter2"})
	defer cache.Close()
	v, _ := cache.Get(context.Background(), "prod/app/api-key")

	fmt.Println(v)
	fmt.Printf("%v|%+v|%#v|%s|%q|%x\n", v, v, v, v, v, v)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("loaded", "secret", v)
	fmt.Println(v.SecretString()) // only on purpose
	// Output:
	// secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}
	// secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}|secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}|secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}|secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}|secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}|secrets.Value{Name: "prod/app/api-key", VersionID: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", Secret: [REDACTED]}
	// level=INFO msg=loaded secret.name=prod/app/api-key secret.version_id=EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE secret.secret=[REDACTED]
	// hunter2
}

// A database secret in the RDS layout prints without its password and
// configures pgx.
func ExampleRDSCredentials() {
	cache, _ := secrets.NewFromClient(fixedClient{
		value: `{"engine":"postgres","host":"db.example.com","port":5432,"dbname":"app","username":"app_user","password":"s3cr3t"}`,
	})
	defer cache.Close()
	creds, err := cache.RDS(context.Background(), "prod/app/db")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(creds)
	fmt.Printf("%+v\n", creds)
	// Output:
	// secrets.RDSCredentials{Engine: "postgres", Host: "db.example.com", Port: 5432, DBName: "app", Username: "app_user", Password: [REDACTED]}
	// secrets.RDSCredentials{Engine: "postgres", Host: "db.example.com", Port: 5432, DBName: "app", Username: "app_user", Password: [REDACTED]}
}

// Decode a JSON secret into your own type.
func ExampleJSON() {
	cache, _ := secrets.NewFromClient(fixedClient{value: `{"endpoint":"https://api.example.com","token":"t0k3n"}`})
	defer cache.Close()
	type apiConfig struct {
		Endpoint string `json:"endpoint"`
		Token    string `json:"token"`
	}
	conf, err := secrets.JSON[apiConfig](context.Background(), cache, "prod/app/api")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(conf.Endpoint)
	// Output: https://api.example.com
}

// The least-privilege policy for the secrets a service reads.
func ExamplePolicy() {
	doc, err := secrets.Policy("eu-west-1", "111122223333", []string{"prod/app/db", "prod/app/api-*"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(doc))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Sid": "ReadSecrets",
	//       "Effect": "Allow",
	//       "Action": "secretsmanager:GetSecretValue",
	//       "Resource": [
	//         "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/app/db-??????",
	//         "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/app/api-*"
	//       ]
	//     }
	//   ]
	// }
}
