package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Config is read from the environment, the way the pod's Deployment sets
// it. The AWS side (role, token file, region, endpoints) is not here: the
// EKS pod identity webhook injects it and irsa.Load reads it.
type Config struct {
	ListenAddr string // LISTEN_ADDR, default :8080

	// Aurora PostgreSQL with IAM database authentication. Disabled when
	// DATABASE_ENDPOINT is empty.
	DatabaseEndpoint string // DATABASE_ENDPOINT host:port (the port is required)
	DatabaseUser     string // DATABASE_USER
	DatabaseName     string // DATABASE_NAME, default DATABASE_USER
	DatabaseCAFile   string // DATABASE_CA_FILE, the RDS CA bundle (global-bundle.pem)

	// ElastiCache (Redis OSS / Valkey) with IAM authentication. Disabled
	// when REDIS_ENDPOINT is empty.
	RedisEndpoint  string // REDIS_ENDPOINT host:port (primary endpoint)
	RedisCacheName string // REDIS_CACHE_NAME, the replication group id
	RedisUser      string // REDIS_USER, the IAM-enabled user id
	RedisCAFile    string // REDIS_CA_FILE, default: the system roots

	// S3. Disabled when S3_BUCKET is empty.
	S3Bucket    string // S3_BUCKET
	S3Prefix    string // S3_PREFIX, default "notes/"
	S3PathStyle bool   // S3_PATH_STYLE, for S3-compatible servers

	// Secrets Manager: the key that signs note receipts. Disabled when
	// SECRET_ID is empty.
	SecretID string // SECRET_ID

	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT, default 20s
}

// LoadConfig reads the configuration through getenv.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		ListenAddr:       or(getenv("LISTEN_ADDR"), ":8080"),
		DatabaseEndpoint: getenv("DATABASE_ENDPOINT"),
		DatabaseUser:     getenv("DATABASE_USER"),
		DatabaseName:     getenv("DATABASE_NAME"),
		DatabaseCAFile:   getenv("DATABASE_CA_FILE"),
		RedisEndpoint:    getenv("REDIS_ENDPOINT"),
		RedisCacheName:   getenv("REDIS_CACHE_NAME"),
		RedisUser:        getenv("REDIS_USER"),
		RedisCAFile:      getenv("REDIS_CA_FILE"),
		S3Bucket:         getenv("S3_BUCKET"),
		S3Prefix:         or(getenv("S3_PREFIX"), "notes/"),
		SecretID:         getenv("SECRET_ID"),
		ShutdownTimeout:  20 * time.Second,
	}
	if c.DatabaseName == "" {
		c.DatabaseName = c.DatabaseUser
	}
	if v := getenv("S3_PATH_STYLE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("config: S3_PATH_STYLE=%q is not a boolean", v)
		}
		c.S3PathStyle = b
	}
	if v := getenv("SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("config: SHUTDOWN_TIMEOUT=%q is not a positive duration", v)
		}
		c.ShutdownTimeout = d
	}
	if c.DatabaseEndpoint != "" && c.DatabaseUser == "" {
		return c, fmt.Errorf("config: DATABASE_ENDPOINT is set but DATABASE_USER is not")
	}
	if c.RedisEndpoint != "" && (c.RedisCacheName == "" || c.RedisUser == "") {
		return c, fmt.Errorf("config: REDIS_ENDPOINT needs REDIS_CACHE_NAME (the replication group id) and REDIS_USER (the IAM user id)")
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Getenv is os.Getenv, for main.
var Getenv = os.Getenv
