package main_test

import (
	"fmt"

	"github.com/irsakit/irsakit/internal/awstest/procs"
)

// closedURL returns an http URL on a loopback port that was free a moment
// ago: the blocked "global" STS endpoint of tests, never the real one.
func closedURL() (string, error) {
	p, err := procs.FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("http://127.0.0.1:%d", p), nil
}
