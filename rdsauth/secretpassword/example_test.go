package secretpassword_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/irsakit/irsakit/rdsauth/secretpassword"
	"github.com/irsakit/irsakit/secrets"
)

// exampleSecrets answers GetSecretValue with one database secret, standing
// in for Secrets Manager; in a pod use secrets.New(sess.Config()).
type exampleSecrets struct{}

func (exampleSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{
		Name:          in.SecretId,
		ARN:           aws.String("arn:aws:secretsmanager:eu-west-1:111122223333:secret:" + *in.SecretId + "-AbCdEf"),
		VersionId:     aws.String("EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"),
		VersionStages: []string{"AWSCURRENT"},
		SecretString: aws.String(`{"engine":"postgres","host":"app.cluster-c9akciq32.eu-west-1.rds.amazonaws.com",` +
			`"port":5432,"dbname":"app","username":"app_user","password":"s3cr3t"}`),
	}, nil
}

// Every new connection of the pool takes user, password, host and database
// from the secret's current version.
func ExampleBeforeConnect() {
	cache, err := secrets.NewFromClient(exampleSecrets{})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	poolCfg, err := pgxpool.ParseConfig("sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	poolCfg.BeforeConnect = secretpassword.BeforeConnect(cache, "prod/app/db")
	// pool, err := pgxpool.NewWithConfig(ctx, poolCfg) opens connections
	// with it; here, what one connection attempt would use:
	cc := poolCfg.ConnConfig.Copy()
	if err := poolCfg.BeforeConnect(context.Background(), cc); err != nil {
		log.Fatal(err)
	}
	fmt.Println(cc.User, cc.Host, cc.Port, cc.Database)
	fmt.Println(cc.Password != "")
	// Output:
	// app_user app.cluster-c9akciq32.eu-west-1.rds.amazonaws.com 5432 app
	// true
}
