package rdsauth

import (
	"database/sql"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenDB is NewPool for database/sql: it parses connString, applies the
// same TLS policy and token hook (through pgx/v5/stdlib's
// OptionBeforeConnect) and sets the connection lifetime
// (Options.MaxConnLifetime). Closing the *sql.DB is all the cleanup needed:
// the token source it installs runs no goroutine and mints only when a
// connection opens.
func OpenDB(connString string, cfg aws.Config, optFns ...func(*Options)) (*sql.DB, error) {
	cc, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("rdsauth: parsing the connection string: %w", err)
	}
	src, o, err := configureConn(cc, cfg, optFns)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cc, stdlib.OptionBeforeConnect(BeforeConnect(src)))
	switch {
	case o.MaxConnLifetime == 0:
		db.SetConnMaxLifetime(defaultMaxConnLifetime)
	case o.MaxConnLifetime > 0:
		db.SetConnMaxLifetime(o.MaxConnLifetime)
	}
	return db, nil
}
