package s3store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/irsakit/irsakit/s3store"
)

// TestPresigned: presigned URLs work with plain net/http and no AWS
// credentials, only for the object, method and headers they were signed
// for, and print redacted.
func TestPresigned(t *testing.T) {
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "ps/"))
	ctx := context.Background()
	hc := &http.Client{Timeout: 30 * time.Second}
	send := func(req *http.Request) (int, []byte) {
		t.Helper()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	put, err := st.PresignPut(ctx, "ps/upload.json", 10*time.Minute, func(o *s3store.PresignOptions) {
		o.ContentType = "application/json"
	})
	if err != nil {
		t.Fatal(err)
	}
	if put.Method != http.MethodPut || put.Header.Get("Content-Type") != "application/json" {
		t.Errorf("presigned PUT = %s %v", put.Method, put.Header)
	}
	body := []byte(`{"hello":"presigned"}`)
	req, err := put.NewRequest(ctx, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if code, b := send(req); code != http.StatusOK {
		t.Fatalf("presigned PUT: %d %s", code, b)
	}
	obj, err := st.Stat(ctx, "ps/upload.json")
	if err != nil || obj.ContentType != "application/json" || obj.Size != int64(len(body)) {
		t.Fatalf("after presigned PUT: %+v, %v", obj, err)
	}

	get, err := st.PresignGet(ctx, "ps/upload.json", 0, func(o *s3store.PresignOptions) {
		o.ResponseContentDisposition = `attachment; filename="x.json"`
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(get.URL())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, got)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="x.json"` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if until := time.Until(get.Expires); until <= 0 || until > s3store.DefaultPresignExpires {
		t.Errorf("Expires in %v, want within the default %v", until, s3store.DefaultPresignExpires)
	}

	// The signature covers the key, the method and the signed headers.
	u, _ := url.Parse(get.URL())
	u.Path = strings.Replace(u.Path, "upload.json", "other.json", 1)
	if code, _ := send(mustReq(t, http.MethodGet, u.String(), nil)); code != http.StatusForbidden {
		t.Errorf("GET with the key changed: %d, want 403", code)
	}
	if code, _ := send(mustReq(t, http.MethodPut, get.URL(), strings.NewReader("x"))); code != http.StatusForbidden {
		t.Errorf("PUT on a presigned GET URL: %d, want 403", code)
	}
	noType := mustReq(t, http.MethodPut, put.URL(), bytes.NewReader(body))
	noType.Header.Set("Content-Type", "text/html")
	if code, _ := send(noType); code != http.StatusForbidden {
		t.Errorf("presigned PUT with another Content-Type: %d, want 403", code)
	}
	q := u.Query()
	q.Set("X-Amz-Signature", strings.Repeat("0", 64))
	u.Path = strings.Replace(u.Path, "other.json", "upload.json", 1)
	u.RawQuery = q.Encode()
	if code, _ := send(mustReq(t, http.MethodGet, u.String(), nil)); code != http.StatusForbidden {
		t.Errorf("GET with a forged signature: %d, want 403", code)
	}

	// Outside the role's policy a presigned URL is signed but refused.
	denied, err := st.PresignGet(ctx, "elsewhere/x", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := send(mustReq(t, http.MethodGet, denied.URL(), nil)); code != http.StatusForbidden {
		t.Errorf("presigned GET outside the policy: %d, want 403", code)
	}

	// The URL is a secret: no printing path reveals the signature or token.
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("presigned", "url", get)
	for _, s := range []string{
		fmt.Sprint(get), fmt.Sprintf("%v %+v %#v %s %q", get, get, get, get, get), get.String(), logBuf.String(),
	} {
		for _, secret := range []string{"X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", u.Query().Get("X-Amz-Security-Token")} {
			if secret != "" && strings.Contains(s, secret) {
				t.Errorf("printed form reveals %.20s…: %s", secret, s)
			}
		}
		if !strings.Contains(s, "ps/upload.json") {
			t.Errorf("printed form lost the object: %s", s)
		}
	}
	var logged map[string]any
	if err := json.Unmarshal(logBuf.Bytes(), &logged); err != nil {
		t.Fatal(err)
	}

	// A URL cannot outlive the session that signed it; Expires says so.
	long, err := st.PresignGet(ctx, "ps/upload.json", 6*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if until := time.Until(long.Expires); until <= 0 || until > 2*time.Hour {
		t.Errorf("a 6-day URL signed with 1-hour session credentials claims to live %v", until)
	}

	for _, d := range []time.Duration{-time.Second, 8 * 24 * time.Hour} {
		if _, err := st.PresignGet(ctx, "ps/x", d); err == nil {
			t.Errorf("lifetime %v accepted", d)
		}
	}
}

func mustReq(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
