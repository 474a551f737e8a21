package sts

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

// ChainedSessionLimit is the longest session AWS grants a role assumed
// with another role's credentials (role chaining).
const ChainedSessionLimit = time.Hour

// MaxSessionTags is how many session tags one AssumeRole may pass.
const MaxSessionTags = 50

var (
	externalIDRE     = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	sourceIdentityRE = regexp.MustCompile(`^[\w+=,.@-]*$`)
	tagKeyRE         = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValueRE       = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	SourceIdentity  string          `xml:"SourceIdentity,omitempty"`
	AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials     credentials     `xml:"Credentials"`
}

// notAuthorized is AWS's AccessDenied text for an AssumeRole the caller may
// not make: the same whether the identity policy, the trust policy or the
// role's existence is the reason.
func notAuthorized(caller, action, roleARN string) *apiError {
	return errorf("AccessDenied", "User: %s is not authorized to perform: %s on resource: %s", caller, action, roleARN)
}

// assumeRole serves AssumeRole: a SigV4-signed request from credentials
// the registry issued, authorised by the caller's identity policy and the
// target role's trust policy.
func (s *Server) assumeRole(r *http.Request, body []byte, form url.Values, call *Call) (*assumeRoleResult, *apiError) {
	res, err := s.reg.VerifyRequest(r, body, sigv4.HeaderOptions{Service: "sts", Region: s.opts.Region})
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, errorf(se.Code, "%s", se.Message)
		}
		return nil, errorf("IncompleteSignature", "%v", err)
	}
	caller := res.Credentials
	call.Caller = caller.Arn

	var verr validationErrors
	roleArn, roleOK := checkLength(&verr, form, "RoleArn", "roleArn", 20, 2048)
	session, sessOK := checkLength(&verr, form, "RoleSessionName", "roleSessionName", 2, 64)
	call.RoleArn, call.RoleSessionName = roleArn, session
	if sessOK {
		checkSessionName(&verr, session)
	}
	duration, seconds := checkDuration(&verr, form)
	call.DurationSeconds = seconds
	if _, present := form["ExternalId"]; present {
		if id, ok := checkLength(&verr, form, "ExternalId", "externalId", 2, 1224); ok {
			if !externalIDRE.MatchString(id) {
				verr.add(`Value '%s' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`, shorten(id, ""))
			}
			call.ExternalID = id
		}
	}
	if _, present := form["SourceIdentity"]; present {
		if si, ok := checkLength(&verr, form, "SourceIdentity", "sourceIdentity", 2, 64); ok {
			if !sourceIdentityRE.MatchString(si) {
				verr.add(`Value '%s' at 'sourceIdentity' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`, shorten(si, ""))
			}
			call.SourceIdentity = si
		}
	}
	tags, transitive, dup := parseTags(&verr, form)
	call.Tags, call.TransitiveTagKeys = tags, transitive
	if e := verr.err(); e != nil {
		return nil, e
	}
	if dup {
		return nil, errorf("ValidationError", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
	}
	for _, k := range transitive {
		if _, ok := tags[k]; !ok {
			// Fail closed: a transitive key must name a tag of the request.
			return nil, errorf("InvalidParameterValue", "awstest STS stand-in: transitive tag key %q is not among the session tags", k)
		}
	}
	if roleOK && !isRoleARN(roleArn) {
		return nil, errorf("ValidationError", "%s is invalid", roleArn)
	}
	if form.Get("Policy") != "" || hasPrefixKey(form, "PolicyArns.") || form.Get("SerialNumber") != "" || form.Get("TokenCode") != "" {
		// Fail closed: session policies would narrow permissions this
		// stand-in could not enforce, and it has no MFA devices.
		return nil, errorf("ValidationError", "awstest STS stand-in: session policies (Policy, PolicyArns) and MFA (SerialNumber, TokenCode) are not supported")
	}
	// Credentials of a role (from AssumeRole, AssumeRoleWithWebIdentity,
	// ...) assuming a role is role chaining: AWS caps it at one hour.
	if caller.RoleARN != "" && duration > ChainedSessionLimit {
		return nil, errorf("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}

	req := iam.AssumeRequest{
		CallerRoleARN: caller.RoleARN, CallerARN: caller.Arn, CallerAccount: caller.Account,
		RoleSessionName: session, ExternalID: call.ExternalID, SourceIdentity: call.SourceIdentity, Tags: tags,
	}
	actions := []string{"sts:AssumeRole"}
	if len(tags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	if call.SourceIdentity != "" {
		actions = append(actions, "sts:SetSourceIdentity")
	}
	callerIAM, _ := s.accountIAM(caller.Account)
	targetIAM, targetKnown := s.accountIAM(strings.SplitN(roleArn, ":", 6)[4])
	for _, action := range actions {
		// The caller's identity policy (users have none here), then the
		// target role's trust policy.
		if callerIAM == nil || !callerIAM.AuthorizeRequest(caller.RoleARN, action, roleArn, req.Context()) {
			return nil, notAuthorized(caller.Arn, action, roleArn)
		}
		if !targetKnown {
			return nil, notAuthorized(caller.Arn, action, roleArn)
		}
		if _, ok := targetIAM.AssumeRoleTrust(roleArn, action, req); !ok {
			return nil, notAuthorized(caller.Arn, action, roleArn)
		}
	}

	s.mu.Lock()
	maxSess, credTTL := s.maxSess, s.credTTL
	s.mu.Unlock()
	if duration > maxSess {
		return nil, errorf("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	creds, err := s.reg.IssueSession(roleArn, session, min(duration, credTTL))
	if err != nil {
		return nil, errorf("InternalFailure", "issuing credentials: %v", err)
	}
	call.AccessKeyID = creds.AccessKeyID
	return &assumeRoleResult{
		SourceIdentity:  call.SourceIdentity,
		AssumedRoleUser: assumedRoleUser{Arn: creds.Arn, AssumedRoleID: creds.UserID},
		Credentials: credentials{
			AccessKeyID:     creds.AccessKeyID,
			SecretAccessKey: creds.SecretAccessKey,
			SessionToken:    creds.SessionToken,
			Expiration:      creds.Expires.UTC().Format(time.RFC3339),
		},
	}, nil
}

// parseTags reads Tags.member.N.Key/Value and TransitiveTagKeys.member.N,
// and reports tag keys repeated (case-insensitively, as STS compares them).
func parseTags(verr *validationErrors, form url.Values) (tags map[string]string, transitive []string, dup bool) {
	seen := map[string]bool{}
	n := 0
	for i := 1; ; i++ {
		prefix := fmt.Sprintf("Tags.member.%d.", i)
		key, hasKey := form[prefix+"Key"]
		val, hasVal := form[prefix+"Value"]
		if !hasKey && !hasVal {
			break
		}
		n++
		k, v := first(key), first(val)
		switch {
		case !hasKey || len(k) < 1 || len(k) > 128 || !tagKeyRE.MatchString(k):
			verr.add("Value '%s' at 'tags.%d.member.key' failed to satisfy constraint: Member must have length between 1 and 128 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", shorten(k, ""), i)
			continue
		case !hasVal || len(v) > 256 || !tagValueRE.MatchString(v):
			verr.add("Value '%s' at 'tags.%d.member.value' failed to satisfy constraint: Member must have length less than or equal to 256 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", shorten(v, ""), i)
			continue
		}
		if tags == nil {
			tags = map[string]string{}
		}
		if seen[strings.ToLower(k)] {
			dup = true
		}
		seen[strings.ToLower(k)] = true
		tags[k] = v
	}
	if n > MaxSessionTags {
		verr.add("Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to %d", MaxSessionTags)
	}
	for i := 1; ; i++ {
		k, ok := form[fmt.Sprintf("TransitiveTagKeys.member.%d", i)]
		if !ok {
			break
		}
		transitive = append(transitive, first(k))
	}
	if len(transitive) > MaxSessionTags {
		verr.add("Value at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to %d", MaxSessionTags)
	}
	slices.Sort(transitive)
	return tags, transitive, dup
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
