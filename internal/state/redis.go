package state

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the store of a fleet: every instance talks to one Redis, so a
// client's limits and greylist hold whichever instance it reaches. Each
// operation is one round trip and atomic: the ones that read and write are
// Lua scripts (EVALSHA, falling back to EVAL when the server does not have
// them yet), and the times they compare come from the server's TIME, so
// every instance shares one clock. Times are kept as microseconds since the
// Unix epoch (Lua's numbers are doubles: exact to 2^53, which nanoseconds
// since 1970 exceed). Keys are Prefix + the store's key, so that one Redis
// can serve several deployments. Buckets of one chain are touched by one
// script: a Redis Cluster would need them in one hash slot, which is not
// supported; use one Redis (with a replica for failover).
type Redis struct {
	client *redis.Client
	prefix string
	pipe   *pipeline // the operations of the common path, batched
}

// RedisOptions configure a Redis store.
type RedisOptions struct {
	// Address is host:port.
	Address string
	// Password authenticates, when not empty.
	Password string
	// TLS, when not nil, is the client's TLS configuration.
	TLS *tls.Config
	// Prefix is put before every key ["mxguard:"].
	Prefix string
	// Timeout bounds dialing and each reply [500ms]: a slow Redis must not
	// hold mail for long (the fallback answers instead).
	Timeout time.Duration
}

var quietRedis sync.Once

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// DefaultRedisPrefix is the keys' prefix when none is given.
const DefaultRedisPrefix = "mxguard:"

// DefaultRedisTimeout bounds each Redis operation when no timeout is given.
const DefaultRedisTimeout = 500 * time.Millisecond

// NewRedis returns a store on the Redis at o.Address. It does not connect
// until used; see Ping.
func NewRedis(o RedisOptions) *Redis {
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	// The client's own log would print a line per failed dial; the
	// fallback logs an outage once.
	quietRedis.Do(func() { redis.SetLogger(quietLogger{}) })
	c := redis.NewClient(&redis.Options{
		Addr:                  o.Address,
		Password:              o.Password,
		TLSConfig:             o.TLS,
		DialTimeout:           o.Timeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		ContextTimeoutEnabled: true,
		// One retry, for a pooled connection that Redis closed (a restart);
		// more would multiply the wait on a Redis that is down.
		MaxRetries:         1,
		DialerRetries:      1,
		DialerRetryTimeout: 10 * time.Millisecond,
		MinRetryBackoff:    time.Millisecond,
		MaxRetryBackoff:    10 * time.Millisecond,
		DisableIdentity:    true,
		Protocol:           2,
	})
	return &Redis{client: c, prefix: o.Prefix, pipe: &pipeline{client: c, timeout: o.Timeout}}
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("state: redis: %w", err)
	}
	return nil
}

func (r *Redis) key(k string) string { return r.prefix + k }

func (r *Redis) wrap(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("state: redis %s: %w", op, err)
}

// luaNow is the server's time in microseconds.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// allowScript is Limit's GCRA over a chain and its reservation: KEYS are
// the buckets, the chain's first (ARGV[1] of them), then the
// reservation's; ARGV[2..] their intervals and windows in pairs, in
// microseconds. It returns the 0-based index of the refusing bucket of
// the chain, or -1 when the chain admits the event, -2 when the
// reservation was charged as well. The arithmetic is Limit's (Conforms,
// Admit, Refuse, Expiry), in microseconds.
var allowScript = redis.NewScript(luaNow + `
local n = tonumber(ARGV[1])
local tats = {}
local function conforms(from, to)
  for i = from, to do
    local interval = tonumber(ARGV[2*i])
    local window = tonumber(ARGV[2*i+1])
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
    tats[i] = tat
    if math.max(tat, now) - now > window - interval then return i end
  end
  return 0
end
local function admit(from, to)
  for i = from, to do
    local t = math.max(tats[i], now) + tonumber(ARGV[2*i])
    redis.call('SET', KEYS[i], string.format('%.0f', t), 'PX', string.format('%.0f', math.floor((t - now + 1000000) / 1000)))
  end
end
local refused = conforms(1, n)
if refused > 0 then
  local i1 = tonumber(ARGV[2])
  local w1 = tonumber(ARGV[3])
  local t1 = math.min(math.max(tats[1], now) + i1, now + (w1 - i1) + w1)
  redis.call('SET', KEYS[1], string.format('%.0f', t1), 'PX', string.format('%.0f', math.floor((math.max(t1 - now, 0) + 1000000) / 1000)))
  return refused - 1
end
admit(1, n)
if #KEYS == n or conforms(n + 1, #KEYS) > 0 then return -1 end
admit(n + 1, #KEYS)
return -2
`)

func micros(d time.Duration) int64 { return d.Microseconds() }

// Allow implements Store.
func (r *Redis) Allow(ctx context.Context, chain, reserve []Limit) (int, bool, error) {
	if len(chain) == 0 {
		return -1, false, nil
	}
	keys := make([]string, 0, len(chain)+len(reserve))
	args := make([]any, 1, 1+2*(len(chain)+len(reserve)))
	args[0] = len(chain)
	for _, l := range append(chain[:len(chain):len(chain)], reserve...) {
		keys = append(keys, r.key(l.Key))
		args = append(args, micros(l.Interval), micros(l.Window))
	}
	cmd, err := r.pipe.do(ctx, script(allowScript, keys, args...))
	if err != nil {
		return 0, false, r.wrap("allow", err)
	}
	n, err := cmd.(*redis.Cmd).Int()
	if err != nil {
		return 0, false, r.wrap("allow", err)
	}
	if n == -2 {
		return -1, true, nil
	}
	return n, false, nil
}

// countScript adds ARGV[1] to KEYS[1], starting its window (ARGV[2],
// milliseconds) when it is new; 0 reads it.
var countScript = redis.NewScript(`
local n = tonumber(ARGV[1])
if n == 0 then return tonumber(redis.call('GET', KEYS[1]) or '0') or 0 end
local v = redis.call('INCRBY', KEYS[1], n)
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`)

// Count implements Store.
func (r *Redis) Count(ctx context.Context, key string, n int64, window time.Duration) (int64, error) {
	cmd, err := r.pipe.do(ctx, script(countScript, []string{r.key(key)}, n, max(window.Milliseconds(), 1)))
	if err != nil {
		return 0, r.wrap("count", err)
	}
	v, err := cmd.(*redis.Cmd).Int64()
	if err != nil {
		return 0, r.wrap("count", err)
	}
	return v, nil
}

// greylistScript reads the network's mark (KEYS[1]: when it passed) and
// the triplet's first attempt (KEYS[2]): {passed, seen, first, now,
// passedAt}, times in microseconds.
var greylistScript = redis.NewScript(luaNow + `
local at = redis.call('GET', KEYS[1])
local passed = 0
if at then passed = 1 else at = '0' end
local first = redis.call('GET', KEYS[2])
if first then return {passed, 1, first, string.format('%.0f', now), at} end
return {passed, 0, '0', string.format('%.0f', now), at}
`)

// Greylist implements Store.
func (r *Redis) Greylist(ctx context.Context, t Triplet) (Grey, error) {
	cmd, err := r.pipe.do(ctx, script(greylistScript, []string{r.key(t.NetworkKey()), r.key(t.Key())}))
	if err != nil {
		return Grey{}, r.wrap("greylist", err)
	}
	res, err := cmd.(*redis.Cmd).Slice()
	if err != nil {
		return Grey{}, r.wrap("greylist", err)
	}
	if len(res) != 5 {
		return Grey{}, r.wrap("greylist", fmt.Errorf("unexpected reply %v", res))
	}
	passed, _ := res[0].(int64)
	seen, _ := res[1].(int64)
	first, err1 := strconv.ParseInt(fmt.Sprint(res[2]), 10, 64)
	now, err2 := strconv.ParseInt(fmt.Sprint(res[3]), 10, 64)
	at, err3 := strconv.ParseInt(fmt.Sprint(res[4]), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Grey{}, r.wrap("greylist", err)
	}
	m := Marks{Passed: passed == 1, PassedAt: time.UnixMicro(at), Seen: seen == 1, First: time.UnixMicro(first)}
	return Decide(t, m, time.UnixMicro(now)), nil
}

// recordScript records a greylist answer: ARGV[1] "new" sets the
// triplet's first attempt (KEYS[2]) unless another instance did first,
// living ARGV[2] ms; "passed" marks the network (KEYS[1]) for ARGV[2] ms
// and forgets the triplet; "known" marks the network again (a refresh).
var recordScript = redis.NewScript(luaNow + `
local v = string.format('%.0f', now)
if ARGV[1] == 'new' then
  redis.call('SET', KEYS[2], v, 'NX', 'PX', ARGV[2])
elseif ARGV[1] == 'known' then
  redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
end
return 1
`)

// RecordGreylist implements Store.
func (r *Redis) RecordGreylist(ctx context.Context, t Triplet, g Grey) error {
	var mode string
	var ttl time.Duration
	switch g.State {
	case GreyNew:
		mode, ttl = "new", t.Delay+t.RetryWindow
	case GreyPassed:
		mode, ttl = "passed", t.PassLifetime
	case GreyKnown:
		mode, ttl = "known", t.PassLifetime
	default:
		return nil
	}
	keys := []string{r.key(t.NetworkKey()), r.key(t.Key())}
	if _, err := r.pipe.do(ctx, script(recordScript, keys, mode, max(ttl.Milliseconds(), 1))); err != nil {
		return r.wrap("record greylist", err)
	}
	return nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	k := r.key(key)
	cmd, err := r.pipe.do(ctx, command(func(ctx context.Context, c redis.Cmdable) redis.Cmder { return c.Get(ctx, k) }))
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.wrap("get", err)
	}
	b, err := cmd.(*redis.StringCmd).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.wrap("get", err)
	}
	return b, true, nil
}

// Put implements Store.
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	k, ttl := r.key(key), max(ttl, time.Millisecond)
	if _, err := r.pipe.do(ctx, command(func(ctx context.Context, c redis.Cmdable) redis.Cmder { return c.Set(ctx, k, value, ttl) })); err != nil {
		return r.wrap("put", err)
	}
	return nil
}

// globEscape quotes the characters SCAN's MATCH pattern treats as special.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\^`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Entries implements Store: SCAN for the keys, then one pipelined round
// trip of GET and PTTL per batch.
func (r *Redis) Entries(ctx context.Context, prefix string, fn func(Entry) bool) error {
	var cursor uint64
	match := globEscape(r.key(prefix)) + "*"
	for {
		keys, next, err := r.client.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return r.wrap("scan", err)
		}
		if len(keys) > 0 {
			pipe := r.client.Pipeline()
			gets := make([]*redis.StringCmd, len(keys))
			ttls := make([]*redis.DurationCmd, len(keys))
			for i, k := range keys {
				gets[i] = pipe.Get(ctx, k)
				ttls[i] = pipe.PTTL(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return r.wrap("entries", err)
			}
			for i, k := range keys {
				v, err := gets[i].Result()
				if err != nil { // gone since the scan
					continue
				}
				e := Entry{Key: strings.TrimPrefix(k, r.prefix), Value: describeRedis(strings.TrimPrefix(k, r.prefix), v)}
				if d := ttls[i].Val(); d > 0 {
					e.TTL = d
				}
				if !fn(e) {
					return nil
				}
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// describeRedis is describe for a value as Redis keeps it: times in
// microseconds.
func describeRedis(key, v string) string {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return v
	}
	switch {
	case strings.HasPrefix(key, "grey:"):
		return "since " + time.UnixMicro(n).UTC().Format(time.RFC3339)
	case strings.HasPrefix(key, "rate:"):
		return "tat " + time.UnixMicro(n).UTC().Format(time.RFC3339Nano)
	}
	return v
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) (bool, error) {
	n, err := r.client.Del(ctx, r.key(key)).Result()
	if err != nil {
		return false, r.wrap("delete", err)
	}
	return n > 0, nil
}

// Close implements Store.
func (r *Redis) Close() error { return r.client.Close() }
