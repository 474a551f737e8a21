package redactiontest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/redis/go-redis/v9/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
	"github.com/irsakit/irsakit/s3store"
	"github.com/irsakit/irsakit/secrets"
)

// The secrets the subjects are built from. Letters and digits only, so URL
// query encoding leaves them as they are inside tokens and presigned URLs.
const (
	accessKey     = "AKIDREDACTIONTEST"
	secretKey     = "redactionSecretAccessKey0123456789"
	sessionToken  = "redactionSessionToken0123456789"
	secretString  = "redactionSecretValue0123456789"
	secretBinary  = "redactionSecretBinary0123456789"
	dbPassword    = "redactionDBPassword0123456789"
	testRegion    = "us-east-1"
	testEndpoint  = "db.example.com:5432"
	signatureName = "X-Amz-Signature="
)

func staticCreds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKey, secretKey, sessionToken)
}

// subject is one value of an exported type that holds a secret.
type subject struct {
	name    string
	value   any      // the value; nil for types handed out only by pointer
	pointer any      // a pointer to it
	secrets []string // none of these may be printed, in any encoding

	// hiddenFieldLeak explains why the type is still printed in full from
	// an unexported field of a caller's struct: fmt reads such a field by
	// reflection and never calls its methods, so only a type keeping its
	// secret behind a pointer (printed as an address) is safe there.
	hiddenFieldLeak string
	// knownLeak explains a leak of the type itself that its package has
	// yet to close.
	knownLeak string
}

func subjects(t *testing.T) []subject {
	t.Helper()
	ctx := context.Background()
	var out []subject
	add := func(s subject) {
		require.NotEmpty(t, s.secrets, s.name)
		for _, sec := range s.secrets {
			require.NotEmpty(t, sec, "%s: an empty secret proves nothing", s.name)
		}
		out = append(out, s)
	}
	const (
		plainField = "it keeps its secret in a plain field"
		// Under a verb that does not fit a pointer (%s, %q) fmt prints
		// the struct a pointer points to, field by field.
		pointedStruct = "its secret sits in a struct behind a pointer, which fmt prints in full under %s and %q"
		heldProvider  = "it keeps the credentials provider it was given, and a static provider is a struct holding the keys, " +
			"which fmt prints in full from behind the pointer under %s and %q"
	)

	rdsSrc, err := rdsauth.NewTokenSource(testEndpoint, "app", staticCreds(), func(o *rdsauth.Options) { o.Region = testRegion })
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdsSrc.Close() })
	rdsTok, err := rdsSrc.Token(ctx)
	require.NoError(t, err)
	require.Contains(t, rdsTok.Value(), signatureName)
	require.Contains(t, rdsTok.Value(), sessionToken)
	add(subject{name: "rdsauth.Token", value: rdsTok, pointer: &rdsTok,
		secrets: []string{rdsTok.Value(), signature(rdsTok.Value()), sessionToken, secretKey}, hiddenFieldLeak: pointedStruct})
	add(subject{name: "rdsauth.TokenSource", pointer: rdsSrc,
		secrets: []string{rdsTok.Value(), signature(rdsTok.Value()), sessionToken, secretKey}, hiddenFieldLeak: heldProvider})

	ecSrc, err := elasticacheauth.NewTokenSource("orders", "app-user", staticCreds(), func(o *elasticacheauth.Options) { o.Region = testRegion })
	require.NoError(t, err)
	t.Cleanup(func() { _ = ecSrc.Close() })
	ecTok, err := ecSrc.Token(ctx)
	require.NoError(t, err)
	require.Contains(t, ecTok.Value(), signatureName)
	ecSecrets := []string{ecTok.Value(), signature(ecTok.Value()), sessionToken, secretKey}
	add(subject{name: "elasticacheauth.Token", value: ecTok, pointer: &ecTok, secrets: ecSecrets, hiddenFieldLeak: plainField})
	add(subject{name: "elasticacheauth.TokenSource", pointer: ecSrc, secrets: ecSecrets, hiddenFieldLeak: heldProvider})

	// The credentials go-redis receives: an unexported type behind
	// auth.Credentials, reached the way go-redis reaches it.
	scp := elasticacheauth.NewStreamingCredentialsProvider(ecSrc)
	t.Cleanup(func() { _ = scp.Close() })
	redisCreds, unsubscribe, err := scp.Subscribe(&listener{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = unsubscribe() })
	_, password := redisCreds.BasicAuth()
	require.Contains(t, password, signatureName)
	credsPtr := reflect.New(reflect.TypeOf(redisCreds))
	credsPtr.Elem().Set(reflect.ValueOf(redisCreds))
	add(subject{name: "elasticacheauth credentials (go-redis auth.Credentials)", value: redisCreds, pointer: credsPtr.Interface(),
		secrets: []string{password, signature(password), sessionToken}, hiddenFieldLeak: plainField})
	add(subject{name: "elasticacheauth.StreamingCredentialsProvider", pointer: scp, secrets: ecSecrets})

	sm := &secretStore{values: map[string]*secretsmanager.GetSecretValueOutput{
		"app/api-key": {SecretString: aws.String(secretString)},
		"app/cert":    {SecretBinary: []byte(secretBinary)},
		"app/db": {SecretString: aws.String(`{"engine":"postgres","host":"db.example.com","port":5432,` +
			`"dbname":"app","username":"app","password":"` + dbPassword + `"}`)},
	}}
	cache, err := secrets.NewFromClient(sm)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	val, err := cache.Get(ctx, "app/api-key")
	require.NoError(t, err)
	require.Equal(t, secretString, val.SecretString())
	add(subject{name: "secrets.Value", value: val, pointer: &val, secrets: []string{secretString}, hiddenFieldLeak: plainField})
	bin, err := cache.Get(ctx, "app/cert")
	require.NoError(t, err)
	require.Equal(t, []byte(secretBinary), bin.SecretBinary())
	add(subject{name: "secrets.Value (binary)", value: bin, pointer: &bin, secrets: []string{secretBinary}, hiddenFieldLeak: plainField})
	rdsCreds, err := cache.RDS(ctx, "app/db")
	require.NoError(t, err)
	require.Equal(t, dbPassword, rdsCreds.Password)
	add(subject{name: "secrets.RDSCredentials", value: rdsCreds, pointer: &rdsCreds, secrets: []string{dbPassword},
		hiddenFieldLeak: "its Password is an exported field"})
	add(subject{name: "secrets.Cache", pointer: cache, secrets: []string{secretString, secretBinary, dbPassword}})

	store, err := s3store.New(aws.Config{Region: testRegion, Credentials: staticCreds(), BaseEndpoint: aws.String("https://s3.example.com")},
		"my-bucket", func(o *s3store.Options) { o.UsePathStyle = true })
	require.NoError(t, err)
	add(subject{name: "s3store.Store", pointer: store, secrets: []string{secretKey, sessionToken}})
	get, err := store.PresignGet(ctx, "reports/q3.pdf", time.Hour)
	require.NoError(t, err)
	require.Contains(t, get.URL(), signatureName)
	require.Contains(t, get.URL(), sessionToken)
	add(subject{name: "s3store.Presigned (GET)", value: *get, pointer: get,
		secrets: []string{get.URL(), signature(get.URL()), sessionToken, signatureName}})
	put, err := store.PresignPut(ctx, "uploads/a.json", time.Hour, func(o *s3store.PresignOptions) { o.ContentType = "application/json" })
	require.NoError(t, err)
	add(subject{name: "s3store.Presigned (PUT)", value: *put, pointer: put,
		secrets: []string{put.URL(), signature(put.URL()), sessionToken, signatureName}})

	add(subject{name: "irsa.Session", pointer: keysSession(t), secrets: []string{secretKey, sessionToken},
		knownLeak: "its aws.Config keeps config.LoadDefaultConfig's ConfigSources, whose EnvConfig holds the keys"})
	return out
}

// keysSession loads a session from static keys in the environment, as a
// program outside a pod does.
func keysSession(t *testing.T) *irsa.Session {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS", "KUBERNETES_SERVICE_HOST"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	missing := t.TempDir() + "/none"
	t.Setenv("AWS_CONFIG_FILE", missing)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", sessionToken)
	t.Setenv("AWS_REGION", testRegion)
	sess, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.Logger = slog.New(slog.DiscardHandler) })
	require.NoError(t, err)
	c, err := sess.Config().Credentials.Retrieve(context.Background())
	require.NoError(t, err)
	require.Equal(t, secretKey, c.SecretAccessKey)
	return sess
}

// signature returns the X-Amz-Signature value of a presigned URL or token.
func signature(s string) string {
	i := strings.Index(s, signatureName)
	if i < 0 {
		return ""
	}
	sig := s[i+len(signatureName):]
	if j := strings.IndexByte(sig, '&'); j >= 0 {
		sig = sig[:j]
	}
	return sig
}

type listener struct{}

func (*listener) OnNext(auth.Credentials) {}
func (*listener) OnError(error)           {}

// secretStore answers GetSecretValue from a map, as Secrets Manager would.
type secretStore struct {
	values map[string]*secretsmanager.GetSecretValueOutput
}

func (s *secretStore) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := s.values[aws.ToString(in.SecretId)]
	if !ok {
		return nil, fmt.Errorf("no secret %q", aws.ToString(in.SecretId))
	}
	out := *v
	out.Name = in.SecretId
	out.ARN = aws.String("arn:aws:secretsmanager:" + testRegion + ":111122223333:secret:" + aws.ToString(in.SecretId) + "-AbCdEf")
	out.VersionId = aws.String("v1")
	out.VersionStages = []string{"AWSCURRENT"}
	out.CreatedDate = aws.Time(time.Unix(1700000000, 0))
	return &out, nil
}

// container puts a subject where programs put it: as it is, in a field of
// their own struct (which they print by value or by pointer), in a slice,
// in a map.
type container struct {
	name   string
	hidden bool // an unexported field: fmt does not call its methods
	wrap   func(x any) any
}

// hiddenField is a caller's struct holding a secret in an unexported field.
type hiddenField struct {
	name string
	v    any
}

func containers() []container {
	field := func(x any) reflect.Value {
		typ := reflect.StructOf([]reflect.StructField{
			{Name: "Name", Type: reflect.TypeFor[string]()},
			{Name: "V", Type: reflect.TypeOf(x)},
		})
		v := reflect.New(typ)
		v.Elem().Field(0).SetString("app")
		v.Elem().Field(1).Set(reflect.ValueOf(x))
		return v
	}
	return []container{
		{name: "itself", wrap: func(x any) any { return x }},
		{name: "struct{V X}", wrap: func(x any) any { return field(x).Elem().Interface() }},
		{name: "&struct{V X}", wrap: func(x any) any { return field(x).Interface() }},
		{name: "[]X", wrap: func(x any) any {
			s := reflect.MakeSlice(reflect.SliceOf(reflect.TypeOf(x)), 1, 1)
			s.Index(0).Set(reflect.ValueOf(x))
			return s.Interface()
		}},
		{name: "map[string]X", wrap: func(x any) any {
			m := reflect.MakeMap(reflect.MapOf(reflect.TypeFor[string](), reflect.TypeOf(x)))
			m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf(x))
			return m.Interface()
		}},
		{name: "struct{v X}", hidden: true, wrap: func(x any) any { return hiddenField{name: "app", v: x} }},
		{name: "&struct{v X}", hidden: true, wrap: func(x any) any { return &hiddenField{name: "app", v: x} }},
	}
}

type rendered struct{ form, out string }

// render prints x in every way a program might: each fmt verb, inside
// errors, through slog's text and JSON handlers, and with encoding/json.
func render(x any) []rendered {
	var out []rendered
	for _, verb := range []string{"%v", "%+v", "%s", "%#v", "%q", "%x", "%X", "%d"} {
		out = append(out, rendered{"fmt " + verb, fmt.Sprintf(verb, x)})
	}
	out = append(out,
		rendered{"fmt.Sprint", fmt.Sprint(x)},
		rendered{"fmt.Errorf %v", fmt.Errorf("connect: %v", x).Error()},
		rendered{"fmt.Errorf %w of %+v", fmt.Errorf("retry: %w", fmt.Errorf("connect: %+v", x)).Error()},
	)
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"slog text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"slog JSON", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		var b bytes.Buffer
		l := slog.New(h.new(&b))
		l.Info("key-value", "v", x)
		l.Info("attr", slog.Any("v", x))
		l.Info("group", slog.Group("g", slog.Any("v", x)))
		l.With("v", x).Info("with")
		out = append(out, rendered{h.name, b.String()})
	}
	j, err := json.Marshal(x)
	if err != nil {
		j = []byte(err.Error())
	}
	out = append(out, rendered{"json.Marshal", string(j)})
	return out
}

// encodings are the spellings of a secret that a printer can produce:
// as it is (also inside %q), hex (%x, %X), base64 (encoding/json of
// []byte), and the decimal and Go-syntax byte lists of %v and %#v.
func encodings(secret string) []string {
	b := []byte(secret)
	return []string{
		secret,
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b)[:len(b)*4/3],
		strings.Trim(fmt.Sprint(b), "[]"),
		strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}"),
	}
}

// leaks returns the forms of out that contain one of the secrets, each
// with an excerpt from which every secret is cut.
func leaks(out []rendered, secrets []string) []string {
	var spellings []string
	for _, s := range secrets {
		spellings = append(spellings, encodings(s)...)
	}
	var found []string
	for _, r := range out {
		first := -1
		for _, enc := range spellings {
			if i := strings.Index(r.out, enc); i >= 0 && (first < 0 || i < first) {
				first = i
			}
		}
		if first < 0 {
			continue
		}
		excerpt := r.out[max(0, first-80):min(len(r.out), first+80)]
		for _, enc := range spellings {
			excerpt = strings.ReplaceAll(excerpt, enc, "<SECRET>")
		}
		found = append(found, r.form+": …"+excerpt+"…")
	}
	return found
}

// TestNothingPrintsASecret walks every exported type that holds a token,
// password, secret value, secret key or presigned URL through every
// printing path, by value and by pointer, and asserts no secret comes out.
func TestNothingPrintsASecret(t *testing.T) {
	for _, s := range subjects(t) {
		t.Run(s.name, func(t *testing.T) {
			ways := []struct {
				name string
				x    any
			}{{"pointer", s.pointer}}
			if s.value != nil {
				ways = append(ways, struct {
					name string
					x    any
				}{"value", s.value})
			}
			var knownSeen, hiddenSeen bool
			for _, w := range ways {
				for _, c := range containers() {
					t.Run(w.name+"/"+c.name, func(t *testing.T) {
						out := render(c.wrap(w.x))
						for _, r := range out {
							assert.NotEmpty(t, r.out, r.form)
						}
						found := leaks(out, s.secrets)
						if len(found) == 0 {
							return
						}
						switch {
						case c.hidden && s.hiddenFieldLeak != "":
							hiddenSeen = true
							t.Skipf("known: printed in full from an unexported field because %s (%d forms)", s.hiddenFieldLeak, len(found))
						case s.knownLeak != "":
							knownSeen = true
							t.Skipf("known: %s (%d forms)", s.knownLeak, len(found))
						}
						t.Errorf("%s printed a secret in %d forms:\n%s", s.name, len(found), strings.Join(found, "\n"))
					})
				}
			}
			if s.hiddenFieldLeak != "" {
				assert.True(t, hiddenSeen, "%s no longer leaks from an unexported field: drop its hiddenFieldLeak", s.name)
			}
			if s.knownLeak != "" {
				assert.True(t, knownSeen, "%s no longer leaks: drop its knownLeak", s.name)
			}
		})
	}
}

// plain holds a secret with no redaction at all: the control that proves
// the detector sees each spelling.
type plain struct {
	Password string
	Key      []byte
}

func TestDetectorSeesLeaks(t *testing.T) {
	p := plain{Password: dbPassword, Key: []byte(secretBinary)}
	out := render(p)
	found := leaks(out, []string{dbPassword})
	assert.Len(t, found, len(out), "every form prints the plain password: %v", found)
	for _, verb := range []string{"%v", "%x", "%#v"} {
		assert.NotEmpty(t, leaks([]rendered{{verb, fmt.Sprintf(verb, hiddenField{v: p})}}, []string{secretBinary}),
			"the key's bytes under %s", verb)
	}
	assert.NotEmpty(t, leaks([]rendered{{"json", string(must(json.Marshal(p)))}}, []string{secretBinary}), "base64 in JSON")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
