//! When an instance may serve from its in-process read view, and how long a
//! writer must wait before its write may answer, so that no instance serves
//! a page older than a write that has answered.
//!
//! Instances share one Redis channel. Each publishes a ping every
//! [`PING_EVERY`]; receiving its own ping back proves it has processed every
//! message published before that ping, so it holds a lease until the ping's
//! send time plus [`LEASE`] and serves from its view only while it does.
//! A writer publishes an invalidation and waits until each peer has
//! acknowledged it or can no longer hold a lease from before it: a peer's
//! lease rests on a ping this writer received too, so it ends at the latest
//! [`LEASE`] after the writer last heard from that peer. A writer that is
//! not subscribed, or subscribed too recently to know every peer, waits a
//! whole lease. Only each instance's own monotonic clock is used.
//!
//! No I/O: the caller feeds events and the time in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::cache_scope::ProductsMoved;

/// How long a ping that came back lets an instance serve from its view.
/// Long against [`PING_EVERY`] so that a busy machine delaying a few pings
/// does not send every read to the actors at once (measured: at 500 ms,
/// saturated runs lost the lease now and then); it only bounds how long a
/// write waits for a peer that has stopped answering.
pub const LEASE: Duration = Duration::from_millis(1_500);
/// How often each instance pings itself through the channel.
pub const PING_EVERY: Duration = Duration::from_millis(100);

/// One message on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `from` wrote; every view must drop what it holds, or only what a
    /// [`Signal::Scope`] of the same `from` and `nonce`, published just
    /// before it, names.
    Invalidate { from: String, nonce: u64 },
    /// The products `from`'s invalidation `nonce` moved. Published
    /// before that invalidation, on the same connection (so in order): an
    /// instance that does not know this message drops everything on the
    /// invalidation, which is never stale, so old and new instances can
    /// share a channel during a rolling upgrade.
    Scope {
        from: String,
        nonce: u64,
        moved: ProductsMoved,
    },
    /// `from` processed `to`'s invalidation `nonce`.
    Ack {
        to: String,
        nonce: u64,
        from: String,
    },
    /// `from`'s ping number `seq`.
    Ping { from: String, seq: u64 },
}

impl Signal {
    /// The wire form: space-separated words.
    pub fn encode(&self) -> String {
        match self {
            Signal::Invalidate { from, nonce } => format!("inv {from} {nonce}"),
            Signal::Scope { from, nonce, moved } => {
                format!("scope {from} {nonce} {}", moved.encode())
            }
            Signal::Ack { to, nonce, from } => format!("ack {to} {nonce} {from}"),
            Signal::Ping { from, seq } => format!("ping {from} {seq}"),
        }
    }

    /// Parses [`Signal::encode`]'s form; anything else is `None`.
    pub fn decode(raw: &str) -> Option<Self> {
        let words: Vec<&str> = raw.split(' ').collect();
        match words.as_slice() {
            ["inv", from, nonce] => Some(Signal::Invalidate {
                from: (*from).to_owned(),
                nonce: nonce.parse().ok()?,
            }),
            ["scope", from, nonce, flags, ids] => Some(Signal::Scope {
                from: (*from).to_owned(),
                nonce: nonce.parse().ok()?,
                moved: ProductsMoved::decode(&format!("{flags} {ids}"))?,
            }),
            ["ack", to, nonce, from] => Some(Signal::Ack {
                to: (*to).to_owned(),
                nonce: nonce.parse().ok()?,
                from: (*from).to_owned(),
            }),
            ["ping", from, seq] => Some(Signal::Ping {
                from: (*from).to_owned(),
                seq: seq.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// What a writer must still wait for after publishing an invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: every peer has acknowledged or cannot hold a lease any more.
    Done,
    /// Until an acknowledgement arrives or this instant, whichever is first.
    Until(Instant),
}

/// One instance's view of the protocol.
#[derive(Debug)]
pub struct Coherence {
    me: String,
    subscribed_at: Option<Instant>,
    lease_until: Option<Instant>,
    /// Own pings sent and not yet seen back: (seq, sent at).
    pings: VecDeque<(u64, Instant)>,
    /// When each peer was last heard from.
    peers: HashMap<String, Instant>,
    /// Own invalidations in flight: nonce → (published at, peers that
    /// acknowledged).
    pending: HashMap<u64, (Instant, HashSet<String>)>,
    /// Bumped whenever what the view holds may be stale.
    epoch: u64,
    /// Scopes received, waiting for their invalidation.
    scopes: VecDeque<(String, u64, ProductsMoved)>,
    /// The scope of the invalidation just received, for the view to apply.
    applying: Option<ProductsMoved>,
}

/// Scopes kept waiting for their invalidation; one whose invalidation was
/// lost is dropped once this many newer ones came.
const MAX_SCOPES: usize = 64;

impl Coherence {
    /// The state of instance `me`, not yet subscribed.
    pub fn new(me: impl Into<String>) -> Self {
        Self {
            me: me.into(),
            subscribed_at: None,
            lease_until: None,
            pings: VecDeque::new(),
            peers: HashMap::new(),
            pending: HashMap::new(),
            epoch: 0,
            scopes: VecDeque::new(),
            applying: None,
        }
    }

    /// After [`Coherence::received`] took a peer's invalidation: what it
    /// was scoped to, if it was (the epoch did not move; the view must drop
    /// what this touches), or `None` (the epoch moved).
    pub fn take_scope(&mut self) -> Option<ProductsMoved> {
        self.applying.take()
    }

    /// This instance's name on the channel.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The view's current epoch: entries of older epochs are never served.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Until when the view may be served, if at all.
    pub fn lease_until(&self) -> Option<Instant> {
        self.lease_until
    }

    /// The subscription is (re)established: anything held may have missed
    /// invalidations, and no lease holds until a ping comes back.
    pub fn subscribed(&mut self, now: Instant) {
        self.subscribed_at = Some(now);
        self.lost();
    }

    /// The subscription is gone: stop serving from the view.
    pub fn disconnected(&mut self) {
        self.subscribed_at = None;
        self.lost();
    }

    fn lost(&mut self) {
        self.lease_until = None;
        self.pings.clear();
        self.peers.clear();
        self.epoch += 1;
    }

    /// A write on this instance (or a message saying one happened
    /// elsewhere): what the view holds is stale.
    pub fn invalidate(&mut self) {
        self.epoch += 1;
    }

    /// This instance is about to publish ping `seq`.
    pub fn ping_sent(&mut self, seq: u64, now: Instant) {
        self.pings.push_back((seq, now));
        // Pings that never came back (a dropped message) are forgotten
        // once they could no longer extend the lease.
        while self
            .pings
            .front()
            .is_some_and(|(_, sent)| now.duration_since(*sent) > LEASE)
        {
            self.pings.pop_front();
        }
    }

    /// This instance is about to publish invalidation `nonce`.
    pub fn publishing(&mut self, nonce: u64, now: Instant) {
        self.pending.insert(nonce, (now, HashSet::new()));
    }

    /// The writer is done with `nonce`.
    pub fn forget(&mut self, nonce: u64) {
        self.pending.remove(&nonce);
    }

    /// Handles one message from the channel. Returns the acknowledgement to
    /// publish, if the message asks for one.
    pub fn received(&mut self, signal: Signal, now: Instant) -> Option<Signal> {
        match signal {
            Signal::Ping { from, seq } if from == self.me => {
                while let Some(&(s, sent)) = self.pings.front() {
                    if s > seq {
                        break;
                    }
                    self.pings.pop_front();
                    if s == seq {
                        let until = sent + LEASE;
                        self.lease_until = Some(self.lease_until.map_or(until, |u| u.max(until)));
                    }
                }
                None
            }
            Signal::Ping { from, .. } => {
                self.peers.insert(from, now);
                None
            }
            Signal::Invalidate { from, .. } if from == self.me => None,
            Signal::Scope { from, .. } if from == self.me => None,
            Signal::Scope { from, nonce, moved } => {
                if self.scopes.len() >= MAX_SCOPES {
                    self.scopes.pop_front();
                }
                self.scopes.push_back((from, nonce, moved));
                None
            }
            Signal::Invalidate { from, nonce } => {
                // Scoped: the epoch stays, and the view drops what the
                // scope touches (`take_scope`) before acknowledging.
                let at = self
                    .scopes
                    .iter()
                    .position(|(f, n, _)| *f == from && *n == nonce);
                match at.and_then(|i| self.scopes.remove(i)) {
                    Some((_, _, moved)) => self.applying = Some(moved),
                    None => self.epoch += 1,
                }
                self.peers.insert(from.clone(), now);
                Some(Signal::Ack {
                    to: from,
                    nonce,
                    from: self.me.clone(),
                })
            }
            Signal::Ack { to, nonce, from } => {
                if to == self.me {
                    if let Some((_, acked)) = self.pending.get_mut(&nonce) {
                        acked.insert(from.clone());
                    }
                }
                self.peers.insert(from, now);
                None
            }
        }
    }

    /// Whether a write now would wait only for known peers: subscribed for
    /// at least a lease (before that, a peer's lease may rest on a ping this
    /// instance never saw).
    pub fn knows_peers(&self, now: Instant) -> bool {
        self.subscribed_at
            .is_some_and(|at| now.duration_since(at) >= LEASE)
    }

    /// The epoch the view may be served at now, or `None` (no lease).
    pub fn serving(&self, now: Instant) -> Option<u64> {
        self.lease_until
            .filter(|until| now < *until)
            .map(|_| self.epoch)
    }

    /// What the writer of invalidation `nonce` must still wait for.
    pub fn wait(&self, nonce: u64, now: Instant) -> Wait {
        let Some((published, acked)) = self.pending.get(&nonce) else {
            return Wait::Done;
        };
        let whole = *published + LEASE;
        let knows_every_peer = self.knows_peers(*published);
        let until = if knows_every_peer {
            self.peers
                .iter()
                .filter(|(peer, _)| !acked.contains(*peer))
                .map(|(_, seen)| (*seen + LEASE).min(whole))
                .max()
        } else {
            Some(whole)
        };
        match until {
            Some(until) if now < until => Wait::Until(until),
            _ => Wait::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn leased(me: &str, t0: Instant) -> Coherence {
        let mut c = Coherence::new(me);
        c.subscribed(t0);
        c.ping_sent(1, t0);
        c.received(
            Signal::Ping {
                from: me.into(),
                seq: 1,
            },
            t0 + ms(1),
        );
        c
    }

    #[test]
    fn signals_round_trip_and_junk_is_refused() {
        for s in [
            Signal::Invalidate {
                from: "a".into(),
                nonce: 7,
            },
            Signal::Ack {
                to: "a".into(),
                nonce: 7,
                from: "b".into(),
            },
            Signal::Ping {
                from: "b".into(),
                seq: 3,
            },
        ] {
            assert_eq!(Signal::decode(&s.encode()), Some(s));
        }
        assert_eq!(Signal::decode("inv a x"), None);
        assert_eq!(Signal::decode("hello"), None);
    }

    #[test]
    fn the_view_is_served_only_under_a_lease_from_a_returned_ping() {
        let t0 = Instant::now();
        let mut c = Coherence::new("a");
        assert_eq!(c.serving(t0), None, "not subscribed");
        c.subscribed(t0);
        c.ping_sent(1, t0);
        assert_eq!(c.serving(t0), None, "ping not back yet");
        c.received(
            Signal::Ping {
                from: "a".into(),
                seq: 1,
            },
            t0 + ms(5),
        );
        let epoch = c.serving(t0 + ms(5)).expect("leased");
        // The lease counts from the send time, not the receipt.
        assert_eq!(c.serving(t0 + LEASE - ms(1)), Some(epoch));
        assert_eq!(c.serving(t0 + LEASE), None);
        c.disconnected();
        assert_eq!(c.serving(t0 + ms(10)), None);
    }

    #[test]
    fn an_invalidation_moves_the_epoch_and_asks_for_an_ack() {
        let t0 = Instant::now();
        let mut c = leased("b", t0);
        let before = c.serving(t0).expect("leased");
        let ack = c.received(
            Signal::Invalidate {
                from: "a".into(),
                nonce: 9,
            },
            t0,
        );
        assert_eq!(
            ack,
            Some(Signal::Ack {
                to: "a".into(),
                nonce: 9,
                from: "b".into()
            })
        );
        assert!(c.serving(t0).expect("leased") > before);
        assert_eq!(c.take_scope(), None, "a whole invalidation");
        // One that a scope came before is acknowledged too and leaves the
        // epoch: the view drops what the scope touches.
        let e = c.epoch();
        let moved = ProductsMoved::of(uuid::Uuid::from_u128(1), (1, 1), (1, 0));
        let scope = Signal::Scope {
            from: "a".into(),
            nonce: 10,
            moved: moved.clone(),
        };
        let decoded = Signal::decode(&scope.encode()).expect("decodes");
        assert_eq!(decoded, scope);
        assert_eq!(c.received(decoded, t0), None);
        let ack = c.received(
            Signal::Invalidate {
                from: "a".into(),
                nonce: 10,
            },
            t0,
        );
        assert!(ack.is_some());
        assert_eq!(c.epoch(), e);
        assert_eq!(c.take_scope(), Some(moved));
        // A scope whose invalidation never came does not scope a later one.
        c.received(
            Signal::Scope {
                from: "a".into(),
                nonce: 11,
                moved: ProductsMoved::default(),
            },
            t0,
        );
        c.received(
            Signal::Invalidate {
                from: "a".into(),
                nonce: 12,
            },
            t0,
        );
        assert_eq!(c.take_scope(), None);
        assert_eq!(c.epoch(), e + 1);
        // Its own invalidation comes back too; the writer already bumped.
        let e = c.epoch();
        assert_eq!(
            c.received(
                Signal::Invalidate {
                    from: "b".into(),
                    nonce: 1,
                },
                t0
            ),
            None
        );
        assert_eq!(c.epoch(), e);
    }

    #[test]
    fn a_writer_waits_for_every_peer_it_knows_until_acked_or_its_lease_is_over() {
        let t0 = Instant::now();
        let mut a = leased("a", t0);
        let t1 = t0 + LEASE + ms(10); // subscribed long enough
        a.received(
            Signal::Ping {
                from: "b".into(),
                seq: 1,
            },
            t1,
        );
        a.received(
            Signal::Ping {
                from: "c".into(),
                seq: 1,
            },
            t1 - ms(300),
        );
        let t2 = t1 + ms(5);
        a.publishing(1, t2);
        // c was last heard 305 ms ago: its lease ends at most a lease after.
        assert_eq!(a.wait(1, t2), Wait::Until(t1 + LEASE));
        a.received(
            Signal::Ack {
                to: "a".into(),
                nonce: 1,
                from: "b".into(),
            },
            t2 + ms(1),
        );
        assert_eq!(a.wait(1, t2 + ms(1)), Wait::Until(t1 - ms(300) + LEASE));
        a.received(
            Signal::Ack {
                to: "a".into(),
                nonce: 1,
                from: "c".into(),
            },
            t2 + ms(2),
        );
        assert_eq!(a.wait(1, t2 + ms(2)), Wait::Done);
        // An ack for someone else's invalidation satisfies nothing.
        a.publishing(2, t2);
        a.received(
            Signal::Ack {
                to: "z".into(),
                nonce: 2,
                from: "b".into(),
            },
            t2,
        );
        assert!(matches!(a.wait(2, t2), Wait::Until(_)));
        // A silent peer is waited for no longer than its lease could last.
        assert_eq!(a.wait(2, t2 + LEASE), Wait::Done);
    }

    #[test]
    fn a_writer_that_cannot_know_its_peers_waits_a_whole_lease() {
        let t0 = Instant::now();
        let mut fresh = leased("a", t0);
        fresh.publishing(1, t0 + ms(10));
        assert_eq!(fresh.wait(1, t0 + ms(10)), Wait::Until(t0 + ms(10) + LEASE));
        let mut gone = Coherence::new("a");
        gone.publishing(1, t0);
        assert_eq!(gone.wait(1, t0), Wait::Until(t0 + LEASE));
        assert_eq!(gone.wait(1, t0 + LEASE), Wait::Done);
    }
}
