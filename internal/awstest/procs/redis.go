package procs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RedisOptions configure one redis-server.
type RedisOptions struct {
	// Cluster starts the server with cluster-enabled yes. It then serves no
	// slots until [StartRedisCluster] (or the caller) assigns them.
	Cluster bool
	// AnnouncePort is the port a cluster node reports in CLUSTER SLOTS,
	// CLUSTER SHARDS, CLUSTER NODES and MOVED/ASK redirections
	// (cluster-announce-port and cluster-announce-tls-port): the port of the
	// front that relays to this node. Default: the node's own port.
	AnnouncePort int
	// Args are extra redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
}

// Redis is a running redis-server on 127.0.0.1 without persistence and
// without a password on its private port.
type Redis struct {
	// Addr is 127.0.0.1:Port, the server's own (private) address.
	Addr string
	Port int
	// BusPort is the cluster bus port (cluster mode only).
	BusPort      int
	AnnouncePort int
	Dir          string
	cmd          *exec.Cmd
	done         chan struct{}
	waitErr      error
}

// RedisBin finds redis-server, or explains how to install it.
func RedisBin() (string, error) {
	return LookBin("redis-server", "redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")
}

// StartRedis starts a redis-server in a fresh temporary directory on a random
// 127.0.0.1 port with persistence off (--save "" --appendonly no). Stop it
// with [Redis.Stop].
func StartRedis(ctx context.Context, optFns ...func(*RedisOptions)) (*Redis, error) {
	var o RedisOptions
	for _, fn := range optFns {
		fn(&o)
	}
	bin, err := RedisBin()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRedisOnce(ctx, bin, o)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startRedisOnce(ctx context.Context, bin string, o RedisOptions) (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("procs: redis port: %w", err)
	}
	dir, err := os.MkdirTemp("", "irsakit-redis-")
	if err != nil {
		return nil, fmt.Errorf("procs: redis dir: %w", err)
	}
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, AnnouncePort: port, done: make(chan struct{})}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	if o.Cluster {
		bus, err := FreePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("procs: redis bus port: %w", err)
		}
		r.BusPort = bus
		if o.AnnouncePort != 0 {
			r.AnnouncePort = o.AnnouncePort
		}
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-announce-ip", "127.0.0.1",
			"--cluster-announce-port", strconv.Itoa(r.AnnouncePort),
			"--cluster-announce-tls-port", strconv.Itoa(r.AnnouncePort),
			"--cluster-announce-bus-port", strconv.Itoa(bus),
			"--cluster-node-timeout", "5000",
			"--cluster-require-full-coverage", "yes",
		)
	}
	args = append(args, o.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("procs: starting redis-server: %w", err)
	}
	r.cmd = cmd
	go func() {
		r.waitErr = cmd.Wait()
		close(r.done)
	}()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.waitReady(wctx); err != nil {
		log := r.logTail()
		r.Stop()
		return nil, fmt.Errorf("procs: redis-server on %s did not start: %w\n%s", r.Addr, err, log)
	}
	return r, nil
}

func (r *Redis) waitReady(ctx context.Context) error {
	for {
		select {
		case <-r.done:
			return fmt.Errorf("exited: %v", r.waitErr)
		default:
		}
		if reply, err := r.Do(ctx, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return fmt.Errorf("exited: %v", r.waitErr)
		case <-time.After(30 * time.Millisecond):
		}
	}
}

func (r *Redis) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop terminates the server and removes its directory. It is safe to call
// more than once.
func (r *Redis) Stop() error {
	if r == nil || r.cmd == nil {
		return nil
	}
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	return os.RemoveAll(r.Dir)
}

// Do sends one command on a fresh connection to the server's private port
// and returns the reply rendered as text: simple strings, integers and bulk
// strings as they are, arrays as their elements joined by newlines. An error
// reply is returned as an error.
func (r *Redis) Do(ctx context.Context, args ...string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("procs: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, max(n, 0))
		for i := 0; i < n; i++ {
			s, err := readReply(rd)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("procs: unexpected reply %q", line)
}

func ioReadFull(rd *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := rd.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// RedisCluster is a set of redis-server nodes in cluster mode, each a master
// serving an equal share of the 16384 slots, without replicas.
type RedisCluster struct {
	Nodes []*Redis
}

// StartRedisCluster starts one cluster-mode master per entry of
// announcePorts; node i announces announcePorts[i] (its front's port), so
// CLUSTER SLOTS and MOVED point clients at the fronts. Slots are split
// evenly (CLUSTER ADDSLOTSRANGE), the nodes meet, and StartRedisCluster
// returns once every node reports cluster_state:ok.
func StartRedisCluster(ctx context.Context, announcePorts []int) (*RedisCluster, error) {
	if len(announcePorts) == 0 {
		return nil, errors.New("procs: a redis cluster needs at least one node")
	}
	rc := &RedisCluster{}
	fail := func(err error) (*RedisCluster, error) {
		rc.Stop()
		return nil, err
	}
	for _, ap := range announcePorts {
		r, err := StartRedis(ctx, func(o *RedisOptions) { o.Cluster = true; o.AnnouncePort = ap })
		if err != nil {
			return fail(err)
		}
		rc.Nodes = append(rc.Nodes, r)
	}
	const slots = 16384
	n := len(rc.Nodes)
	for i, r := range rc.Nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := r.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fail(fmt.Errorf("procs: CLUSTER ADDSLOTSRANGE on %s: %w", r.Addr, err))
		}
		if _, err := r.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return fail(fmt.Errorf("procs: CLUSTER SET-CONFIG-EPOCH on %s: %w", r.Addr, err))
		}
	}
	for _, r := range rc.Nodes[1:] {
		if _, err := rc.Nodes[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(r.Port), strconv.Itoa(r.BusPort)); err != nil {
			return fail(fmt.Errorf("procs: CLUSTER MEET %s: %w", r.Addr, err))
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, r := range rc.Nodes {
		if err := r.waitClusterOK(wctx, n); err != nil {
			return fail(err)
		}
	}
	return rc, nil
}

func (r *Redis) waitClusterOK(ctx context.Context, nodes int) error {
	want := []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:" + strconv.Itoa(nodes)}
	var info string
	for {
		var err error
		info, err = r.Do(ctx, "CLUSTER", "INFO")
		if err == nil {
			ok := true
			for _, w := range want {
				if !strings.Contains(info, w+"\r\n") && !strings.HasSuffix(strings.TrimSpace(info), w) {
					ok = false
				}
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("procs: redis cluster node %s did not converge: %w\n%s", r.Addr, ctx.Err(), info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops every node.
func (rc *RedisCluster) Stop() error {
	var errs []error
	for _, r := range rc.Nodes {
		if err := r.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
