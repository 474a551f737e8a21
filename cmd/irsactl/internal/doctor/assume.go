package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/irsa"
)

// AssumeRoleProbe assumes a role with the base credentials, as an
// application does with irsa's Session.AssumeRole: a role of another
// account, say, whose trust policy names this pod's role.
type AssumeRoleProbe struct {
	RoleARN string
	// ExternalID is sent as sts:ExternalId when the role's trust policy
	// requires one.
	ExternalID string
}

// assumeSessionName names doctor's sessions of the assumed role
// (CloudTrail).
const assumeSessionName = "irsactl-doctor"

func (s *state) checkAssumeRole(ctx context.Context, p AssumeRoleProbe) Check {
	c := Check{Name: CheckAssumeRole}
	if sts, _ := s.rep.Check(CheckSTS); s.sess == nil || sts.Status != Pass {
		c.Status, c.Detail = Skip, "not tried: STS did not accept the base credentials as this role (see the sts check)"
		return c
	}
	chained, err := s.sess.AssumeRole(p.RoleARN, func(o *irsa.AssumeRoleOptions) {
		o.ExternalID = p.ExternalID
		o.RoleSessionName = assumeSessionName
		o.Logger = slog.New(slog.DiscardHandler)
	})
	if err != nil {
		c.Status, c.Cause, c.Detail = Fail, CauseAssumeRoleInvalid, cliText(err.Error())
		return c
	}
	s.assumed = chained
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	if s.o.beforeAssume != nil {
		s.o.beforeAssume()
	}
	id, err := chained.Identity(ctx)
	base := s.baseRole()
	if err != nil {
		c.Status = Fail
		c.Cause, c.Detail, c.Fix = explainAssume(err, p.RoleARN, base, stsEndpoint(ctx, s.sess.Config()), s.o.Timeout)
		if c.Cause == CauseAssumeRoleDenied && strings.Contains(base, ":role/") {
			// What the target role's trust policy must say (the other half,
			// the base role's identity policy, is in the fix).
			if doc, err := irsa.RoleTrustPolicy(base, func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = p.ExternalID }); err == nil {
				c.Policy = json.RawMessage(doc)
				c.Fix = strings.Replace(c.Fix, " (irsactl policy trust --assumed-by prints it)", "", 1)
				c.Fix += fmt.Sprintf("; the trust policy that admits this call is below (irsactl policy trust --assumed-by %s", base)
				if p.ExternalID != "" {
					c.Fix += " --external-id " + p.ExternalID
				}
				c.Fix += ")"
			}
		}
		return c
	}
	return assumed(p, id)
}

// assumed reports a role assumed as id: a pass, or a warning when the
// credentials belong to another account than the role ARN's.
func assumed(p AssumeRoleProbe, id irsa.Identity) Check {
	c := Check{Name: CheckAssumeRole, Status: Pass}
	c.Detail = fmt.Sprintf("assumed %s with the base credentials: STS says %s (account %s)", p.RoleARN, id.Arn, id.Account)
	if p.ExternalID != "" {
		c.Detail += ", external id sent"
	}
	a, _, err := irsa.ParseRoleARN(p.RoleARN)
	if err == nil && a.AccountID != id.Account {
		c.Status, c.Cause = Warn, CauseAssumeRoleAccount
		c.Detail += fmt.Sprintf(" — not the account of %s (%s)", p.RoleARN, a.AccountID)
		c.Fix = "the credentials are not the role's: check AWS_ENDPOINT_URL_STS and any proxy in front of STS"
	}
	return c
}

// baseRole is the ARN of the role whose credentials call sts:AssumeRole:
// the session's (IRSA), else the role STS named (arn:…:sts::ACCOUNT:
// assumed-role/NAME/SESSION, without a path), else the identity itself.
func (s *state) baseRole() string {
	if r := s.sess.RoleARN(); r != "" {
		return r
	}
	return roleOfIdentity(s.rep.Identity)
}

// roleOfIdentity turns an assumed-role session ARN into its role's ARN;
// any other ARN is returned as it is.
func roleOfIdentity(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[2] != "sts" {
		return arn
	}
	res := strings.Split(parts[5], "/")
	if len(res) != 3 || res[0] != "assumed-role" {
		return arn
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], res[1])
}

// explainAssume maps a failed AssumeRole to a cause, a detail naming what
// STS said, and a fix.
func explainAssume(err error, roleARN, base, endpoint string, timeout time.Duration) (Cause, string, string) {
	var ce *irsa.CredentialError
	fix := ""
	if errors.As(err, &ce) {
		fix = cliText(ce.Fix)
	}
	said := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		said = ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	at := fmt.Sprintf("STS %s: sts:AssumeRole on %s with the credentials of %s", endpoint, roleARN, base)
	switch {
	case errors.Is(err, irsa.ErrBaseCredentials):
		return CauseAssumeBaseCredentials, at + ": the base credentials were refused" + said, fix
	case errors.Is(err, irsa.ErrAssumeRoleDenied):
		return CauseAssumeRoleDenied, at + ": refused" + said, fix
	case errors.Is(err, irsa.ErrRoleChainLimit):
		return CauseRoleChainLimit, at + ": refused" + said,
			"the base credentials are a role's, and AWS limits a role assumed with them to one-hour sessions: ask for 1h or less"
	}
	if ae == nil {
		if nf := netFailure(err, timeout); nf != "" {
			return CauseSTSUnreachable, at + ": unreachable: " + nf,
				"allow egress from the pod to this endpoint (security groups, network policies, proxy), or create an STS interface VPC endpoint with private DNS; check AWS_ENDPOINT_URL_STS if it is set"
		}
		return CauseAssumeRoleFailed, at + ": " + cliText(err.Error()), fix
	}
	return CauseAssumeRoleFailed, at + ": failed" + said, fix
}
