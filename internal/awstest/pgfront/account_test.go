package pgfront_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
)

// An instance admits IAM tokens signed by principals of its own account
// only: a second account's instance accepts that account's role and
// refuses the first account's, and a role of another account is refused
// even when the instance's IAM would allow it.
func TestTokenAccountMustBeTheInstances(t *testing.T) {
	const account2 = "444455556666"
	role2 := "arn:aws:iam::" + account2 + ":role/ledger"
	iam2 := iam.New(account2)
	f2, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: reg, IAM: iam2, Region: "us-east-1"})
	require.NoError(t, err)
	defer f2.Close()
	assert.Equal(t, account2, f2.Account(), "the account defaults to the IAM's")
	policy := func(f *pgfront.Front) []byte {
		return fmt.Appendf(nil, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":%q}]}`, f.UserARN("app"))
	}
	require.NoError(t, iam2.PutRole(role2, []byte(trust), policy(f2)))

	spec := func(role string, f *pgfront.Front) tokenSpec {
		return tokenSpec{creds: session(t, role), host: f.Addr(), region: "us-east-1", user: "app", action: "connect", expires: 900 * time.Second, at: clk.Now()}
	}
	_, err = f2.VerifyToken(mint(t, spec(role2, f2)), "app", f2.Addr())
	require.NoError(t, err, "the instance's own account")

	_, err = f2.VerifyToken(mint(t, spec(roleARN, f2)), "app", f2.Addr())
	var te *pgfront.TokenError
	require.ErrorAs(t, err, &te, "a first-account role was accepted by the second account's instance")
	assert.Equal(t, "AccessDenied", te.Code)

	// The first account's IAM wrongly holds a role of the second account
	// allowed to connect: the account still decides.
	intruder := "arn:aws:iam::" + account2 + ":role/intruder"
	require.NoError(t, mini.PutRole(intruder, []byte(trust), policy(front)))
	_, err = front.VerifyToken(mint(t, spec(intruder, front)), "app", front.Addr())
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "AccessDenied", te.Code)
	assert.Contains(t, te.Reason, "account "+account2)
}
