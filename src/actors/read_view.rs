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
//! parsed again), each with what it depends on, so that a write that only
//! moved some products' stock or prices drops only the pages showing them
//! or hanging on what moved (`domain::cache_scope`); auth keeps who a
//! token's user is ([`AuthEntry`]). A view holds at most its byte budget
//! and drops the least recently read values beyond it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::auth::Role;
use crate::domain::cache_scope::{Dependencies, ProductsMoved};
use crate::domain::coherence::{Coherence, Signal, Wait, LEASE, PING_EVERY};
use crate::store::catalog::VariantSnapshot;
use crate::store::redis::{connection, RedisPool};

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

/// What the catalog's view holds: pages the edge answers whole, and the
/// variants carts price their lines from.
#[derive(Debug, Clone)]
pub enum CatalogEntry {
    /// A serialised answer.
    Page(Page),
    /// One variant as carts price it (`GetItemSnapshots`' answer), under
    /// [`variant_key`]; it depends on its product, so any stock or price
    /// move of the product drops it.
    Variant(Arc<VariantSnapshot>),
}

impl From<Page> for CatalogEntry {
    fn from(page: Page) -> Self {
        CatalogEntry::Page(page)
    }
}

impl ViewValue for CatalogEntry {
    fn size(&self) -> usize {
        match self {
            CatalogEntry::Page(page) => page.size(),
            CatalogEntry::Variant(v) => {
                // The struct, and the strings it owns on the heap.
                std::mem::size_of::<VariantSnapshot>()
                    + v.name.len()
                    + v.slug.len()
                    + v.sku.len()
                    + v.currency.len()
                    + v.tax_class.len()
                    + 64 * v.options.len()
            }
        }
    }
}

/// The key a variant's snapshot is kept under in the catalog's view.
pub fn variant_key(id: Uuid) -> String {
    format!("variant:{id}")
}

/// One customer's cart as stored, under [`cart_key`] in the carts' view.
#[derive(Debug)]
pub struct StoredCart {
    pub cart_id: Uuid,
    pub contents: crate::store::carts::Contents,
}

/// The key a customer's cart is kept under in the carts' view.
pub fn cart_key(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

impl ViewValue for Arc<StoredCart> {
    fn size(&self) -> usize {
        // Lines are small and fixed-size but for their currency; the
        // shipping address is bounded by its schema.
        std::mem::size_of::<StoredCart>()
            + self.contents.lines.len()
                * (std::mem::size_of::<crate::domain::carts::StoredLine>() + 8)
            + self.contents.shipping.as_ref().map_or(0, |_| 512)
    }
}

/// The catalog's view: pages, and variants for carts.
pub type CatalogView = ReadView<CatalogEntry>;
/// The carts' view: customers' carts as stored, each depending on its own
/// cart id (a write to a cart invalidates that id, on every instance).
pub type CartsView = ReadView<Arc<StoredCart>>;
/// Auth's view: principals and profiles.
pub type AuthView = ReadView<AuthEntry>;

/// One held value, what it depends on, and when it was last read (a tick
/// of the view's clock, for least-recently-used eviction).
struct Stored<V> {
    epoch: u64,
    value: V,
    deps: Dependencies,
    used: AtomicU64,
}

/// Taken before a miss goes to the actor; a page loaded under a ticket is
/// kept only if nothing it depends on was invalidated since: the epoch it
/// was taken at, and how many scoped invalidations had been applied.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<(u64, u64)>);

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
    /// Bytes held (keys and values), against `max_bytes`.
    pub bytes: u64,
    pub max_bytes: u64,
    /// Entries dropped to stay within `max_bytes`, least recently read
    /// first.
    pub evictions: u64,
}

/// How many scoped invalidations the view remembers for checking the
/// tickets of loads in flight; a ticket older than that is refused.
const SCOPED_LOG: usize = 1024;
/// Eviction frees down to this share of the budget, so that a full view
/// does not sort its entries on every insert.
const EVICT_TO: f64 = 0.75;

/// The values by key, with indexes from what they depend on to their keys.
struct Table<V> {
    map: HashMap<String, Stored<V>>,
    by_product: HashMap<Uuid, HashSet<String>>,
    on_stock: HashSet<String>,
    on_price: HashSet<String>,
    /// Scoped invalidations applied so far, and the latest of them.
    scoped: u64,
    log: VecDeque<(u64, ProductsMoved)>,
}

impl<V> Table<V> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            by_product: HashMap::new(),
            on_stock: HashSet::new(),
            on_price: HashSet::new(),
            scoped: 0,
            log: VecDeque::new(),
        }
    }

    /// Drops `key`; the bytes it took.
    fn remove(&mut self, key: &str) -> usize
    where
        V: ViewValue,
    {
        let Some(old) = self.map.remove(key) else {
            return 0;
        };
        for id in &old.deps.products {
            if let Some(keys) = self.by_product.get_mut(id) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_product.remove(id);
                }
            }
        }
        self.on_stock.remove(key);
        self.on_price.remove(key);
        key.len() + old.value.size()
    }

    /// Whether a load under a ticket taken after scoped invalidation
    /// `since` may be stale: a later one touched what it depends on, or
    /// the log no longer reaches back that far.
    fn stale_since(&self, since: u64, deps: &Dependencies) -> bool {
        if since == self.scoped {
            return false;
        }
        match self.log.front() {
            Some((first, _)) if *first <= since + 1 => self
                .log
                .iter()
                .filter(|(seq, _)| *seq > since)
                .any(|(_, moved)| moved.touches(deps)),
            _ => true,
        }
    }
}

/// The values and their size in bytes, within a budget.
struct Values<V> {
    table: RwLock<Table<V>>,
    bytes: AtomicUsize,
    max_bytes: usize,
    clock: AtomicU64,
    evictions: AtomicU64,
}

impl<V: ViewValue> Values<V> {
    fn new(max_bytes: usize) -> Self {
        Self {
            table: RwLock::new(Table::new()),
            bytes: AtomicUsize::new(0),
            max_bytes: max_bytes.max(1),
            clock: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table<V>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table<V>> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The value under `key` if it was stored at `epoch`; marks it read.
    fn get(&self, key: &str, epoch: u64) -> Option<V> {
        let table = self.read();
        let entry = table.map.get(key).filter(|e| e.epoch == epoch)?;
        // Only an atomic store under the read lock: readers never contend
        // for recency.
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        entry.used.store(tick, Ordering::Relaxed);
        Some(entry.value.clone())
    }

    fn scoped(&self) -> u64 {
        self.read().scoped
    }

    /// Keeps `value` unless a scoped invalidation after `since` touched
    /// what it depends on (checked under the same lock invalidations take,
    /// so none slips between the check and the insert).
    fn insert(&self, key: String, epoch: u64, since: u64, value: V, deps: Dependencies) {
        let size = key.len() + value.size();
        let mut table = self.write();
        if table.stale_since(since, &deps) {
            return;
        }
        let freed = table.remove(&key);
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        if self.bytes.load(Ordering::Relaxed) + size > self.max_bytes {
            self.evict(&mut table, size);
        }
        for id in &deps.products {
            table.by_product.entry(*id).or_default().insert(key.clone());
        }
        if deps.stock {
            table.on_stock.insert(key.clone());
        }
        if deps.price {
            table.on_price.insert(key.clone());
        }
        let used = AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed));
        table.map.insert(
            key,
            Stored {
                epoch,
                value,
                deps,
                used,
            },
        );
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    /// Drops the least recently read entries until `incoming` more bytes
    /// fit within [`EVICT_TO`] of the budget.
    fn evict(&self, table: &mut Table<V>, incoming: usize) {
        let target = ((self.max_bytes as f64) * EVICT_TO) as usize;
        let mut by_age: Vec<(u64, String)> = table
            .map
            .iter()
            .map(|(k, e)| (e.used.load(Ordering::Relaxed), k.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in by_age {
            if self.bytes.load(Ordering::Relaxed) + incoming <= target {
                break;
            }
            let freed = table.remove(&key);
            self.bytes.fetch_sub(freed, Ordering::Relaxed);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops what `moved` touches and remembers it for tickets in flight.
    fn invalidate_scoped(&self, moved: &ProductsMoved) {
        let mut table = self.write();
        let mut keys: HashSet<String> = HashSet::new();
        for id in &moved.ids {
            if let Some(held) = table.by_product.get(id) {
                keys.extend(held.iter().cloned());
            }
        }
        if moved.stock_crossed_zero {
            keys.extend(table.on_stock.iter().cloned());
        }
        if moved.repriced {
            keys.extend(table.on_price.iter().cloned());
        }
        for key in keys {
            let freed = table.remove(&key);
            self.bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        table.scoped += 1;
        let seq = table.scoped;
        table.log.push_back((seq, moved.clone()));
        while table.log.len() > SCOPED_LOG {
            table.log.pop_front();
        }
    }

    fn invalidate_all(&self) {
        let mut table = self.write();
        table.map.clear();
        table.by_product.clear();
        table.on_stock.clear();
        table.on_price.clear();
        self.bytes.store(0, Ordering::Relaxed);
    }

    fn entry_count(&self) -> u64 {
        u64::try_from(self.read().map.len()).unwrap_or(u64::MAX)
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
    /// The arbiter running the subscriber and the pinger, once started.
    channel_tasks: Mutex<Option<actix_rt::ArbiterHandle>>,
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
    /// `max_bytes` bounds what it holds; beyond it the least recently read
    /// entries go.
    pub fn new(pool: RedisPool, url: &str, prefix: &str, domain: &str, max_bytes: usize) -> Self {
        let me = uuid::Uuid::new_v4().simple().to_string();
        Self {
            inner: Arc::new(Inner {
                pages: Values::new(max_bytes),
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
                channel_tasks: Mutex::new(None),
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
        match self.inner.pages.get(key, epoch) {
            Some(value) => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                Some(value)
            }
            None => {
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
        Ticket(
            self.serving()
                .map(|epoch| (epoch, self.inner.pages.scoped())),
        )
    }

    /// Keeps a value loaded under `ticket` that depends on nothing a
    /// scoped invalidation names (it goes only with everything).
    pub fn put(&self, ticket: Ticket, key: String, value: impl Into<V>) {
        self.put_with(ticket, key, value, Dependencies::default());
    }

    /// Keeps a value loaded under `ticket`, unless something it depends on
    /// was invalidated since the ticket was taken. (If a whole
    /// invalidation lands between this check and the insert, the value
    /// carries the old epoch and is never served.)
    pub fn put_with(&self, ticket: Ticket, key: String, value: impl Into<V>, deps: Dependencies) {
        let Ticket(Some((epoch, since))) = ticket else {
            return;
        };
        if self.serving() == Some(epoch) {
            self.inner
                .pages
                .insert(key, epoch, since, value.into(), deps);
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
            bytes: u64::try_from(i.pages.bytes.load(Ordering::Relaxed)).unwrap_or(u64::MAX),
            max_bytes: u64::try_from(i.pages.max_bytes).unwrap_or(u64::MAX),
            evictions: i.pages.evictions.load(Ordering::Relaxed),
        }
    }

    /// After a committed write whose Redis generation bump is done: drops
    /// this instance's pages, tells every other instance to drop theirs,
    /// and returns once none can serve a page from before the write (each
    /// acknowledged, or its lease ran out).
    pub async fn invalidate(&self) {
        self.invalidate_scope(None).await;
    }

    /// As [`ReadView::invalidate`], for a write that only moved stock or
    /// prices of some products: every instance drops only the values that
    /// show those products or hang on what moved.
    pub async fn invalidate_products(&self, moved: &ProductsMoved) {
        self.invalidate_scope(Some(moved.clone())).await;
    }

    async fn invalidate_scope(&self, scope: Option<ProductsMoved>) {
        let nonce = self.inner.nonce.fetch_add(1, Ordering::Relaxed);
        let messages = {
            let mut state = self.state();
            if scope.is_none() {
                state.invalidate();
            }
            state.publishing(nonce, Instant::now());
            self.mirror(&state);
            let from = state.me().to_owned();
            let mut messages = Vec::with_capacity(2);
            if let Some(moved) = &scope {
                messages.push(Signal::Scope {
                    from: from.clone(),
                    nonce,
                    moved: moved.clone(),
                });
            }
            messages.push(Signal::Invalidate { from, nonce });
            messages
        };
        match &scope {
            None => self.inner.pages.invalidate_all(),
            Some(moved) => self.inner.pages.invalidate_scoped(moved),
        }
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
        if self.publish(&messages).await.is_err() {
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

    /// Publishes `signals` in order, in one pipeline on one connection
    /// (so subscribers get them in that order).
    async fn publish(&self, signals: &[Signal]) -> anyhow::Result<()> {
        let call = async {
            let mut conn = connection(&self.inner.pool).await?;
            let mut pipe = redis::pipe();
            for signal in signals {
                pipe.cmd("PUBLISH")
                    .arg(&self.inner.channel)
                    .arg(signal.encode())
                    .ignore();
            }
            pipe.query_async::<()>(&mut *conn).await?;
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
        *self
            .inner
            .channel_tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(arbiter.handle());
    }

    /// Stops the subscriber and the pinger (at shutdown): an instance
    /// stopped inside a longer-lived process (a test run, an embedding)
    /// would otherwise leave their thread pinging Redis for good.
    pub fn stop(&self) {
        let handle = self
            .inner
            .channel_tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            handle.stop();
        }
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
            let _ = self.publish(&[Signal::Ping { from: me, seq }]).await;
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
            let (reply, scope) = {
                let mut state = self.state();
                let reply = state.received(signal, Instant::now());
                self.mirror(&state);
                (reply, state.take_scope())
            };
            self.inner.acks.notify_waiters();
            if let Some(ack) = reply {
                if invalidation {
                    self.inner.received.fetch_add(1, Ordering::Relaxed);
                    match scope {
                        None => self.inner.pages.invalidate_all(),
                        Some(moved) => self.inner.pages.invalidate_scoped(&moved),
                    }
                }
                // Acknowledged only after the epoch moved or the touched
                // values went, from a task of its own so the subscription
                // keeps reading.
                let view = self.clone();
                actix_rt::spawn(async move {
                    let _ = view.publish(std::slice::from_ref(&ack)).await;
                });
            }
        }
        anyhow::bail!("subscription closed")
    }
}

impl CatalogView {
    /// The page under `key`, if the view may be served and holds one.
    pub fn page(&self, key: &str) -> Option<Page> {
        match self.get(key)? {
            CatalogEntry::Page(page) => Some(page),
            CatalogEntry::Variant(_) => None,
        }
    }

    /// Variant `id` as carts price it, if the view may be served and
    /// holds it.
    pub fn variant(&self, id: Uuid) -> Option<Arc<VariantSnapshot>> {
        match self.get(&variant_key(id))? {
            CatalogEntry::Variant(v) => Some(v),
            CatalogEntry::Page(_) => None,
        }
    }

    /// Keeps variants read under `ticket`, each depending on its product.
    pub fn put_variants<'a>(
        &self,
        ticket: Ticket,
        variants: impl IntoIterator<Item = &'a VariantSnapshot>,
    ) {
        for v in variants {
            let deps = Dependencies {
                products: vec![v.product_id],
                ..Dependencies::default()
            };
            self.put_with(
                ticket,
                variant_key(v.id),
                CatalogEntry::Variant(Arc::new(v.clone())),
                deps,
            );
        }
    }
}

impl CartsView {
    /// After a committed write to these carts: drops them here and on
    /// every instance, and returns once none can serve them as before.
    pub async fn forget(&self, cart_ids: impl IntoIterator<Item = Uuid>) {
        let moved = ProductsMoved {
            ids: cart_ids.into_iter().collect(),
            stock_crossed_zero: false,
            repriced: false,
        };
        if !moved.ids.is_empty() {
            self.invalidate_products(&moved).await;
        }
    }

    /// Keeps a customer's cart read under `ticket`.
    pub fn put_cart(&self, ticket: Ticket, user_id: Uuid, cart: StoredCart) {
        let deps = Dependencies {
            products: vec![cart.cart_id],
            ..Dependencies::default()
        };
        self.put_with(ticket, cart_key(user_id), Arc::new(cart), deps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Blob(usize);

    impl ViewValue for Blob {
        fn size(&self) -> usize {
            self.0
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn shows(ids: &[u128]) -> Dependencies {
        Dependencies {
            products: ids.iter().map(|n| id(*n)).collect(),
            ..Dependencies::default()
        }
    }

    fn moved(ids: &[u128], crossed: bool) -> ProductsMoved {
        ProductsMoved {
            ids: ids.iter().map(|n| id(*n)).collect(),
            stock_crossed_zero: crossed,
            repriced: false,
        }
    }

    #[test]
    fn a_scoped_invalidation_drops_only_what_it_touches() {
        let v = Values::new(1 << 20);
        v.insert("a".into(), 0, v.scoped(), Blob(10), shows(&[1, 2]));
        v.insert("b".into(), 0, v.scoped(), Blob(10), shows(&[3]));
        let in_stock = Dependencies {
            stock: true,
            ..shows(&[4])
        };
        v.insert("c".into(), 0, v.scoped(), Blob(10), in_stock);
        v.invalidate_scoped(&moved(&[2], false));
        assert!(v.get("a", 0).is_none());
        assert!(v.get("b", 0).is_some() && v.get("c", 0).is_some());
        v.invalidate_scoped(&moved(&[9], true));
        assert!(
            v.get("c", 0).is_none(),
            "a crossing drops stock-filtered pages"
        );
        assert!(v.get("b", 0).is_some());
        assert_eq!(v.bytes.load(Ordering::Relaxed), "b".len() + 10);
        assert!(v.get("b", 1).is_none(), "another epoch is never served");
    }

    #[test]
    fn a_load_that_raced_an_invalidation_of_what_it_shows_is_not_kept() {
        let v = Values::new(1 << 20);
        let ticket = v.scoped();
        v.invalidate_scoped(&moved(&[1], false));
        v.insert("stale".into(), 0, ticket, Blob(1), shows(&[1]));
        v.insert("fine".into(), 0, ticket, Blob(1), shows(&[2]));
        assert!(v.get("stale", 0).is_none());
        assert!(v.get("fine", 0).is_some());
        // A ticket older than the log reaches is refused outright.
        let old = v.scoped();
        for n in 0..=SCOPED_LOG as u128 {
            v.invalidate_scoped(&moved(&[100 + n], false));
        }
        v.insert("too old".into(), 0, old, Blob(1), shows(&[2]));
        assert!(v.get("too old", 0).is_none());
    }

    #[test]
    fn over_budget_the_least_recently_read_go_first() {
        let v = Values::new(400);
        for key in ["k1", "k2", "k3"] {
            v.insert(
                key.into(),
                0,
                v.scoped(),
                Blob(120),
                Dependencies::default(),
            );
        }
        // k1 read last: k2 is the least recently read.
        assert!(v.get("k1", 0).is_some());
        v.insert(
            "k4".into(),
            0,
            v.scoped(),
            Blob(120),
            Dependencies::default(),
        );
        assert!(v.bytes.load(Ordering::Relaxed) <= 400);
        assert!(v.get("k2", 0).is_none(), "least recently read evicted");
        assert!(v.get("k1", 0).is_some() && v.get("k4", 0).is_some());
        assert!(v.evictions.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn concurrent_loads_never_leave_a_page_older_than_a_finished_invalidation() {
        // A writer commits (`truth` moves), then invalidates, then counts the
        // write as answered (`answered`). Loaders take a ticket, read the
        // truth and put it. A reader that saw `answered` = w must never get
        // a page older than w.
        let v = Arc::new(Values::new(1 << 24));
        let truth = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for role in 0..3 {
            let (v, truth, answered) = (Arc::clone(&v), Arc::clone(&truth), Arc::clone(&answered));
            threads.push(std::thread::spawn(move || {
                for _ in 0..3_000 {
                    match role {
                        0 => {
                            let now = truth.fetch_add(1, Ordering::SeqCst) + 1;
                            v.invalidate_scoped(&moved(&[1], false));
                            answered.store(now, Ordering::SeqCst);
                        }
                        1 => {
                            let ticket = v.scoped();
                            let loaded = truth.load(Ordering::SeqCst);
                            let page = Blob(usize::try_from(loaded).expect("small"));
                            v.insert("page".into(), 0, ticket, page, shows(&[1, 2]));
                        }
                        _ => {
                            let w = answered.load(Ordering::SeqCst);
                            if let Some(Blob(got)) = v.get("page", 0) {
                                assert!(got as u64 >= w, "served {got} after write {w} answered");
                            }
                        }
                    }
                }
            }));
        }
        for t in threads {
            t.join().expect("no stale read");
        }
    }
}
