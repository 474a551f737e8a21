package procs_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/procs"
)

func TestStartRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := procs.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want loopback", r.Addr)
	}
	if _, err := r.Do(ctx, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Do(ctx, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}
	for _, tc := range []struct{ key, want string }{
		{"save", ""},
		{"appendonly", "no"},
		{"bind", "127.0.0.1"},
	} {
		got, err := r.Do(ctx, "CONFIG", "GET", tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.key+"\n"+tc.want {
			t.Errorf("CONFIG GET %s = %q, want %q", tc.key, got, tc.want)
		}
	}
	// No password on the private port: the front is what authenticates.
	if got, err := r.Do(ctx, "ACL", "WHOAMI"); err != nil || got != "default" {
		t.Fatalf("ACL WHOAMI = %q, %v", got, err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Do(ctx, "PING"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Fatalf("Stop left %s behind", r.Dir)
	}
}

func TestStartRedisClusterAnnouncesFrontPorts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Ports that nothing listens on stand for the fronts.
	var announce []int
	for i := 0; i < 3; i++ {
		p, err := procs.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		announce = append(announce, p)
	}
	rc, err := procs.StartRedisCluster(ctx, announce)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Stop() })
	if len(rc.Nodes) != 3 {
		t.Fatalf("%d nodes", len(rc.Nodes))
	}
	slots, err := rc.Nodes[0].Do(ctx, "CLUSTER", "SLOTS")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range announce {
		if !strings.Contains(slots, "127.0.0.1\n"+strconv.Itoa(p)) {
			t.Errorf("CLUSTER SLOTS does not name front port %d of node %d:\n%s", p, i, slots)
		}
		if strings.Contains(slots, "\n"+strconv.Itoa(rc.Nodes[i].Port)+"\n") {
			t.Errorf("CLUSTER SLOTS leaks the private port of node %d", i)
		}
	}
	// A key owned by another node is redirected to that node's front.
	moved := 0
	for i := 0; i < 20 && moved == 0; i++ {
		_, err := rc.Nodes[0].Do(ctx, "SET", "key"+strconv.Itoa(i), "v")
		if err == nil {
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "MOVED ") {
			t.Fatalf("SET: %v", err)
		}
		ok := false
		for _, p := range announce[1:] {
			if strings.HasSuffix(msg, "127.0.0.1:"+strconv.Itoa(p)) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("MOVED does not point at a front: %s", msg)
		}
		moved++
	}
	if moved == 0 {
		t.Fatal("no key was redirected")
	}
}

func TestRedisBinMissingNamesPackage(t *testing.T) {
	_, err := procs.LookBin("redis-server-irsakit-missing", "redis-server")
	if err == nil || !strings.Contains(err.Error(), "Debian package redis-server") {
		t.Fatalf("err = %v, want one naming the Debian package", err)
	}
}
