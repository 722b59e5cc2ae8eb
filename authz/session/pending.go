package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// A refresh that succeeded at the IdP has spent the old refresh token
// (ZITADEL rotates them): if the store can't take the refreshed session,
// dropping it would lose the session (the next refresh would spend the
// dead token). So the Jar keeps it (Pend), serves it to this replica's
// Checks, and writes it as soon as the store answers, only then releasing
// the cross-replica refresh lock: no other replica re-reads the old copy
// and spends the old token meanwhile (the lock outlives a Redis restart
// with append-only persistence, by its own expiry).

// Pending bounds: entries kept at once, and for how long at most (a store
// away longer than this loses the rotated tokens; the lock has expired by
// then anyway).
const (
	maxPending     = 10_000
	pendingTTL     = 2 * time.Minute
	pendingRetry   = 250 * time.Millisecond
	pendingTimeout = 2 * time.Second
)

type pendingWrite struct {
	ticket *sessionpb.Ticket  // its id and key
	sess   *sessionpb.Session // with TicketId
	unlock func()             // the refresh lock, released once stored (nil: none)
	until  time.Time
}

type pendingWrites struct {
	n        atomic.Int64 // entries: with none (the usual case) a Load takes no lock
	mu       sync.Mutex
	byID     map[string]*pendingWrite
	flushing bool
	stopped  bool               // StopPending ran: nothing is kept any more
	cancel   context.CancelFunc // ends the running flusher; nil when none ran yet
	done     chan struct{}      // closed when the running flusher has returned
}

// set and remove keep n in step with byID; p.mu held.
func (p *pendingWrites) set(id string, w *pendingWrite) {
	p.byID[id] = w
	p.n.Store(int64(len(p.byID)))
}

func (p *pendingWrites) remove(id string) {
	delete(p.byID, id)
	p.n.Store(int64(len(p.byID)))
}

// Pend keeps a refreshed session the store refused, serves it to this
// replica until it is stored, and stores it (then runs unlock) as soon as
// the store answers. It reports false when it can't keep it (no store,
// full): the caller releases the lock itself then.
func (j *Jar) Pend(ctx context.Context, s *sessionpb.Session, cookies Cookies, unlock func()) bool {
	if j.store == nil || s.GetTicketId() == "" {
		return false
	}
	value, ok := j.sessionValue(cookies)
	if !ok {
		return false
	}
	t, _, err := j.openTicket(value)
	if err != nil || t.GetId() != s.GetTicketId() {
		return false
	}
	p := &j.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	if p.byID == nil {
		p.byID = map[string]*pendingWrite{}
	}
	old, replaced := p.byID[s.GetTicketId()]
	if !replaced && len(p.byID) >= maxPending {
		return false
	}
	if replaced && old.unlock != nil {
		defer old.unlock()
	}
	p.set(s.GetTicketId(), &pendingWrite{ticket: t, sess: proto.CloneOf(s), unlock: unlock, until: j.now().Add(pendingTTL)})
	if !p.flushing {
		p.flushing = true
		// The writes outlive the Check that asked for them: its values
		// (trace), not its deadline. StopPending cancels them.
		base, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p.cancel, p.done = cancel, make(chan struct{})
		go j.flushPending(base, cancel, p.done)
	}
	return true
}

// StopPending ends the background writes of kept sessions and waits until
// the writer has returned or ctx ends; afterwards Pend keeps nothing (the
// process is shutting down). Sessions still kept are not written, and their
// refresh locks stay held: releasing a lock before its session is stored
// would let another replica re-read the old copy and spend the refresh
// token the IdP already rotated, so the locks expire by themselves instead.
func (j *Jar) StopPending(ctx context.Context) {
	p := &j.pending
	p.mu.Lock()
	p.stopped = true
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// pendingSession is the refreshed session kept for ticket id, if any.
func (j *Jar) pendingSession(id string) *sessionpb.Session {
	p := &j.pending
	if p.n.Load() == 0 {
		return nil // every Check in redis mode asks: no lock then
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.byID[id]; ok {
		return w.sess
	}
	return nil
}

// dropPending forgets ticket id's kept session (it was signed out or
// logged out) and releases its lock.
func (j *Jar) dropPending(id string) {
	p := &j.pending
	p.mu.Lock()
	w, ok := p.byID[id]
	if ok {
		p.remove(id)
	}
	p.mu.Unlock()
	if ok && w.unlock != nil {
		w.unlock()
	}
}

// PendingLen is how many refreshed sessions wait for the store.
func (j *Jar) PendingLen() int { return int(j.pending.n.Load()) }

// flushPending writes the kept sessions until none is left or base ends
// (StopPending), then closes done.
func (j *Jar) flushPending(base context.Context, cancel context.CancelFunc, done chan<- struct{}) {
	defer close(done)
	defer cancel()
	tick := time.NewTicker(pendingRetry)
	defer tick.Stop()
	for {
		select {
		case <-base.Done():
			return
		case <-tick.C:
		}
		p := &j.pending
		p.mu.Lock()
		batch := make([]*pendingWrite, 0, len(p.byID))
		for _, w := range p.byID {
			batch = append(batch, w)
		}
		if len(batch) == 0 {
			p.flushing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, w := range batch {
			if base.Err() != nil {
				return
			}
			j.flushOne(base, w)
		}
	}
}

func (j *Jar) flushOne(base context.Context, w *pendingWrite) {
	id := w.sess.GetTicketId()
	now := j.now()
	if now.After(w.until) {
		j.finishPending(id, w)
		return
	}
	ttl := time.Unix(w.sess.GetExpiresAt(), 0).Sub(now)
	if ttl <= 0 {
		j.finishPending(id, w)
		return
	}
	ctx, cancel := context.WithTimeout(base, pendingTimeout)
	defer cancel()
	stored, err := j.storeSession(ctx, w.ticket, w.sess, ttl, true)
	if errors.Is(err, ErrNoSession) {
		// Ended while it waited (a sign-out or back-channel logout on
		// another replica, acknowledged once the store was back): the
		// kept copy dies with it, it never brings the session back.
		j.finishPending(id, w)
		return
	}
	if err != nil {
		return // the store is still away: next round
	}
	j.rememberStored(stored, now)
	if !j.finishPending(id, w) {
		// Signed out while we wrote it: end it again.
		_ = j.store.Delete(ctx, id)
	}
}

// finishPending removes w if it is still ticket id's entry, releasing its
// lock; false when it had been removed (signed out) or replaced meanwhile.
func (j *Jar) finishPending(id string, w *pendingWrite) bool {
	p := &j.pending
	p.mu.Lock()
	current, ok := p.byID[id]
	if ok && current == w {
		p.remove(id)
	}
	p.mu.Unlock()
	if ok && current == w {
		if w.unlock != nil {
			w.unlock()
		}
		return true
	}
	return ok
}
