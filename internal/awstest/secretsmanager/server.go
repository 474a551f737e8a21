// Package secretsmanager is the AWS Secrets Manager stand-in of irsakit's
// tests: an HTTP server speaking the service's real wire protocol (AWS JSON
// 1.1: POST /, Content-Type application/x-amz-json-1.1, X-Amz-Target
// secretsmanager.<Operation>), so the unmodified SDK client talks to it.
//
// Every request is verified the way AWS verifies it: the SigV4 signature
// against the credentials registry ([sigv4.Registry]), then the caller's role
// policies against the secret's ARN in the mini-IAM ([iam.IAM]), then the
// operation's own rules. Refusals carry the error codes and messages Secrets
// Manager sends (UnrecognizedClientException, InvalidSignatureException,
// ExpiredTokenException, AccessDeniedException, ResourceNotFoundException,
// InvalidRequestException, InvalidParameterException, DecryptionFailure, ...).
//
// Operations: GetSecretValue, DescribeSecret, CreateSecret, PutSecretValue,
// UpdateSecretVersionStage. The server counts calls per operation and can
// inject faults (fail the next N calls, delay answers, drop connections).
package secretsmanager

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/partition"
)

// Operation names, as they appear after "secretsmanager." in X-Amz-Target.
const (
	OpGetSecretValue           = "GetSecretValue"
	OpDescribeSecret           = "DescribeSecret"
	OpCreateSecret             = "CreateSecret"
	OpPutSecretValue           = "PutSecretValue"
	OpUpdateSecretVersionStage = "UpdateSecretVersionStage"
)

// Staging labels Secrets Manager manages itself.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
	StagePending  = "AWSPENDING"
)

// Options configure a Server.
type Options struct {
	// Region the server lives in; requests must be signed for it.
	// Default us-east-1.
	Region string
	// Account owning the secrets. Default: the IAM's account.
	Account string
	// Clock stamps creation and access dates. Default: the registry's clock.
	Clock clock.Clock
	// Addr is the listen address of Start. Default 127.0.0.1:0.
	Addr string
}

// Server is the stand-in. It is safe for concurrent use.
type Server struct {
	reg  *sigv4.Registry
	iam  *iam.IAM
	opts Options
	clk  clock.Clock

	mu      sync.Mutex
	secrets map[string]*secret // by name
	calls   map[string]int
	faults  []*fault
	delay   time.Duration
	down    bool

	ln   net.Listener
	hs   *http.Server
	url  string
	wg   sync.WaitGroup
	once sync.Once
}

type fault struct {
	op   string // "" matches any operation
	n    int
	code string
}

type secret struct {
	name        string
	arn         string
	description string
	tags        []tag
	created     time.Time
	changed     time.Time
	accessed    time.Time // truncated to the day, as AWS reports it
	deleted     time.Time
	decryptFail bool
	versions    map[string]*version
	order       []string // version ids, oldest first
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

// New returns a server that verifies requests with reg and authorises them
// with policies. It serves nothing until [Server.Start] (or use it as an
// http.Handler).
func New(reg *sigv4.Registry, policies *iam.IAM, optFns ...func(*Options)) *Server {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = policies.Account()
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	clk := o.Clock
	if clk == nil {
		clk = reg.Clock()
	}
	return &Server{
		reg: reg, iam: policies, opts: o, clk: clk,
		secrets: map[string]*secret{},
		calls:   map[string]int{},
	}
}

// Region returns the server's region.
func (s *Server) Region() string { return s.opts.Region }

// Account returns the account owning the secrets.
func (s *Server) Account() string { return s.opts.Account }

// Start listens on Options.Addr and serves in the background. It returns
// the base URL (http://127.0.0.1:PORT) to use as the SDK's BaseEndpoint or
// AWS_ENDPOINT_URL_SECRETS_MANAGER.
func (s *Server) Start() (string, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return "", fmt.Errorf("secretsmanager stand-in: %w", err)
	}
	s.ln = ln
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.hs.Serve(ln)
	}()
	return s.url, nil
}

// URL returns the base URL after Start.
func (s *Server) URL() string { return s.url }

// Close stops a started server.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		if s.hs != nil {
			err = s.hs.Close()
			s.wg.Wait()
		}
	})
	return err
}

// Calls reports how many requests for op (e.g. "GetSecretValue") have
// arrived, whatever their outcome; "" counts every request.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[op]
}

// ResetCalls sets every call counter to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.mu.Unlock()
}

// FailNext makes the next n requests for op ("" = any operation) fail with
// the AWS error code (InternalServiceError, ThrottlingException,
// DecryptionFailure, ... — any code; the message is AWS's where known).
func (s *Server) FailNext(op string, n int, code string) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{op: op, n: n, code: code})
	s.mu.Unlock()
}

// SetDelay holds every answer back by d (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// SetDown makes the server drop every connection without an answer, as an
// unreachable endpoint would (true), or serve again (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// SetDecryptFailure makes GetSecretValue on the named secret fail with
// DecryptionFailure, as it does when its KMS key is disabled.
func (s *Server) SetDecryptFailure(name string, fail bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[name]
	if !ok {
		return fmt.Errorf("secretsmanager stand-in: no secret %q", name)
	}
	sec.decryptFail = fail
	return nil
}

// ErrNoSecret is returned by the administrative methods for unknown names.
var ErrNoSecret = errors.New("secretsmanager stand-in: no such secret")

// CreateString creates a secret holding a string (as CreateSecret with
// SecretString does) without any authorisation check, for test setup. It
// returns the secret's ARN and the version id labelled AWSCURRENT.
func (s *Server) CreateString(name, value string) (arn, versionID string, err error) {
	return s.adminCreate(name, &value, nil)
}

// CreateBinary creates a secret holding bytes, like CreateString.
func (s *Server) CreateBinary(name string, value []byte) (arn, versionID string, err error) {
	return s.adminCreate(name, nil, append([]byte(nil), value...))
}

func (s *Server) adminCreate(name string, str *string, bin []byte) (string, string, error) {
	if err := validName(name); err != nil {
		return "", "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		return "", "", fmt.Errorf("secretsmanager stand-in: secret %q exists", name)
	}
	now := s.clk.Now()
	sec := s.newSecret(name, now)
	v := sec.addVersion(newVersionID(), str, bin, now)
	sec.moveStage(StageCurrent, v.id)
	s.secrets[name] = sec
	return sec.arn, v.id, nil
}

// Rotate stores a new string value as the AWSCURRENT version (the previous
// AWSCURRENT becomes AWSPREVIOUS), as PutSecretValue does, and returns the
// new version id.
func (s *Server) Rotate(name, value string) (versionID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[name]
	if !ok {
		return "", ErrNoSecret
	}
	now := s.clk.Now()
	v := sec.addVersion(newVersionID(), &value, nil, now)
	sec.moveStage(StageCurrent, v.id)
	sec.changed = now
	return v.id, nil
}

// Delete marks a secret for deletion: reading it then fails with
// InvalidRequestException, as in AWS during the recovery window.
func (s *Server) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[name]
	if !ok {
		return ErrNoSecret
	}
	sec.deleted = s.clk.Now()
	return nil
}

// ARN returns the ARN of the named secret.
func (s *Server) ARN(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[name]
	if !ok {
		return "", false
	}
	return sec.arn, true
}

// Stages returns the version ids of the named secret mapped to their
// staging labels (versions without labels omitted), as DescribeSecret's
// VersionIdsToStages.
func (s *Server) Stages(name string) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[name]
	if !ok {
		return nil
	}
	return sec.versionStages()
}

func (s *Server) newSecret(name string, now time.Time) *secret {
	return &secret{
		name:     name,
		arn:      fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:%s-%s", partition.IDOf(s.opts.Region), s.opts.Region, s.opts.Account, name, randSuffix()),
		created:  now,
		changed:  now,
		versions: map[string]*version{},
	}
}

func (sec *secret) addVersion(id string, str *string, bin []byte, now time.Time) *version {
	v := &version{id: id, str: str, bin: bin, created: now}
	sec.versions[id] = v
	sec.order = append(sec.order, id)
	return v
}

// holder returns the version carrying stage.
func (sec *secret) holder(stage string) *version {
	for _, id := range sec.order {
		v := sec.versions[id]
		for _, st := range v.stages {
			if st == stage {
				return v
			}
		}
	}
	return nil
}

func (v *version) removeStage(stage string) {
	out := v.stages[:0]
	for _, st := range v.stages {
		if st != stage {
			out = append(out, st)
		}
	}
	v.stages = out
}

func (v *version) hasStage(stage string) bool {
	for _, st := range v.stages {
		if st == stage {
			return true
		}
	}
	return false
}

// moveStage attaches stage to version id, detaching it from whichever
// version held it. Moving AWSCURRENT hands AWSPREVIOUS to the version that
// held AWSCURRENT, as Secrets Manager does.
func (sec *secret) moveStage(stage, id string) {
	to := sec.versions[id]
	from := sec.holder(stage)
	if from == to {
		return
	}
	if from != nil {
		from.removeStage(stage)
	}
	to.stages = append(to.stages, stage)
	if stage == StageCurrent && from != nil {
		if prev := sec.holder(StagePrevious); prev != nil {
			prev.removeStage(StagePrevious)
		}
		from.stages = append(from.stages, StagePrevious)
	}
}

func (sec *secret) versionStages() map[string][]string {
	m := map[string][]string{}
	for _, id := range sec.order {
		v := sec.versions[id]
		if len(v.stages) > 0 {
			m[id] = append([]string(nil), v.stages...)
		}
	}
	return m
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randSuffix returns the six random characters Secrets Manager appends to
// a secret's name in its ARN.
func randSuffix() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}

// newVersionID returns a UUID v4, the form of the version ids Secrets
// Manager (and the SDK's idempotency tokens) use.
func newVersionID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newRequestID() string { return newVersionID() }
