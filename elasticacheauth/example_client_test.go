package elasticacheauth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
)

// A cluster-mode-disabled cache (a replication group's primary endpoint),
// from a pod with an IRSA service account. The cache name and region come
// from the endpoint name; TLS is verified against the system roots; live
// connections are re-authenticated every 15 minutes.
func ExampleNewClient() {
	ctx := context.Background()
	session, err := irsa.Load(ctx) // AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := elasticacheauth.NewClient(ctx,
		"master.orders.abc123.use1.cache.amazonaws.com:6379", "", "app-user",
		session.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	if err := rdb.Set(ctx, "greeting", "hello", time.Hour).Err(); err != nil {
		log.Fatal(err)
	}
	greeting, err := rdb.Get(ctx, "greeting").Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(greeting)
}

// A serverless cache (or a cluster-mode-enabled replication group's
// configuration endpoint) speaks the cluster protocol. Watch runs an
// optimistic transaction; its keys must hash to one slot.
func ExampleNewClusterClient() {
	ctx := context.Background()
	session, err := irsa.Load(ctx)
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := elasticacheauth.NewClusterClient(ctx,
		"sessions-x1y2z3.serverless.euw1.cache.amazonaws.com:6379", "", "app-user",
		session.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	const key = "{user:42}:visits"
	err = rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, key).Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, n+1, 24*time.Hour)
			return nil
		})
		return err
	}, key)
	if err != nil {
		log.Fatal(err)
	}
}
