package procs_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/irsakit/irsakit/internal/awstest/procs"
)

func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := procs.StartPostgres(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "install the Debian package postgresql") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer func() {
		dir := pg.Dir
		if err := pg.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Close left %s behind", dir)
		}
	}()

	if err := pg.CreateRole(ctx, "app_user"); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := pg.CreateRole(ctx, "app_user"); err != nil {
		t.Fatal(err)
	}
	query := func(t *testing.T, connString string) string {
		t.Helper()
		c, err := pgconn.Connect(ctx, connString)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		res, err := c.Exec(ctx, "SELECT current_user || '/' || current_setting('max_connections') || '/' || current_setting('fsync')").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return string(res[0].Rows[0][0])
	}

	t.Run("socket", func(t *testing.T) {
		if got, want := query(t, pg.ConnString("app_user", "app_user")), "app_user/700/off"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("loopback TCP", func(t *testing.T) {
		cs := "host=127.0.0.1 port=" + strings.TrimPrefix(pg.Addr(), "127.0.0.1:") + " user=app_user dbname=app_user sslmode=disable"
		if got := query(t, cs); !strings.HasPrefix(got, "app_user/") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("not running as root", func(t *testing.T) {
		if got := query(t, pg.ConnString("", "")); !strings.HasPrefix(got, "postgres/") {
			t.Errorf("got %q", got)
		}
		if os.Geteuid() == 0 {
			st, err := os.Stat(pg.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o700 {
				t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
			}
		}
	})
	t.Run("restart", func(t *testing.T) {
		if err := pg.Stop(); err != nil {
			t.Fatal(err)
		}
		short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
		_, err := pgconn.Connect(short, pg.ConnString("", ""))
		cancelShort()
		if err == nil {
			t.Fatal("connected to a stopped server")
		}
		if err := pg.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		// Roles survive the restart.
		if got := query(t, pg.ConnString("app_user", "app_user")); !strings.HasPrefix(got, "app_user/") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("bad role name", func(t *testing.T) {
		if err := pg.CreateRole(ctx, `x"; DROP`); err == nil {
			t.Error("CreateRole accepted a quote in a role name")
		}
	})
}

func TestLookBinNamesPackage(t *testing.T) {
	_, err := procs.LookBin("irsakit-no-such-server", "postgresql", "/nonexistent/*/bin/x")
	if err == nil || !strings.Contains(err.Error(), "Debian package postgresql") {
		t.Fatalf("err = %v, want one naming the Debian package", err)
	}
}
