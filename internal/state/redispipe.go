package state

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeline merges the Redis commands of concurrent operations into one
// round trip. A round trip's cost is mostly the client's and the server's
// system calls and wake-ups, not the commands: sessions that ask the store
// at the same moment (the MAIL and RCPT of busy sessions) share one write,
// one read and one wake of Redis. Nothing waits for company: an operation
// that finds no round trip in flight is sent at once, by its own goroutine;
// the ones that arrive while a round trip is in flight queue and go
// together in the next, which a drainer goroutine sends as soon as the
// first returns. So an idle store costs what a plain client costs, and a
// busy one at most one round trip's wait more per operation, in exchange
// for fewer round trips in all (counted by the Redis client's pipeline
// hook: one per batch).
type pipeline struct {
	client  *redis.Client
	timeout time.Duration

	mu    sync.Mutex
	queue []*pipedOp
	busy  bool // a round trip is in flight (its sender drains the queue after it)
}

// pipedOp is one operation's command in a batch.
type pipedOp struct {
	// add queues the command on a pipeline; alone runs it on its own: for
	// a batch of one, and again for a script Redis did not have in a batch
	// (NOSCRIPT: a restarted Redis), which Script.Run then sends with EVAL.
	add   func(ctx context.Context, p redis.Pipeliner) redis.Cmder
	alone func(ctx context.Context, c *redis.Client) redis.Cmder
	cmd   redis.Cmder
	done  chan struct{}
}

// command is a pipedOp for a plain command: cmd builds it on c, a
// pipeline or the client.
func command(cmd func(ctx context.Context, c redis.Cmdable) redis.Cmder) *pipedOp {
	return &pipedOp{
		add:   func(ctx context.Context, p redis.Pipeliner) redis.Cmder { return cmd(ctx, p) },
		alone: func(ctx context.Context, c *redis.Client) redis.Cmder { return cmd(ctx, c) },
	}
}

// script is a pipedOp running s on keys and args.
func script(s *redis.Script, keys []string, args ...any) *pipedOp {
	return &pipedOp{
		add: func(ctx context.Context, p redis.Pipeliner) redis.Cmder { return s.EvalSha(ctx, p, keys, args...) },
		alone: func(ctx context.Context, c *redis.Client) redis.Cmder {
			return s.Run(ctx, c, keys, args...)
		},
	}
}

// do sends op, alone or in a batch, and waits for its answer or for ctx.
// The batch itself is bounded by the store's timeout, not by ctx, so that
// one session that gives up does not fail the others' operations.
func (p *pipeline) do(ctx context.Context, op *pipedOp) (redis.Cmder, error) {
	p.mu.Lock()
	if !p.busy {
		p.busy = true
		p.mu.Unlock()
		p.send([]*pipedOp{op})
		p.handOff()
		return op.cmd, op.cmd.Err()
	}
	op.done = make(chan struct{})
	p.queue = append(p.queue, op)
	p.mu.Unlock()
	select {
	case <-op.done:
		return op.cmd, op.cmd.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handOff is called by the sender of a round trip when it returns: what
// queued meanwhile goes next, sent by a drainer so that the sender's
// session goes on at once.
func (p *pipeline) handOff() {
	p.mu.Lock()
	if len(p.queue) == 0 {
		p.busy = false
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	go p.drain()
}

// drain sends the queue in batches until it is empty.
func (p *pipeline) drain() {
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		if len(batch) == 0 {
			p.busy = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.send(batch)
		for _, op := range batch {
			close(op.done)
		}
	}
}

// send runs batch in one round trip and leaves each op's answer in its cmd.
func (p *pipeline) send(batch []*pipedOp) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if len(batch) == 1 {
		// A batch of one is a plain command: no pipeline to build, and
		// Script.Run sends a script Redis lacks again at once.
		batch[0].cmd = batch[0].alone(ctx, p.client)
		return
	}
	pipe := p.client.Pipeline()
	for _, op := range batch {
		op.cmd = op.add(ctx, pipe)
	}
	// Exec's error is the first command's error, also left in that
	// command; a failed round trip fails every command the same way.
	_, _ = pipe.Exec(ctx)
	for _, op := range batch {
		if err := op.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			op.cmd = op.alone(ctx, p.client)
		}
	}
}
