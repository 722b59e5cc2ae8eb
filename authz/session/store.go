package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/deadline"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// Store keeps sessions server-side (session_store_type = redis). It sees
// only encrypted blobs: the key is in the user's cookie (the Ticket).
type Store interface {
	// Load returns the blob of session id, ErrNoSession when there is none.
	Load(ctx context.Context, id string) ([]byte, error)
	// Save writes the blob with its lifetime, indexed by the IdP's session
	// id (sid) and subject for back-channel logout, and tells the other
	// replicas to drop their cached copy.
	Save(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error
	// Replace is Save for a session that exists: it writes nothing and
	// returns ErrNoSession when session id is gone (signed out, logged out
	// by back-channel, expired). A refresh or renewal that outlived the
	// session's end (a write kept through a store outage, a refresh racing
	// a sign-out on another replica) must never bring it back.
	Replace(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error
	// Delete ends session id everywhere.
	Delete(ctx context.Context, id string) error
}

// ErrStoreUnavailable wraps a failure of the session store (not a missing
// session): the caller answers 503 instead of asking for a new login.
var ErrStoreUnavailable = errors.New("session store unavailable")

// storeTimeout bounds one store call; deadline.Within also keeps it inside
// the caller's own deadline (Envoy's, for a Check) less a margin.
const storeTimeout = 2 * time.Second

// WithStore keeps sessions in st; l1 caches decoded sessions by ticket id
// for at most l1TTL (Invalidate drops an entry when another replica
// changes it).
func WithStore(st Store, l1 Cache, l1TTL time.Duration) JarOption {
	return func(j *Jar) { j.store, j.l1, j.l1TTL = st, l1, l1TTL }
}

// Invalidate drops session id from the L1 cache (another replica changed
// or ended it).
func (j *Jar) Invalidate(id string) {
	if j.l1 != nil {
		j.l1.Del(id)
	}
}

// LoadFresh is Load past the L1 cache, straight from the store (after the
// cross-replica refresh lock, to see another replica's refresh).
func (j *Jar) LoadFresh(ctx context.Context, cookies Cookies) (*sessionpb.Session, error) {
	value, ok := j.sessionValue(cookies)
	if !ok || j.store == nil {
		return nil, ErrNoSession
	}
	e, _, err := j.loadTicket(ctx, value, false)
	if err != nil {
		return nil, err
	}
	return e.Session, nil
}

func (j *Jar) openTicket(value string) (*sessionpb.Ticket, int, error) {
	t := &sessionpb.Ticket{}
	keyIndex, err := j.codec.Load().OpenKey(j.opts.Name, PurposeTicket, value, t)
	if err != nil {
		return nil, 0, err
	}
	if t.GetExpiresAt() <= j.now().Unix() || len(t.GetKey()) != 32 || len(t.GetId()) != 32 {
		return nil, 0, ErrNoSession
	}
	return t, keyIndex, nil
}

func (j *Jar) loadTicket(ctx context.Context, value string, useL1 bool) (*Entry, bool, error) {
	t, keyIndex, err := j.openTicket(value)
	if err != nil {
		return nil, false, err
	}
	stale := keyIndex > 0
	now := j.now()
	// A refreshed session the store hasn't taken yet (Pend) is the current
	// one, for the L1 and for the lock holder's re-read alike.
	if s := j.pendingSession(t.GetId()); s != nil {
		if !j.live(s, now) {
			return nil, false, ErrNoSession
		}
		return NewEntry(s), stale, nil
	}
	if useL1 && j.l1 != nil {
		if e := lookup(j.l1, t.GetId(), j.app); e != nil {
			if !j.live(e.Session, now) {
				return nil, false, ErrNoSession
			}
			return e, stale, nil
		}
	}
	ctx, cancel := deadline.Within(ctx, storeTimeout)
	defer cancel()
	blob, err := j.store.Load(ctx, t.GetId())
	if errors.Is(err, ErrNoSession) {
		return nil, false, ErrNoSession
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	codec, err := NewCodec(t.GetKey())
	if err != nil {
		return nil, false, err
	}
	s := &sessionpb.Session{}
	if err := codec.Open(t.GetId(), PurposeStored, string(blob), s); err != nil {
		return nil, false, ErrNoSession
	}
	if !j.live(s, now) {
		return nil, false, ErrNoSession
	}
	s.TicketId = t.GetId()
	return j.rememberStored(s, now), stale, nil
}

func (j *Jar) rememberStored(s *sessionpb.Session, now time.Time) *Entry {
	e := &Entry{key: s.GetTicketId(), Session: s, app: j.app}
	ttl := min(j.l1TTL, time.Unix(s.GetExpiresAt(), 0).Sub(now))
	if j.l1 != nil && ttl > 0 {
		j.l1.SetWithTTL(e.key, e, int64(proto.Size(s)+len(e.key)+entryOverhead), ttl)
	}
	return e
}

// saveTicket stores s and returns its cookie. A session read from the
// store keeps its ticket (the cookie doesn't change on a refresh); a new
// one (a login) gets a new id and key.
func (j *Jar) saveTicket(ctx context.Context, s *sessionpb.Session, host string, cookies Cookies) ([]string, error) {
	var t *sessionpb.Ticket
	if s.GetTicketId() != "" {
		if value, ok := j.sessionValue(cookies); ok {
			if old, _, err := j.openTicket(value); err == nil && old.GetId() == s.GetTicketId() {
				t = old
			}
		}
	}
	if t == nil && s.GetTicketId() != "" {
		// A stored session whose ticket the cookies no longer carry: made
		// anew it could bring back a session signed out meanwhile.
		return nil, ErrNoSession
	}
	if t == nil {
		id, key := make([]byte, 16), make([]byte, 32)
		rand.Read(id)
		rand.Read(key)
		t = &sessionpb.Ticket{Id: hex.EncodeToString(id), Key: key, ExpiresAt: s.GetExpiresAt()}
	}
	now := j.now()
	ttl := time.Unix(s.GetExpiresAt(), 0).Sub(now)
	if ttl <= 0 {
		return j.End(ctx, host, cookies), nil
	}
	ctx, cancel := deadline.Within(ctx, storeTimeout)
	defer cancel()
	// A session that kept its ticket exists already (a refresh, a
	// renewal): it is only ever replaced, never made anew.
	replace := s.GetTicketId() != "" && t.GetId() == s.GetTicketId()
	stored, err := j.storeSession(ctx, t, s, ttl, replace)
	if err != nil {
		return nil, err
	}
	j.rememberStored(stored, now)
	value, err := j.codec.Load().Seal(j.opts.Name, PurposeTicket, t)
	if err != nil {
		return nil, err
	}
	return j.setCookies(value, t.GetExpiresAt(), host, cookies)
}

// storeSession seals s with the ticket's key and writes it for ttl (with
// replace, only while it exists: ErrNoSession when it ended meanwhile); it
// returns the stored copy (with its TicketId).
func (j *Jar) storeSession(ctx context.Context, t *sessionpb.Ticket, s *sessionpb.Session, ttl time.Duration, replace bool) (*sessionpb.Session, error) {
	stored := proto.CloneOf(s)
	stored.TicketId = ""
	codec, err := NewCodec(t.GetKey())
	if err != nil {
		return nil, err
	}
	blob, err := codec.Seal(t.GetId(), PurposeStored, stored)
	if err != nil {
		return nil, err
	}
	write := j.store.Save
	if replace {
		write = j.store.Replace
	}
	if err := write(ctx, t.GetId(), []byte(blob), ttl, s.GetSessionId(), s.GetSubject()); err != nil {
		if errors.Is(err, ErrNoSession) {
			j.Invalidate(t.GetId())
			return nil, ErrNoSession
		}
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	stored.TicketId = t.GetId()
	return stored, nil
}

// deleteTicket ends the stored session the cookies point to (sign-out,
// a rejected refresh); an error when the store couldn't.
func (j *Jar) deleteTicket(ctx context.Context, cookies Cookies) error {
	value, ok := j.sessionValue(cookies)
	if !ok {
		return nil
	}
	t, _, err := j.openTicket(value)
	if err != nil {
		return nil
	}
	j.Invalidate(t.GetId())
	j.dropPending(t.GetId())
	ctx, cancel := deadline.Within(ctx, storeTimeout)
	defer cancel()
	if err := j.store.Delete(ctx, t.GetId()); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return nil
}

// EndStored ends the stored session the cookies point to (redis mode; nil
// otherwise), reporting whether the store did: a sign-out must not look
// done when it isn't.
func (j *Jar) EndStored(ctx context.Context, cookies Cookies) error {
	if j.store == nil {
		return nil
	}
	return j.deleteTicket(ctx, cookies)
}
