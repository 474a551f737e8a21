package outage_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/outage"
)

func TestDownResetsNewAndKeptAliveConnections(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := outage.Wrap(raw)
	srv := &http.Server{Handler: ln.Guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "up")
	}))}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	url := "http://" + raw.Addr().String() + "/"

	get := func(c *http.Client) (string, error) {
		res, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}
	kept := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	body, err := get(kept)
	require.NoError(t, err)
	assert.Equal(t, "up", body)

	ln.SetDown(true)
	assert.True(t, ln.Down())
	_, err = get(kept) // the kept-alive connection: Guard resets it
	assert.Error(t, err, "request on a kept-alive connection while down")
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err = get(fresh) // a new connection: Accept resets it
	assert.Error(t, err, "new connection while down")

	ln.SetDown(false)
	body, err = get(fresh)
	require.NoError(t, err)
	assert.Equal(t, "up", body)
}
