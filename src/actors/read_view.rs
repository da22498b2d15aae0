//! An in-process read view of one domain: values the edge reads without a
//! hop to the domain's actor, kept coherent across instances through a
//! Redis channel (the protocol is in `domain::coherence`).
//!
//! The domain's actor owns it: only its answers fill it (through the edge,
//! which hands a miss's answer back with the ticket taken before the
//! call), and only its writes invalidate it, here and on every instance,
//! before the write answers. While the channel is down the view is not
//! served at all; reads go to the actor as before.
//!
//! The catalog keeps pages already serialised ([`Page`]: `Bytes`, never
//! parsed again); auth keeps who a token's user is ([`AuthEntry`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::Notify;

use crate::domain::auth::Role;
use crate::domain::coherence::{Coherence, Signal, Wait, LEASE, PING_EVERY};
use crate::store::redis::{connection, RedisPool};

/// Most bytes the view holds. A page that would overflow it empties the
/// view first: every write empties it anyway, so recency bookkeeping on
/// each read (which an LRU needs, and which showed as latency spikes under
/// load) would buy little.
const CAPACITY_BYTES: usize = 64 * 1024 * 1024;
/// How long the subscriber waits before reconnecting after a failure.
const RECONNECT: Duration = Duration::from_millis(250);
/// How long a publish may take once Redis is known to be unreachable: as
/// long as any Redis call (`redis.timeout_ms` by default).
const OUTAGE_PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);

/// What a view may hold: anything cheap to clone that knows its size.
pub trait ViewValue: Clone + Send + Sync + 'static {
    /// Bytes it takes, for the view's budget.
    fn size(&self) -> usize;
}

/// One cached page: a listing's count (0 for a single item) and body, and
/// the body gzipped when it is large enough to be worth it.
#[derive(Debug, Clone)]
pub struct Page {
    pub count: i64,
    pub body: Bytes,
    pub gzip: Option<Bytes>,
}

impl ViewValue for Page {
    fn size(&self) -> usize {
        self.body.len() + self.gzip.as_ref().map_or(0, Bytes::len)
    }
}

/// What auth keeps per user: who the user is now, and their profile.
#[derive(Debug, Clone)]
pub enum AuthEntry {
    /// Checked against each token's version, so a bumped version (logout
    /// everywhere, new password) refuses old tokens on the next request.
    Access {
        token_version: i32,
        role: Role,
        is_active: bool,
    },
    /// `GET /auth/me/`'s body.
    Profile(Bytes),
    /// A live API key, by the digest of its secret. Revoking any key
    /// clears the view on every instance.
    ApiKey(crate::actors::auth::api_keys::KeyGrant),
}

impl ViewValue for AuthEntry {
    fn size(&self) -> usize {
        match self {
            AuthEntry::Access { .. } => 16,
            AuthEntry::ApiKey(_) => 40,
            AuthEntry::Profile(body) => body.len(),
        }
    }
}

/// The catalog's view: pages.
pub type CatalogView = ReadView<Page>;
/// Auth's view: principals and profiles.
pub type AuthView = ReadView<AuthEntry>;

#[derive(Debug, Clone)]
struct Stored<V> {
    epoch: u64,
    value: V,
}

/// Taken before a miss goes to the actor; a page loaded under a ticket is
/// kept only if nothing was invalidated since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

/// Counters shown in the admin report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ViewStatsSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub bypassed: u64,
    pub invalidations_sent: u64,
    pub invalidations_received: u64,
    pub serving: bool,
    pub entries: u64,
}

/// The values, by key, and their size in bytes.
struct Values<V> {
    map: RwLock<HashMap<String, Stored<V>>>,
    bytes: AtomicUsize,
}

impl<V: ViewValue> Values<V> {
    fn new() -> Self {
        Self {
            map: RwLock::default(),
            bytes: AtomicUsize::new(0),
        }
    }

    fn get(&self, key: &str) -> Option<Stored<V>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn insert(&self, key: String, entry: Stored<V>) {
        let size = key.len() + entry.value.size();
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if self.bytes.load(Ordering::Relaxed) + size > CAPACITY_BYTES {
            map.clear();
            self.bytes.store(0, Ordering::Relaxed);
        }
        let old = map.insert(key, entry).map_or(0, |old| old.value.size());
        self.bytes
            .fetch_add(size.saturating_sub(old), Ordering::Relaxed);
    }

    fn invalidate_all(&self) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.clear();
        self.bytes.store(0, Ordering::Relaxed);
    }

    fn entry_count(&self) -> u64 {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        u64::try_from(map.len()).unwrap_or(u64::MAX)
    }
}

struct Inner<V> {
    pages: Values<V>,
    state: Mutex<Coherence>,
    /// Mirrors of the state for lock-free reads: the epoch and the lease's
    /// end in milliseconds after `base` (0: no lease).
    epoch: AtomicU64,
    lease_until_ms: AtomicU64,
    base: Instant,
    acks: Notify,
    pool: RedisPool,
    url: String,
    channel: String,
    nonce: AtomicU64,
    started: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    bypassed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    /// When publishing first failed in the outage under way; cleared by the
    /// next publish that succeeds.
    unreachable_since: Mutex<Option<Instant>>,
}

/// Handle to a view; cheap to clone.
pub struct ReadView<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for ReadView<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V: ViewValue> ReadView<V> {
    /// A view of `domain` under `prefix`, signalling through the Redis at
    /// `url` (a dedicated subscriber connection) and `pool` (publishes).
    pub fn new(pool: RedisPool, url: &str, prefix: &str, domain: &str) -> Self {
        let me = uuid::Uuid::new_v4().simple().to_string();
        Self {
            inner: Arc::new(Inner {
                pages: Values::new(),
                state: Mutex::new(Coherence::new(me)),
                epoch: AtomicU64::new(0),
                lease_until_ms: AtomicU64::new(0),
                base: Instant::now(),
                acks: Notify::new(),
                pool,
                url: url.to_owned(),
                channel: format!("{prefix}:{domain}:view"),
                nonce: AtomicU64::new(0),
                started: AtomicBool::new(false),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                bypassed: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                received: AtomicU64::new(0),
                unreachable_since: Mutex::new(None),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Coherence> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.inner.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// Copies the state's epoch and lease into the atomics readers use.
    fn mirror(&self, state: &Coherence) {
        self.inner.epoch.store(state.epoch(), Ordering::Release);
        let until = state.lease_until().map_or(0, |u| self.millis(u));
        self.inner.lease_until_ms.store(until, Ordering::Release);
    }

    /// The epoch the view may be served at now, if it may be served.
    fn serving(&self) -> Option<u64> {
        let until = self.inner.lease_until_ms.load(Ordering::Acquire);
        (self.millis(Instant::now()) < until).then(|| self.inner.epoch.load(Ordering::Acquire))
    }

    /// The value under `key`, if the view may be served and holds it for
    /// the current epoch.
    pub fn get(&self, key: &str) -> Option<V> {
        let Some(epoch) = self.serving() else {
            self.inner.bypassed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        match self.inner.pages.get(key) {
            Some(entry) if entry.epoch == epoch => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.value)
            }
            _ => {
                self.inner.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Whether the view may be served now (subscribed, lease held).
    pub fn is_serving(&self) -> bool {
        self.serving().is_some()
    }

    /// Serving, and subscribed long enough that a write waits only for the
    /// peers it knows (a fresh instance's writes wait a whole lease).
    pub fn is_settled(&self) -> bool {
        self.is_serving() && self.state().knows_peers(Instant::now())
    }

    /// Taken before asking the actor for a page the view lacks.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.serving())
    }

    /// Keeps a page loaded under `ticket`, unless something was invalidated
    /// since the ticket was taken. (If an invalidation lands between this
    /// check and the insert, the page carries the old epoch and is never
    /// served.)
    pub fn put(&self, ticket: Ticket, key: String, value: V) {
        let Ticket(Some(epoch)) = ticket else {
            return;
        };
        if self.serving() == Some(epoch) {
            self.inner.pages.insert(key, Stored { epoch, value });
        }
    }

    /// Counters for the admin report.
    pub fn snapshot(&self) -> ViewStatsSnapshot {
        let i = &self.inner;
        ViewStatsSnapshot {
            hits: i.hits.load(Ordering::Relaxed),
            misses: i.misses.load(Ordering::Relaxed),
            bypassed: i.bypassed.load(Ordering::Relaxed),
            invalidations_sent: i.sent.load(Ordering::Relaxed),
            invalidations_received: i.received.load(Ordering::Relaxed),
            serving: self.serving().is_some(),
            entries: i.pages.entry_count(),
        }
    }

    /// After a committed write whose Redis generation bump is done: drops
    /// this instance's pages, tells every other instance to drop theirs,
    /// and returns once none can serve a page from before the write (each
    /// acknowledged, or its lease ran out).
    pub async fn invalidate(&self) {
        let nonce = self.inner.nonce.fetch_add(1, Ordering::Relaxed);
        let message = {
            let mut state = self.state();
            state.invalidate();
            state.publishing(nonce, Instant::now());
            self.mirror(&state);
            Signal::Invalidate {
                from: state.me().to_owned(),
                nonce,
            }
        };
        self.inner.pages.invalidate_all();
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
        if self.publish(&message).await.is_err() {
            // Nobody was told: wait until no lease from before the outage
            // can hold. A lease is renewed only through Redis, so once a
            // whole lease has passed since publishing first failed, no peer
            // holds one and later writes in the same outage need not wait.
            let now = Instant::now();
            let since = *self.lock_unreachable().get_or_insert(now);
            tokio::time::sleep_until((since + LEASE).into()).await;
            self.state().forget(nonce);
            return;
        }
        *self.lock_unreachable() = None;
        loop {
            let notified = self.inner.acks.notified();
            let wait = self.state().wait(nonce, Instant::now());
            match wait {
                Wait::Done => break,
                Wait::Until(until) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(until.into()) => {}
                    }
                }
            }
        }
        self.state().forget(nonce);
    }

    async fn publish(&self, signal: &Signal) -> anyhow::Result<()> {
        let call = async {
            let mut conn = connection(&self.inner.pool).await?;
            redis::cmd("PUBLISH")
                .arg(&self.inner.channel)
                .arg(signal.encode())
                .query_async::<i64>(&mut *conn)
                .await?;
            anyhow::Ok(())
        };
        // Within an outage, give up as any Redis call does: the write has
        // already paid its lease.
        let limit = if self.lock_unreachable().is_some() {
            OUTAGE_PUBLISH_TIMEOUT
        } else {
            LEASE / 2
        };
        tokio::time::timeout(limit, call)
            .await
            .map_err(|_| anyhow::anyhow!("publish timed out"))?
    }

    fn lock_unreachable(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.inner
            .unreachable_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the subscriber and the pinger on a thread of their own, once
    /// per view (an actor restart does not start them again): on the
    /// actor's thread, a flood of reads sent to the actor while the lease
    /// was down delayed the very pings that would renew it.
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let arbiter = actix_rt::Arbiter::new();
        let view = self.clone();
        arbiter.spawn(async move { view.subscribe_forever().await });
        let view = self.clone();
        arbiter.spawn(async move { view.ping_forever().await });
        // The arbiter stops with the system.
        drop(arbiter);
    }

    async fn ping_forever(self) {
        let mut seq = 0u64;
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            seq += 1;
            let me = {
                let mut state = self.state();
                state.ping_sent(seq, Instant::now());
                state.me().to_owned()
            };
            // A lost ping only delays the lease; the next one renews it.
            let _ = self.publish(&Signal::Ping { from: me, seq }).await;
        }
    }

    async fn subscribe_forever(self) {
        loop {
            if let Err(e) = self.subscribe_once().await {
                tracing::debug!(error = %e, channel = %self.inner.channel, "read view channel unavailable");
            }
            {
                let mut state = self.state();
                state.disconnected();
                self.mirror(&state);
            }
            self.inner.pages.invalidate_all();
            tokio::time::sleep(RECONNECT).await;
        }
    }

    async fn subscribe_once(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.inner.url.as_str())?;
        let mut pubsub = tokio::time::timeout(LEASE, client.get_async_pubsub()).await??;
        tokio::time::timeout(LEASE, pubsub.subscribe(&self.inner.channel)).await??;
        {
            let mut state = self.state();
            state.subscribed(Instant::now());
            self.mirror(&state);
        }
        self.inner.pages.invalidate_all();
        tracing::info!(channel = %self.inner.channel, "read view subscribed");
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Ok(raw) = message.get_payload::<String>() else {
                continue;
            };
            let Some(signal) = Signal::decode(&raw) else {
                continue;
            };
            // Redis answers again: a later outage is a new one, and its
            // first write waits a whole lease again.
            *self.lock_unreachable() = None;
            let invalidation = matches!(signal, Signal::Invalidate { .. });
            let reply = {
                let mut state = self.state();
                let reply = state.received(signal, Instant::now());
                self.mirror(&state);
                reply
            };
            self.inner.acks.notify_waiters();
            if let Some(ack) = reply {
                if invalidation {
                    self.inner.received.fetch_add(1, Ordering::Relaxed);
                    self.inner.pages.invalidate_all();
                }
                // Acknowledged only after the epoch moved, from a task of
                // its own so the subscription keeps reading.
                let view = self.clone();
                actix_rt::spawn(async move {
                    let _ = view.publish(&ack).await;
                });
            }
        }
        anyhow::bail!("subscription closed")
    }
}
