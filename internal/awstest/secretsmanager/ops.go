package secretsmanager

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/irsakit/irsakit/internal/partition"
)

// Size limits from the Secrets Manager API reference.
const (
	maxSecretIDLen  = 2048
	maxNameLen      = 512
	maxValueLen     = 65536
	minTokenLen     = 32
	maxTokenLen     = 64
	maxStageLen     = 256
	maxStagesPerReq = 20
)

type caller struct {
	arn  string // identity, for AccessDenied messages
	role string // role whose policies apply ("" for users)
}

type getSecretValueInput struct {
	SecretID     *string `json:"SecretId"`
	VersionID    *string `json:"VersionId"`
	VersionStage *string `json:"VersionStage"`
}

type getSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	CreatedDate   *epoch   `json:"CreatedDate,omitempty"`
	Name          string   `json:"Name"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"`
	SecretString  *string  `json:"SecretString,omitempty"`
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
}

type describeSecretInput struct {
	SecretID *string `json:"SecretId"`
}

type describeSecretOutput struct {
	ARN                string              `json:"ARN"`
	CreatedDate        *epoch              `json:"CreatedDate,omitempty"`
	DeletedDate        *epoch              `json:"DeletedDate,omitempty"`
	Description        string              `json:"Description,omitempty"`
	LastAccessedDate   *epoch              `json:"LastAccessedDate,omitempty"`
	LastChangedDate    *epoch              `json:"LastChangedDate,omitempty"`
	Name               string              `json:"Name"`
	Tags               []tag               `json:"Tags,omitempty"`
	VersionIdsToStages map[string][]string `json:"VersionIdsToStages,omitempty"`
}

type createSecretInput struct {
	Name               *string `json:"Name"`
	ClientRequestToken *string `json:"ClientRequestToken"`
	Description        *string `json:"Description"`
	SecretString       *string `json:"SecretString"`
	SecretBinary       []byte  `json:"SecretBinary"`
	Tags               []tag   `json:"Tags"`
}

type createSecretOutput struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionID string `json:"VersionId,omitempty"`
}

type putSecretValueInput struct {
	SecretID           *string  `json:"SecretId"`
	ClientRequestToken *string  `json:"ClientRequestToken"`
	SecretString       *string  `json:"SecretString"`
	SecretBinary       []byte   `json:"SecretBinary"`
	VersionStages      []string `json:"VersionStages"`
}

type putSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
}

type updateSecretVersionStageInput struct {
	SecretID            *string `json:"SecretId"`
	VersionStage        *string `json:"VersionStage"`
	MoveToVersionID     *string `json:"MoveToVersionId"`
	RemoveFromVersionID *string `json:"RemoveFromVersionId"`
}

type updateSecretVersionStageOutput struct {
	ARN  string `json:"ARN"`
	Name string `json:"Name"`
}

// validation returns the framework-level ValidationException AWS sends for
// a member outside its modelled constraints.
func validation(member, constraint string) *apiError {
	return newErr("ValidationException", "1 validation error detected: Value at '%s' failed to satisfy constraint: %s", member, constraint)
}

func required(member string, v *string) *apiError {
	if v == nil {
		return validation(member, "Member must not be null")
	}
	return nil
}

func lengthIn(member string, v *string, lo, hi int) *apiError {
	if v == nil {
		return nil
	}
	n := utf8.RuneCountInString(*v)
	if n < lo {
		return validation(member, "Member must have length greater than or equal to "+itoa(lo))
	}
	if n > hi {
		return validation(member, "Member must have length less than or equal to "+itoa(hi))
	}
	return nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

func firstErr(errs ...*apiError) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// validName applies CreateSecret's naming rule.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return newErr("InvalidParameterException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("/_+=.@-", c) >= 0:
		default:
			return newErr("InvalidParameterException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
		}
	}
	return nil
}

// resolve finds the secret a SecretId names: a name, a full ARN, or a
// partial ARN (the ARN without the six-character suffix). It also returns
// the resource ARN the request is authorised against: the secret's ARN,
// or for an unknown secret the ARN the caller named. s.mu must be held.
func (s *Server) resolve(id string) (*secret, string) {
	if !strings.HasPrefix(id, "arn:") {
		if sec, ok := s.secrets[id]; ok {
			return sec, sec.arn
		}
		return nil, "arn:" + partition.IDOf(s.opts.Region) + ":secretsmanager:" + s.opts.Region + ":" + s.opts.Account + ":secret:" + id
	}
	p := strings.SplitN(id, ":", 7)
	if len(p) != 7 || p[2] != "secretsmanager" || p[5] != "secret" || p[3] != s.opts.Region || p[4] != s.opts.Account {
		return nil, id
	}
	rest := p[6]
	for _, sec := range s.secrets {
		if sec.arn == id {
			return sec, sec.arn
		}
	}
	// A partial ARN names the secret without its random suffix.
	if sec, ok := s.secrets[rest]; ok && sec.arn[:len(sec.arn)-7] == id {
		return sec, sec.arn
	}
	return nil, id
}

// authorize asks the mini-IAM; the message is the one AWS sends.
func (s *Server) authorize(c caller, action, resource, shown string) error {
	if s.iam.Authorize(c.role, action, resource) {
		return nil
	}
	return newErr("AccessDeniedException",
		"User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
		c.arn, action, shown, action)
}

func (s *Server) getSecretValue(c caller, in getSecretValueInput) (any, error) {
	if err := firstErr(required("secretId", in.SecretID), lengthIn("secretId", in.SecretID, 1, maxSecretIDLen),
		lengthIn("versionId", in.VersionID, minTokenLen, maxTokenLen), lengthIn("versionStage", in.VersionStage, 1, maxStageLen)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, res := s.resolve(*in.SecretID)
	if err := s.authorize(c, "secretsmanager:GetSecretValue", res, *in.SecretID); err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, newErr("ResourceNotFoundException", msgNotFound)
	}
	if !sec.deleted.IsZero() {
		return nil, newErr("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
	var v *version
	switch {
	case in.VersionID != nil:
		v = sec.versions[*in.VersionID]
		if v == nil {
			return nil, newErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", *in.VersionID)
		}
		if in.VersionStage != nil && !v.hasStage(*in.VersionStage) {
			return nil, newErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s", *in.VersionID, *in.VersionStage)
		}
	default:
		stage := StageCurrent
		if in.VersionStage != nil {
			stage = *in.VersionStage
		}
		v = sec.holder(stage)
		if v == nil {
			return nil, newErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	if sec.decryptFail {
		return nil, newErr("DecryptionFailure", "%s", faultMessages["DecryptionFailure"])
	}
	sec.accessed = s.clk.Now().UTC().Truncate(24 * time.Hour)
	out := getSecretValueOutput{
		ARN: sec.arn, Name: sec.name, VersionID: v.id, CreatedDate: epochPtr(v.created),
		VersionStages: append([]string(nil), v.stages...),
		SecretBinary:  append([]byte(nil), v.bin...),
	}
	if v.str != nil {
		str := *v.str
		out.SecretString = &str
	}
	return out, nil
}

func (s *Server) describeSecret(c caller, in describeSecretInput) (any, error) {
	if err := firstErr(required("secretId", in.SecretID), lengthIn("secretId", in.SecretID, 1, maxSecretIDLen)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, res := s.resolve(*in.SecretID)
	if err := s.authorize(c, "secretsmanager:DescribeSecret", res, *in.SecretID); err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, newErr("ResourceNotFoundException", msgNotFound)
	}
	return describeSecretOutput{
		ARN: sec.arn, Name: sec.name, Description: sec.description, Tags: sec.tags,
		CreatedDate: epochPtr(sec.created), LastChangedDate: epochPtr(sec.changed),
		LastAccessedDate: epochPtr(sec.accessed), DeletedDate: epochPtr(sec.deleted),
		VersionIdsToStages: sec.versionStages(),
	}, nil
}

// checkValue applies the rules shared by CreateSecret and PutSecretValue.
func checkValue(str *string, bin []byte) error {
	if str != nil && bin != nil {
		return newErr("InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	if str != nil && len(*str) > maxValueLen {
		return validation("secretString", "Member must have length less than or equal to 65536")
	}
	if len(bin) > maxValueLen {
		return validation("secretBinary", "Member must have length less than or equal to 65536")
	}
	return nil
}

func sameValue(v *version, str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if str != nil && *v.str != *str {
		return false
	}
	return bytes.Equal(v.bin, bin)
}

func (s *Server) createSecret(c caller, in createSecretInput) (any, error) {
	if err := firstErr(required("name", in.Name), lengthIn("clientRequestToken", in.ClientRequestToken, minTokenLen, maxTokenLen)); err != nil {
		return nil, err
	}
	if err := validName(*in.Name); err != nil {
		return nil, err
	}
	if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if old, ok := s.secrets[*in.Name]; ok {
		if err := s.authorize(c, "secretsmanager:CreateSecret", old.arn, *in.Name); err != nil {
			return nil, err
		}
		if !old.deleted.IsZero() {
			return nil, newErr("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retried request (same token, same value) succeeds again.
		if in.ClientRequestToken != nil {
			if v := old.versions[*in.ClientRequestToken]; v != nil && sameValue(v, in.SecretString, in.SecretBinary) && len(old.versions) == 1 {
				return createSecretOutput{ARN: old.arn, Name: old.name, VersionID: v.id}, nil
			}
		}
		return nil, newErr("ResourceExistsException", "The operation failed because the secret %s already exists.", *in.Name)
	}
	sec := s.newSecret(*in.Name, now)
	if err := s.authorize(c, "secretsmanager:CreateSecret", sec.arn, *in.Name); err != nil {
		return nil, err
	}
	if in.Description != nil {
		sec.description = *in.Description
	}
	sec.tags = in.Tags
	out := createSecretOutput{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		id := newVersionID()
		if in.ClientRequestToken != nil {
			id = *in.ClientRequestToken
		}
		v := sec.addVersion(id, in.SecretString, in.SecretBinary, now)
		sec.moveStage(StageCurrent, v.id)
		out.VersionID = v.id
	}
	s.secrets[sec.name] = sec
	return out, nil
}

func (s *Server) putSecretValue(c caller, in putSecretValueInput) (any, error) {
	if err := firstErr(required("secretId", in.SecretID), lengthIn("secretId", in.SecretID, 1, maxSecretIDLen),
		lengthIn("clientRequestToken", in.ClientRequestToken, minTokenLen, maxTokenLen)); err != nil {
		return nil, err
	}
	if len(in.VersionStages) > maxStagesPerReq {
		return nil, validation("versionStages", "Member must have length less than or equal to 20")
	}
	for _, st := range in.VersionStages {
		if err := lengthIn("versionStages", &st, 1, maxStageLen); err != nil {
			return nil, err
		}
	}
	if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, newErr("InvalidRequestException", "You must provide either SecretString or SecretBinary.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, res := s.resolve(*in.SecretID)
	if err := s.authorize(c, "secretsmanager:PutSecretValue", res, *in.SecretID); err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, newErr("ResourceNotFoundException", msgNotFound)
	}
	if !sec.deleted.IsZero() {
		return nil, newErr("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
	id := newVersionID()
	if in.ClientRequestToken != nil {
		id = *in.ClientRequestToken
	}
	if v := sec.versions[id]; v != nil {
		if !sameValue(v, in.SecretString, in.SecretBinary) {
			return nil, newErr("ResourceExistsException", "You can't modify an existing version, you can only create new versions.")
		}
		return putSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionID: v.id, VersionStages: append([]string(nil), v.stages...)}, nil
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	now := s.clk.Now()
	var str *string
	if in.SecretString != nil {
		v := *in.SecretString
		str = &v
	}
	v := sec.addVersion(id, str, in.SecretBinary, now)
	for _, st := range stages {
		sec.moveStage(st, v.id)
	}
	sec.changed = now
	return putSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionID: v.id, VersionStages: append([]string(nil), v.stages...)}, nil
}

func (s *Server) updateSecretVersionStage(c caller, in updateSecretVersionStageInput) (any, error) {
	if err := firstErr(required("secretId", in.SecretID), required("versionStage", in.VersionStage),
		lengthIn("secretId", in.SecretID, 1, maxSecretIDLen), lengthIn("versionStage", in.VersionStage, 1, maxStageLen),
		lengthIn("moveToVersionId", in.MoveToVersionID, minTokenLen, maxTokenLen),
		lengthIn("removeFromVersionId", in.RemoveFromVersionID, minTokenLen, maxTokenLen)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, res := s.resolve(*in.SecretID)
	if err := s.authorize(c, "secretsmanager:UpdateSecretVersionStage", res, *in.SecretID); err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, newErr("ResourceNotFoundException", msgNotFound)
	}
	if !sec.deleted.IsZero() {
		return nil, newErr("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
	stage := *in.VersionStage
	cur := sec.holder(stage)
	var to *version
	if in.MoveToVersionID != nil {
		to = sec.versions[*in.MoveToVersionID]
		if to == nil {
			return nil, newErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", *in.MoveToVersionID)
		}
	}
	if in.RemoveFromVersionID != nil {
		from := sec.versions[*in.RemoveFromVersionID]
		if from == nil || !from.hasStage(stage) {
			return nil, newErr("InvalidParameterException", "The staging label %s is not currently attached to version %s.", stage, *in.RemoveFromVersionID)
		}
	}
	switch {
	case to == nil && in.RemoveFromVersionID == nil:
		return nil, newErr("InvalidParameterException", "You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	case to == nil:
		if stage == StageCurrent {
			return nil, newErr("InvalidParameterException", "You can't remove the staging label AWSCURRENT from a version without moving it to another version.")
		}
		cur.removeStage(stage)
	case cur != nil && cur != to && (in.RemoveFromVersionID == nil || *in.RemoveFromVersionID != cur.id):
		return nil, newErr("InvalidParameterException",
			"The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", stage, cur.id)
	default:
		sec.moveStage(stage, to.id)
	}
	sec.changed = s.clk.Now()
	return updateSecretVersionStageOutput{ARN: sec.arn, Name: sec.name}, nil
}
