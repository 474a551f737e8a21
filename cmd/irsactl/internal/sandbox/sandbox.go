// Package sandbox runs the local AWS stand-ins of internal/awstest as one
// IRSA playground: an EKS-like OIDC issuer and projected token, STS, a
// mini-IAM role whose policies are the ones irsactl policy prints, a real
// PostgreSQL behind an RDS-IAM-verifying TLS front, a real Redis behind an
// ElastiCache-IAM-verifying TLS front, a Secrets Manager stand-in, and
// the in-process S3 stand-in (internal/awstest/s3) with one bucket. S3 is
// the in-process stand-in rather than the real S3 peer of the tests
// (versitygw) because versitygw runs its own STS, which only federates
// issuers on port 443 at a public address.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/policy"
	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
	s3standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/internal/awstest/secretsmanager"
)

// Options configure Start. Every field has a usable zero value.
type Options struct {
	// Region of every stand-in. Default us-east-1.
	Region string
	// DBUser is the IAM database user (also its database). Default "app".
	DBUser string
	// CacheName is the replication group id. Default "mcp-cache".
	CacheName string
	// CacheUser is the ElastiCache user id. Default "app".
	CacheUser string
	// SecretID names the seeded secret. Default "mcp/api-key".
	SecretID string
	// Bucket is the S3 bucket the role may use under S3Prefix.
	// Defaults "mcp-data" and "notes/" (mcp-backend's default prefix).
	Bucket   string
	S3Prefix string
	// TokenRotation rotates the projected token this often, as the kubelet
	// does. Default 1 h.
	TokenRotation time.Duration
}

// Sandbox is a running playground. Close stops it.
type Sandbox struct {
	Env      *awstest.Env
	Postgres *procs.Postgres
	PGFront  *pgfront.Front
	Redis    *redisfront.Server
	Secrets  *secretsmanager.Server
	S3       *s3standin.Server

	opts    Options
	redisCA string
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// Start brings everything up; on error what started is stopped.
func Start(ctx context.Context, optFns ...func(*Options)) (sb *Sandbox, err error) {
	o := Options{Region: "us-east-1", DBUser: "app", CacheName: "mcp-cache", CacheUser: "app", SecretID: "mcp/api-key",
		Bucket: "mcp-data", S3Prefix: "notes/", TokenRotation: time.Hour}
	for _, fn := range optFns {
		fn(&o)
	}
	s := &Sandbox{opts: o, stop: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Env, err = awstest.New(func(ao *awstest.Options) { ao.Region = o.Region }); err != nil {
		return nil, err
	}
	if s.Postgres, err = procs.StartPostgres(ctx); err != nil {
		return nil, err
	}
	if err = s.Postgres.CreateRole(ctx, o.DBUser); err != nil {
		return nil, err
	}
	if s.PGFront, err = pgfront.Start(pgfront.Config{Backend: s.Postgres.SocketPath(), Registry: s.Env.Registry, IAM: s.Env.IAM, Region: o.Region}); err != nil {
		return nil, err
	}
	if s.Redis, err = redisfront.StartServer(ctx, redisfront.Options{Registry: s.Env.Registry, IAM: s.Env.IAM, CacheName: o.CacheName, Region: o.Region, Users: []string{o.CacheUser}}); err != nil {
		return nil, err
	}
	s.redisCA = filepath.Join(s.Env.Dir, "elasticache-ca.pem")
	if err = os.WriteFile(s.redisCA, s.Redis.CAPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s.Secrets = secretsmanager.New(s.Env.Registry, s.Env.IAM, func(so *secretsmanager.Options) { so.Region = o.Region })
	if _, err = s.Secrets.Start(); err != nil {
		return nil, err
	}
	key := make([]byte, 24)
	if _, err = rand.Read(key); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if _, _, err = s.Secrets.CreateString(o.SecretID, hex.EncodeToString(key)); err != nil {
		return nil, err
	}
	s.S3 = s3standin.New(s.Env.Registry, s.Env.IAM, func(so *s3standin.Options) { so.Region = o.Region })
	if _, err = s.S3.Start(); err != nil {
		return nil, err
	}
	if err = s.S3.CreateBucket(o.Bucket); err != nil {
		return nil, err
	}
	pol, err := s.Policy()
	if err != nil {
		return nil, err
	}
	if err = s.Env.AttachPolicy(pol); err != nil {
		return nil, err
	}
	if o.TokenRotation > 0 {
		s.wg.Add(1)
		go s.rotate(o.TokenRotation)
	}
	return s, nil
}

// Policy is the role's identity policy: what irsactl policy combined
// prints for the sandbox's database user, cache user, secret and bucket
// prefix (s3store.Policy: s3:ListBucket with an s3:prefix condition,
// object actions on BUCKET/PREFIX*).
func (s *Sandbox) Policy() ([]byte, error) {
	return policy.Combined(policy.Inputs{
		Region: s.opts.Region, Account: s.Env.Account,
		ResourceID: s.PGFront.ResourceID(), DBUsers: []string{s.opts.DBUser},
		Cache: s.opts.CacheName, CacheUsers: []string{s.opts.CacheUser},
		Secrets: []string{s.opts.SecretID},
		Bucket:  s.opts.Bucket, Prefix: s.opts.S3Prefix,
	})
}

// BucketURI is where the role may read and write objects:
// s3://BUCKET/PREFIX.
func (s *Sandbox) BucketURI() string { return "s3://" + s.opts.Bucket + "/" + s.opts.S3Prefix }

func (s *Sandbox) rotate(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.Env.RotateToken()
		}
	}
}

// Environ is the environment of a pod using the sandbox, KEY=VALUE: the
// IRSA variables the EKS webhook injects (pointed at the stand-ins with
// AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_SECRETS_MANAGER and
// AWS_ENDPOINT_URL_S3), the endpoints of the database, cache, secret and
// bucket the examples read (S3_BUCKET, S3_PREFIX, and S3_PATH_STYLE=true:
// the stand-in has no per-bucket host names), and
// IRSACTL_STS_GLOBAL_ENDPOINT so irsactl doctor --global-sts probes the
// STS stand-in, never the real global endpoint, from a sandbox.
func (s *Sandbox) Environ() []string {
	env := append(s.Env.Environ(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+s.Secrets.URL(),
		"IRSACTL_STS_GLOBAL_ENDPOINT="+s.Env.STS.URL(),
		"DATABASE_ENDPOINT="+s.PGFront.Addr(),
		"DATABASE_USER="+s.opts.DBUser,
		"DATABASE_NAME="+s.opts.DBUser,
		"DATABASE_CA_FILE="+s.PGFront.CAFile(),
		"REDIS_ENDPOINT="+s.Redis.Addr(),
		"REDIS_CACHE_NAME="+s.opts.CacheName,
		"REDIS_USER="+s.opts.CacheUser,
		"REDIS_CA_FILE="+s.redisCA,
		"SECRET_ID="+s.opts.SecretID,
		"AWS_ENDPOINT_URL_S3="+s.S3.URL(),
		"S3_BUCKET="+s.opts.Bucket,
		"S3_PREFIX="+s.opts.S3Prefix,
		"S3_PATH_STYLE=true",
	)
	sort.Strings(env)
	return env
}

// TryCommands returns ready-to-paste command lines for a shell holding
// the Exports: irsactl doctor probing every stand-in, psql logging in with
// an RDS IAM token, and redis-cli authenticating with an ElastiCache IAM
// token (through REDISCLI_AUTH, which ps does not show, unlike --pass).
func (s *Sandbox) TryCommands() string {
	q := shellQuote
	dbHost, dbPort, _ := strings.Cut(s.PGFront.Addr(), ":")
	cacheHost, cachePort, _ := strings.Cut(s.Redis.Addr(), ":")
	var b strings.Builder
	fmt.Fprintf(&b, "irsactl doctor --db-endpoint %s --db-user %s --db-name %s --db-ca %s --cache-endpoint %s --cache %s --cache-user %s --cache-ca %s --bucket %s --secret %s\n",
		q(s.PGFront.Addr()), q(s.opts.DBUser), q(s.opts.DBUser), q(s.PGFront.CAFile()),
		q(s.Redis.Addr()), q(s.opts.CacheName), q(s.opts.CacheUser), q(s.redisCA),
		q(s.opts.Bucket+"/"+s.opts.S3Prefix), q(s.opts.SecretID))
	conninfo := fmt.Sprintf("host=%s port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s", dbHost, dbPort, s.opts.DBUser, s.opts.DBUser, s.PGFront.CAFile())
	fmt.Fprintf(&b, "PGPASSWORD=\"$(irsactl token rds --db-endpoint %s --db-user %s)\" psql %s -c 'SELECT current_user'\n",
		q(s.PGFront.Addr()), q(s.opts.DBUser), q(conninfo))
	fmt.Fprintf(&b, "REDISCLI_AUTH=\"$(irsactl token elasticache --cache %s --cache-user %s)\" redis-cli --tls --cacert %s -h %s -p %s --user %s PING\n",
		q(s.opts.CacheName), q(s.opts.CacheUser), q(s.redisCA), q(cacheHost), q(cachePort), q(s.opts.CacheUser))
	return b.String()
}

// Exports renders Environ as shell export lines.
func (s *Sandbox) Exports() string {
	var b strings.Builder
	for _, kv := range s.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	return b.String()
}

func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// Close stops everything and removes the temporary files.
func (s *Sandbox) Close() error {
	var errs []error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		if s.S3 != nil {
			errs = append(errs, s.S3.Close())
		}
		if s.Secrets != nil {
			errs = append(errs, s.Secrets.Close())
		}
		if s.Redis != nil {
			errs = append(errs, s.Redis.Close())
		}
		if s.PGFront != nil {
			errs = append(errs, s.PGFront.Close())
		}
		if s.Postgres != nil {
			errs = append(errs, s.Postgres.Close())
		}
		if s.Env != nil {
			errs = append(errs, s.Env.Close())
		}
	})
	return errors.Join(errs...)
}
