package redisfront_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/presign"
)

const (
	account   = sigv4.DefaultAccount
	region    = "us-east-1"
	user      = "app-user"
	pwUser    = "pw-user"
	pwSecret  = "correct-horse-battery-staple"
	appRole   = "arn:aws:iam::111122223333:role/app"
	denyRole  = "arn:aws:iam::111122223333:role/nothing"
	cacheOnly = "arn:aws:iam::111122223333:role/cache-only"
)

var (
	clk        *clock.Fake
	reg        *sigv4.Registry
	authz      *iam.IAM
	standalone *redisfront.Server
	cluster    *redisfront.Cluster
	serverless *redisfront.Cluster
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk = clock.NewFake(time.Now())
	reg = sigv4.NewRegistry(clk)
	authz = iam.New(account)
	policy := func(resources ...string) []byte {
		q := make([]string, len(resources))
		for i, r := range resources {
			q[i] = strconv.Quote(r)
		}
		return []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"elasticache:Connect","Resource":[` + strings.Join(q, ",") + `]}]}`)
	}
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	userARN := "arn:aws:elasticache:us-east-1:111122223333:user:" + user
	must(authz.PutRole(appRole, trust, policy(
		"arn:aws:elasticache:us-east-1:111122223333:replicationgroup:orders",
		"arn:aws:elasticache:us-east-1:111122223333:replicationgroup:orders-cluster",
		"arn:aws:elasticache:us-east-1:111122223333:serverlesscache:sessions",
		userARN)))
	must(authz.PutRole(denyRole, trust))
	must(authz.PutRole(cacheOnly, trust, policy("arn:aws:elasticache:us-east-1:111122223333:replicationgroup:orders")))

	base := redisfront.Options{Registry: reg, IAM: authz, Region: region, Users: []string{user}, PasswordUsers: map[string]string{pwUser: pwSecret}}
	var err error
	o := base
	o.CacheName = "orders"
	o.ConnLife = time.Hour
	if standalone, err = redisfront.StartServer(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer standalone.Close()
	o = base
	o.CacheName = "orders-cluster"
	if cluster, err = redisfront.StartCluster(ctx, 3, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cluster.Close()
	o = base
	o.CacheName = "sessions"
	o.Serverless = true
	if serverless, err = redisfront.StartCluster(ctx, 1, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer serverless.Close()
	return m.Run()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// tokenSpec describes a token to mint; zero fields take the good value.
type tokenSpec struct {
	service, region, host, action, user, resourceType string
	expires                                           time.Duration
	signedAgo                                         time.Duration
	creds                                             *aws.Credentials
	extra                                             url.Values
}

func session(t testing.TB, role string, ttl time.Duration) aws.Credentials {
	t.Helper()
	c, err := reg.IssueSession(role, "test", ttl)
	if err != nil {
		t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Source: "test"}
}

func mint(t testing.TB, s tokenSpec) string {
	t.Helper()
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.service, "elasticache")
	def(&s.region, region)
	def(&s.host, "orders")
	def(&s.action, "connect")
	def(&s.user, user)
	if s.expires == 0 {
		s.expires = 900 * time.Second
	}
	creds := session(t, appRole, time.Hour)
	if s.creds != nil {
		creds = *s.creds
	}
	q := url.Values{"Action": {s.action}, "User": {s.user}}
	if s.resourceType != "" {
		q.Set("ResourceType", s.resourceType)
	}
	for k, v := range s.extra {
		q[k] = v
	}
	tok, err := presign.Token(context.Background(), creds, s.service, s.region, s.host, q, s.expires, clk.Now().Add(-s.signedAgo))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawConn is a bare RESP client, to see the front's exact replies.
type rawConn struct {
	t  testing.TB
	c  *tls.Conn
	rd *bufio.Reader
}

func dialRaw(t testing.TB, f *redisfront.Front) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", f.Addr(), f.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, rd: bufio.NewReader(c)}
}

func (r *rawConn) send(cmds ...[]string) {
	r.t.Helper()
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := r.c.Write([]byte(b.String())); err != nil {
		r.t.Fatal(err)
	}
}

// do sends one command and returns its reply rendered as text.
func (r *rawConn) do(args ...string) string {
	r.t.Helper()
	r.send(args)
	return r.read()
}

func (r *rawConn) read() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := readReply(r.rd)
	if err != nil {
		r.t.Fatalf("reading reply: %v", err)
	}
	return s
}

func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch line[0] {
	case '$', '=':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "(nil)", nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	case '*', '%', '~', '>':
		n, _ := strconv.Atoi(line[1:])
		if line[0] == '%' {
			n *= 2
		}
		parts := []string{line[:1]}
		for i := 0; i < n; i++ {
			p, err := readReply(rd)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " "), nil
	}
	return line, nil
}

func (r *rawConn) closed() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := r.rd.ReadByte()
	return err != nil
}

func TestNoAuthBeforeAuthentication(t *testing.T) {
	for _, cmd := range [][]string{{"PING"}, {"GET", "k"}, {"SET", "k", "v"}, {"CLUSTER", "SLOTS"}, {"CLIENT", "SETNAME", "x"}} {
		r := dialRaw(t, standalone.Front)
		if got := r.do(cmd...); got != redisfront.NoAuthReply {
			t.Errorf("%v before AUTH = %q, want %q", cmd, got, redisfront.NoAuthReply)
		}
	}
	r := dialRaw(t, standalone.Front)
	if got := r.do("HELLO", "3"); !strings.HasPrefix(got, "-NOAUTH HELLO must be called") {
		t.Errorf("HELLO 3 before AUTH = %q", got)
	}
	// The connection stays usable: authenticate and go on.
	if got := r.do("AUTH", user, mint(t, tokenSpec{})); got != "+OK" {
		t.Fatalf("AUTH = %q", got)
	}
	if got := r.do("PING"); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
}

func TestEachBadTokenKindIsRejected(t *testing.T) {
	expiredCreds := session(t, appRole, 2*time.Second)
	revoked := session(t, appRole, time.Hour)
	reg.Revoke(revoked.AccessKeyID)
	noSession := session(t, appRole, time.Hour)
	noSession.SessionToken = ""
	badSecret := session(t, appRole, time.Hour)
	badSecret.SecretAccessKey = strings.Repeat("x", 40)
	unknownKey := aws.Credentials{AccessKeyID: "ASIAUNKNOWNUNKNOWN00", SecretAccessKey: "s", SessionToken: "t"}
	denied := session(t, denyRole, time.Hour)
	cacheOnlyCreds := session(t, cacheOnly, time.Hour)
	longTerm := reg.AddUser(account, "alice")
	userCreds := aws.Credentials{AccessKeyID: longTerm.AccessKeyID, SecretAccessKey: longTerm.SecretAccessKey}

	good := mint(t, tokenSpec{})
	tests := []struct {
		name   string
		user   string
		token  func() string
		reason string
	}{
		{"wrong secret key", user, func() string { return mint(t, tokenSpec{creds: &badSecret}) }, "sigv4:SignatureDoesNotMatch"},
		{"unknown access key", user, func() string { return mint(t, tokenSpec{creds: &unknownKey}) }, "sigv4:InvalidClientTokenId"},
		{"revoked access key", user, func() string { return mint(t, tokenSpec{creds: &revoked}) }, "sigv4:InvalidClientTokenId"},
		{"session token missing", user, func() string { return mint(t, tokenSpec{creds: &noSession}) }, "sigv4:InvalidClientTokenId"},
		{"expired credentials", user, func() string {
			tok := mint(t, tokenSpec{creds: &expiredCreds})
			clk.Advance(3 * time.Second)
			return tok
		}, "sigv4:ExpiredToken"},
		{"token past its 15 minutes", user, func() string { return mint(t, tokenSpec{signedAgo: 901 * time.Second}) }, "sigv4:AccessDenied"},
		{"X-Amz-Expires above 900", user, func() string { return mint(t, tokenSpec{expires: time.Hour}) }, "sigv4:AuthorizationQueryParametersError"},
		{"wrong service", user, func() string { return mint(t, tokenSpec{service: "rds-db"}) }, "sigv4:SignatureDoesNotMatch"},
		{"MemoryDB token", user, func() string { return mint(t, tokenSpec{service: "memorydb"}) }, "sigv4:SignatureDoesNotMatch"},
		{"wrong region", user, func() string { return mint(t, tokenSpec{region: "eu-west-1"}) }, "sigv4:SignatureDoesNotMatch"},
		{"other cache", user, func() string { return mint(t, tokenSpec{host: "payments"}) }, redisfront.ReasonHost},
		{"endpoint host instead of cache name", user, func() string {
			return mint(t, tokenSpec{host: "master.orders.abc123.use1.cache.amazonaws.com"})
		}, redisfront.ReasonHost},
		{"upper-case cache name", user, func() string { return mint(t, tokenSpec{host: "Orders"}) }, redisfront.ReasonHost},
		{"wrong action", user, func() string { return mint(t, tokenSpec{action: "Connect"}) }, redisfront.ReasonAction},
		{"other user in token", user, func() string { return mint(t, tokenSpec{user: "someone-else"}) }, redisfront.ReasonUser},
		{"token for another AUTH user", "someone-else", func() string { return good }, redisfront.ReasonUnknownUser},
		{"serverless token on a replication group", user, func() string { return mint(t, tokenSpec{resourceType: "ServerlessCache"}) }, redisfront.ReasonResourceType},
		{"IAM denies", user, func() string { return mint(t, tokenSpec{creds: &denied}) }, redisfront.ReasonIAM},
		{"IAM allows the cache but not the user", user, func() string { return mint(t, tokenSpec{creds: &cacheOnlyCreds}) }, redisfront.ReasonIAM},
		{"IAM user without policies", user, func() string { return mint(t, tokenSpec{creds: &userCreds}) }, redisfront.ReasonIAM},
		{"with scheme", user, func() string { return "http://" + good }, redisfront.ReasonMalformed},
		{"tampered signature", user, func() string {
			i := strings.Index(good, "X-Amz-Signature=") + len("X-Amz-Signature=")
			c := byte('0')
			if good[i] == '0' {
				c = '1'
			}
			return good[:i] + string(c) + good[i+1:]
		}, "sigv4:SignatureDoesNotMatch"},
		{"added query parameter", user, func() string { return good + "&User=" + user }, "sigv4:SignatureDoesNotMatch"},
		{"not a token", user, func() string { return "hunter2" }, redisfront.ReasonMalformed},
		{"unsigned URL", user, func() string { return "orders/?Action=connect&User=" + user }, "sigv4:AuthorizationQueryParametersError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := standalone.Stats()
			tok := tc.token()
			for _, cmd := range [][]string{{"AUTH", tc.user, tok}, {"HELLO", "3", "AUTH", tc.user, tok}} {
				r := dialRaw(t, standalone.Front)
				if got := r.do(cmd...); got != redisfront.WrongPassReply {
					t.Fatalf("%s = %q, want %q", cmd[0], got, redisfront.WrongPassReply)
				}
				// Still not authenticated.
				if got := r.do("PING"); got != redisfront.NoAuthReply {
					t.Fatalf("PING after rejected %s = %q", cmd[0], got)
				}
			}
			after := standalone.Stats()
			if n := after.Rejected[tc.reason] - before.Rejected[tc.reason]; n != 2 {
				t.Fatalf("rejections for %q grew by %d, want 2 (all: %v)", tc.reason, n, after.Rejected)
			}
			if after.AuthOK != before.AuthOK {
				t.Fatal("a bad token authenticated")
			}
		})
	}
	// And the good one passes.
	r := dialRaw(t, standalone.Front)
	if got := r.do("AUTH", user, mint(t, tokenSpec{})); got != "+OK" {
		t.Fatalf("good token: %q", got)
	}
}

func TestHelloAuthSwitchesToRESP3(t *testing.T) {
	r := dialRaw(t, standalone.Front)
	got := r.do("HELLO", "3", "AUTH", user, mint(t, tokenSpec{}), "SETNAME", "front-test")
	if !strings.HasPrefix(got, "% server redis") || !strings.Contains(got, "proto :3") {
		t.Fatalf("HELLO reply = %q", got)
	}
	if got := r.do("CLIENT", "GETNAME"); got != "front-test" {
		t.Fatalf("CLIENT GETNAME = %q", got)
	}
	if got := r.do("GET", "hello-missing-key"); got != "_" {
		t.Fatalf("GET missing key in RESP3 = %q, want _", got)
	}
	// The real server never saw the AUTH: its ACL log has no failure and the
	// connection is the default user there.
	if got := r.do("ACL", "WHOAMI"); got != "default" {
		t.Fatalf("ACL WHOAMI = %q", got)
	}
}

func TestReauthOnLiveConnection(t *testing.T) {
	r := dialRaw(t, standalone.Front)
	if got := r.do("AUTH", user, mint(t, tokenSpec{})); got != "+OK" {
		t.Fatalf("AUTH = %q", got)
	}
	before := standalone.Stats()
	// A pipeline with a re-auth in the middle keeps reply order.
	r.send([]string{"SET", "reauth-k", "1"}, []string{"AUTH", user, mint(t, tokenSpec{})}, []string{"AUTH", user, mint(t, tokenSpec{action: "nope"})}, []string{"INCR", "reauth-k"})
	for i, want := range []string{"+OK", "+OK", redisfront.WrongPassReply, ":2"} {
		if got := r.read(); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
	after := standalone.Stats()
	if after.Reauths-before.Reauths != 1 || after.Rejected[redisfront.ReasonAction]-before.Rejected[redisfront.ReasonAction] != 1 {
		t.Fatalf("reauths %d→%d, action rejections %v→%v", before.Reauths, after.Reauths, before.Rejected, after.Rejected)
	}
	// A rejected re-auth leaves the connection authenticated, as in Redis.
	if got := r.do("GET", "reauth-k"); got != "2" {
		t.Fatalf("GET = %q", got)
	}
	// HELLO with AUTH re-authenticates too.
	if got := r.do("HELLO", "2", "AUTH", user, mint(t, tokenSpec{})); !strings.HasPrefix(got, "* server redis") {
		t.Fatalf("HELLO 2 AUTH = %q", got)
	}
	// RESET drops the authentication, NOAUTH comes back in order.
	r.send([]string{"RESET"}, []string{"PING"})
	if got := r.read(); got != "+RESET" {
		t.Fatalf("RESET = %q", got)
	}
	if got := r.read(); got != redisfront.NoAuthReply {
		t.Fatalf("PING after RESET = %q", got)
	}
}

func TestConnectionLifeIsCutUnlessReauthenticated(t *testing.T) {
	life := time.Hour // standalone's ConnLife
	before := standalone.Stats()
	stays := dialRaw(t, standalone.Front)
	cut := dialRaw(t, standalone.Front)
	pw := dialRaw(t, standalone.Front)
	for _, r := range []*rawConn{stays, cut} {
		if got := r.do("AUTH", user, mint(t, tokenSpec{})); got != "+OK" {
			t.Fatalf("AUTH = %q", got)
		}
	}
	if got := pw.do("AUTH", pwUser, pwSecret); got != "+OK" {
		t.Fatalf("password AUTH = %q", got)
	}
	clk.Advance(life - time.Minute)
	// Re-authenticating (with a token minted now) extends the life.
	if got := stays.do("AUTH", user, mint(t, tokenSpec{})); got != "+OK" {
		t.Fatalf("re-AUTH = %q", got)
	}
	if got := cut.do("PING"); got != "+PONG" {
		t.Fatalf("PING before the end of life = %q", got)
	}
	clk.Advance(2 * time.Minute)
	if !cut.closed() {
		t.Fatal("connection outlived its life")
	}
	if got := stays.do("PING"); got != "+PONG" {
		t.Fatalf("re-authenticated connection: PING = %q", got)
	}
	clk.Advance(life)
	if !stays.closed() {
		t.Fatal("re-authenticated connection outlived its extended life")
	}
	// Password connections have no IAM life.
	if got := pw.do("PING"); got != "+PONG" {
		t.Fatalf("password connection: PING = %q", got)
	}
	if n := standalone.Stats().Cuts - before.Cuts; n != 2 {
		t.Fatalf("cuts = %d, want 2", n)
	}
}

func TestPasswordUser(t *testing.T) {
	r := dialRaw(t, standalone.Front)
	if got := r.do("AUTH", pwUser, "wrong"); got != redisfront.WrongPassReply {
		t.Fatalf("wrong password: %q", got)
	}
	if got := r.do("AUTH", pwUser, pwSecret); got != "+OK" {
		t.Fatalf("password: %q", got)
	}
	// An IAM token is no password, and a password no IAM token.
	if got := r.do("AUTH", user, pwSecret); got != redisfront.WrongPassReply {
		t.Fatalf("password as token: %q", got)
	}
}

func TestQuit(t *testing.T) {
	for _, authed := range []bool{false, true} {
		r := dialRaw(t, standalone.Front)
		if authed {
			r.do("AUTH", user, mint(t, tokenSpec{}))
		}
		if got := r.do("QUIT"); got != "+OK" {
			t.Fatalf("QUIT = %q", got)
		}
		if !r.closed() {
			t.Fatal("connection open after QUIT")
		}
	}
}

func tokenProvider(t testing.TB, host string, serverless bool) func(context.Context) (string, string, error) {
	creds := session(t, appRole, time.Hour)
	return func(ctx context.Context) (string, string, error) {
		q := url.Values{"Action": {"connect"}, "User": {user}}
		if serverless {
			q.Set("ResourceType", "ServerlessCache")
		}
		tok, err := presign.Token(ctx, creds, "elasticache", region, host, q, 900*time.Second, clk.Now())
		return user, tok, err
	}
}

func TestGoRedisThroughFront(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{
		Addr:                       standalone.Addr(),
		TLSConfig:                  standalone.ClientTLS(),
		CredentialsProviderContext: tokenProvider(t, "orders", false),
	})
	defer rdb.Close()
	if err := rdb.Set(ctx, "gr-k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "gr-k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	// Without credentials go-redis gets NOAUTH.
	bare := redis.NewClient(&redis.Options{Addr: standalone.Addr(), TLSConfig: standalone.ClientTLS()})
	defer bare.Close()
	if err := bare.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without credentials: %v", err)
	}
	// Plain TCP is refused: the front speaks TLS only.
	plain := redis.NewClient(&redis.Options{Addr: standalone.Addr(), CredentialsProviderContext: tokenProvider(t, "orders", false), MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("plaintext connection worked")
	}
}

func TestClusterThroughFronts(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      cluster.Addrs()[:1],
		TLSConfig:                  cluster.Fronts[0].ClientTLS(),
		CredentialsProviderContext: tokenProvider(t, "orders-cluster", false),
	})
	defer rdb.Close()
	for i := 0; i < 50; i++ {
		k := "ck-" + strconv.Itoa(i)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rdb.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("GET %s = %d, %v", k, v, err)
		}
	}
	// Every node answered through its front.
	for i, f := range cluster.Fronts {
		if f.Stats().Forwarded == 0 {
			t.Errorf("front %d relayed nothing", i)
		}
	}
	//lint:ignore SA1019 CLUSTER SLOTS is what the issue asks the fronts to rewrite, and what go-redis routes with
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]bool{}
	for _, a := range cluster.Addrs() {
		ports[a] = true
	}
	for _, s := range slots {
		for _, n := range s.Nodes {
			if !ports[n.Addr] {
				t.Errorf("CLUSTER SLOTS names %s, not a front", n.Addr)
			}
		}
	}
}

func TestServerlessNeedsResourceType(t *testing.T) {
	ctx := context.Background()
	f := serverless.Fronts[0]
	r := dialRaw(t, f)
	if got := r.do("AUTH", user, mint(t, tokenSpec{host: "sessions"})); got != redisfront.WrongPassReply {
		t.Fatalf("token without ResourceType: %q", got)
	}
	if got := r.do("AUTH", user, mint(t, tokenSpec{host: "sessions", resourceType: "ServerlessCache"})); got != "+OK" {
		t.Fatalf("serverless token: %q", got)
	}
	if f.Stats().Rejected[redisfront.ReasonResourceType] != 1 {
		t.Fatalf("rejections: %v", f.Stats().Rejected)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      serverless.Addrs(),
		TLSConfig:                  f.ClientTLS(),
		CredentialsProviderContext: tokenProvider(t, "sessions", true),
	})
	defer rdb.Close()
	for i := 0; i < 20; i++ {
		if err := rdb.Set(ctx, "sk-"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyTokenARNs(t *testing.T) {
	tests := []struct {
		c          redisfront.Check
		cache, usr string
	}{
		{redisfront.Check{Region: "us-east-1", Account: "1", CacheName: "rg"}, "arn:aws:elasticache:us-east-1:1:replicationgroup:rg", "arn:aws:elasticache:us-east-1:1:user:u"},
		{redisfront.Check{Region: "us-east-1", Account: "1", CacheName: "c", Serverless: true}, "arn:aws:elasticache:us-east-1:1:serverlesscache:c", "arn:aws:elasticache:us-east-1:1:user:u"},
		{redisfront.Check{Region: "cn-north-1", Account: "1", CacheName: "rg"}, "arn:aws-cn:elasticache:cn-north-1:1:replicationgroup:rg", "arn:aws-cn:elasticache:cn-north-1:1:user:u"},
		{redisfront.Check{Service: "memorydb", Region: "us-east-1", Account: "1", CacheName: "m"}, "arn:aws:memorydb:us-east-1:1:cluster/m", "arn:aws:memorydb:us-east-1:1:user/u"},
	}
	for _, tc := range tests {
		if got := tc.c.CacheARN(); got != tc.cache {
			t.Errorf("CacheARN = %s, want %s", got, tc.cache)
		}
		if got := tc.c.UserARN("u"); got != tc.usr {
			t.Errorf("UserARN = %s, want %s", got, tc.usr)
		}
	}
}

func TestRejectErrorHoldsNoToken(t *testing.T) {
	tok := mint(t, tokenSpec{user: "other"})
	err := standalone.Verify(user, tok)
	if err == nil {
		t.Fatal("accepted")
	}
	sig := tok[strings.Index(tok, "X-Amz-Signature=")+16:]
	if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), "X-Amz-Security-Token") {
		t.Fatalf("error leaks the token: %v", err)
	}
}
