//! The catalog's Redis cache: cache-aside values under a generation number.
//!
//! Every key embeds the current generation; a catalog write that may
//! change anything bumps it, so the next read after it misses and reloads,
//! without scanning or deleting keys (old generations expire by TTL).
//!
//! A write that only moved some products' stock or prices (orders do, all
//! day) instead bumps a sequence number and records it against each moved
//! product (`p:<id>`), and against the classes that moved with it
//! (`c:stock` when a product's stock crossed zero, `c:price` when a price
//! changed). Each value is stored with the sequence number its lookup saw
//! and what it depends on (`domain::cache_scope`); a lookup treats it as
//! missing when anything it depends on was bumped past that number, in the
//! same round trip. So an order for a kettle leaves the footwear listing
//! cached. If a bump fails, this
//! instance bypasses the cache until a later bump succeeds, so it never
//! serves what it may have made stale. When Redis fails, calls are skipped
//! for a short back-off and reads go to PostgreSQL; recovery is automatic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Script;
use serde::Serialize;

use crate::domain::cache_scope::{Dependencies, ProductsMoved};
use crate::store::redis::{connection, RedisPool};

/// Where values live under the namespace: values carry what they depend
/// on, a form instances from before scoped invalidation cannot read, so
/// they are kept apart from those instances' values (which sit right under
/// the namespace) while both run during an upgrade.
const VALUES: &str = "v2:";

/// How long Redis is left alone after a failure.
const BACKOFF: Duration = Duration::from_secs(1);

/// Reads the version (generation, sequence, class bumps) and the value
/// under it in one round trip; a value something it depends on has moved
/// past is not returned. A value is `<seen> <flags> <ids>\n<json>`.
const GET_SCRIPT: &str = r"
local generation = redis.call('GET', KEYS[1]) or '0'
local seq = redis.call('GET', KEYS[2]) or '0'
local stock = redis.call('GET', KEYS[3]) or '0'
local price = redis.call('GET', KEYS[4]) or '0'
local version = {generation, seq, stock, price}
local value = redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])
if not value then return version end
local nl = string.find(value, '\n', 1, true)
if not nl then return version end
local seen, flags, ids = string.match(string.sub(value, 1, nl - 1), '^(%d+) (%S+) (%S+)$')
if not seen then return version end
seen = tonumber(seen)
-- A sequence that went back (Redis lost it) cannot vouch for anything.
if seen > tonumber(seq) then return version end
if string.find(flags, 's', 1, true) and tonumber(stock) > seen then return version end
if string.find(flags, 'p', 1, true) and tonumber(price) > seen then return version end
if ids ~= '-' then
  local keys = {}
  for id in string.gmatch(ids, '[^,]+') do keys[#keys + 1] = ARGV[3] .. id end
  local moved = redis.call('MGET', unpack(keys))
  for i = 1, #moved do
    if moved[i] and tonumber(moved[i]) > seen then return version end
  end
end
version[5] = value
return version
";

/// Records a scoped bump: the next sequence number against each moved
/// product (living longer than any value may) and the classes that moved.
const BUMP_PRODUCTS_SCRIPT: &str = r"
local s = redis.call('INCR', KEYS[1])
for i = 4, #ARGV do redis.call('SET', ARGV[1] .. ARGV[i], s, 'EX', ARGV[2]) end
if string.find(ARGV[3], 's', 1, true) then redis.call('SET', KEYS[2], s) end
if string.find(ARGV[3], 'p', 1, true) then redis.call('SET', KEYS[3], s) end
return s
";

/// Counters of the cache, shown in `/api/v1/admin/actors/`. Lookups are
/// counted by the caller (a re-check inside a load is not a second miss);
/// Redis failures here.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
    pub bypassed: AtomicU64,
    pub db_loads: AtomicU64,
    pub single_flight_joins: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CacheStatsSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub bypassed: u64,
    pub db_loads: u64,
    pub single_flight_joins: u64,
    pub redis_available: bool,
}

/// Where the cache stood at a lookup: a value loaded after it is stored
/// under it, and the listing index built after it is valid for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub generation: String,
    /// The scoped-bump sequence number.
    pub seq: String,
    /// The last scoped bumps that moved stock across zero, and prices.
    pub stock: String,
    pub price: String,
}

impl Version {
    /// What the listing index depends on: whole bumps and the classes
    /// (stock across zero, prices); stock moves within a product's sign
    /// leave it valid.
    pub fn index_key(&self) -> String {
        format!("{}/{}/{}", self.generation, self.stock, self.price)
    }

    /// What a single flight is shared under: loads started before a
    /// scoped bump are not joined after it.
    pub fn flight_key(&self) -> String {
        format!("{}/{}", self.generation, self.seq)
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The cached value and what it depends on.
    Hit { json: String, deps: Dependencies },
    /// Nothing current cached; store the value under this version.
    Miss(Version),
    /// The cache cannot be trusted or reached; use the database only.
    Bypass,
}

/// The catalog's cache handle. Cheap to clone.
#[derive(Clone)]
pub struct CatalogCache {
    pool: RedisPool,
    namespace: String,
    timeout: Duration,
    ttl_secs: u64,
    script: Arc<Script>,
    bump_products: Arc<Script>,
    stats: Arc<CacheStats>,
    down_until: Arc<Mutex<Option<Instant>>>,
    needs_bump: Arc<AtomicBool>,
    scoped: bool,
}

impl CatalogCache {
    /// A cache whose keys start with `<prefix>:catalog:`.
    pub fn new(pool: RedisPool, prefix: &str, timeout: Duration, ttl_secs: u64) -> Self {
        Self {
            pool,
            namespace: format!("{prefix}:catalog:"),
            timeout,
            ttl_secs: ttl_secs.max(1),
            script: Arc::new(Script::new(GET_SCRIPT)),
            bump_products: Arc::new(Script::new(BUMP_PRODUCTS_SCRIPT)),
            stats: Arc::default(),
            down_until: Arc::default(),
            needs_bump: Arc::default(),
            scoped: true,
        }
    }

    /// With `false`, every write makes everything stale (a whole bump), as
    /// instances from before scoped invalidation expect: for an upgrade
    /// from such a version, until every instance runs this one
    /// (`catalog.scoped_invalidation`).
    pub fn with_scoped_invalidation(mut self, scoped: bool) -> Self {
        self.scoped = scoped;
        self
    }

    /// Whether writes that only move stock or prices bump only what they
    /// touch.
    pub fn scoped_invalidation(&self) -> bool {
        self.scoped
    }

    /// How long a cached value lives.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }

    /// The Redis pool's connections and wait counters.
    pub fn pool_state(&self) -> bb8::State {
        self.pool.state()
    }

    /// The cache's counters.
    pub fn stats(&self) -> Arc<CacheStats> {
        Arc::clone(&self.stats)
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> CacheStatsSnapshot {
        let s = &self.stats;
        CacheStatsSnapshot {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            bypassed: s.bypassed.load(Ordering::Relaxed),
            db_loads: s.db_loads.load(Ordering::Relaxed),
            single_flight_joins: s.single_flight_joins.load(Ordering::Relaxed),
            redis_available: !self.backing_off(),
        }
    }

    fn generation_key(&self) -> String {
        format!("{}generation", self.namespace)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }

    fn backing_off(&self) -> bool {
        let guard = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        guard.is_some_and(|until| Instant::now() < until)
    }

    /// Whether this caller may use Redis now. After a failure only one
    /// caller per back-off period probes it (and pays the timeout if it is
    /// still down); everyone else goes straight to PostgreSQL.
    fn may_call(&self) -> bool {
        let mut guard = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        match *guard {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                *guard = Some(Instant::now() + BACKOFF);
                true
            }
        }
    }

    fn failed(&self, what: &str, error: &str) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            tracing::warn!(
                what,
                error,
                "catalog cache unavailable; serving from PostgreSQL"
            );
        }
        *guard = Some(Instant::now() + BACKOFF);
    }

    fn recovered(&self) {
        let mut guard = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if guard.take().is_some() {
            tracing::info!("catalog cache reachable again");
        }
    }

    async fn with_timeout<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> Option<T> {
        if !self.may_call() {
            return None;
        }
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => {
                self.recovered();
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(what, &e.to_string());
                None
            }
            Err(_) => {
                self.failed(what, "timed out");
                None
            }
        }
    }

    /// Looks `kind`/`key` up under the current version.
    #[tracing::instrument(name = "redis", skip_all, fields(db.system = "redis", db.operation = "get"))]
    pub async fn get(&self, kind: &str, key: &str) -> Lookup {
        if self.needs_bump.load(Ordering::Acquire) && !self.bump_generation().await {
            return Lookup::Bypass;
        }
        let call = async {
            let mut conn = connection(&self.pool).await?;
            let reply: Vec<String> = self
                .script
                .key(self.generation_key())
                .key(self.key("seq"))
                .key(self.key("c:stock"))
                .key(self.key("c:price"))
                .arg(format!("{}{VALUES}g", self.namespace))
                .arg(format!("{kind}:{key}"))
                .arg(self.key("p:"))
                .invoke_async(&mut *conn)
                .await?;
            anyhow::Ok(reply)
        };
        let Some(mut reply) = self.with_timeout("get", call).await else {
            return Lookup::Bypass;
        };
        let value = if reply.len() == 5 { reply.pop() } else { None };
        let [generation, seq, stock, price] = match <[String; 4]>::try_from(reply) {
            Ok(version) => version,
            Err(_) => return Lookup::Bypass,
        };
        let version = Version {
            generation,
            seq,
            stock,
            price,
        };
        let parsed = value.and_then(|value| {
            let (header, json) = value.split_once('\n')?;
            let (_, deps) = header.split_once(' ')?;
            Some((Dependencies::decode(deps)?, json.to_owned()))
        });
        match parsed {
            Some((deps, json)) => Lookup::Hit { json, deps },
            None => Lookup::Miss(version),
        }
    }

    /// Stores a value under the version its lookup saw, with what it
    /// depends on. If a write bumped the generation meanwhile, the value
    /// lands under the old generation, where no reader looks any more; if
    /// a scoped bump moved something it depends on, lookups pass it by.
    #[tracing::instrument(name = "redis", skip_all, fields(db.system = "redis", db.operation = "put"))]
    pub async fn put(
        &self,
        version: &Version,
        kind: &str,
        key: &str,
        deps: &Dependencies,
        json: &str,
    ) {
        let full_key = format!(
            "{}{VALUES}g{}:{kind}:{key}",
            self.namespace, version.generation
        );
        let value = format!("{} {}\n{json}", version.seq, deps.encode());
        let call = async {
            let mut conn = connection(&self.pool).await?;
            redis::cmd("SET")
                .arg(&full_key)
                .arg(value)
                .arg("EX")
                .arg(self.ttl_secs)
                .query_async::<()>(&mut *conn)
                .await?;
            anyhow::Ok(())
        };
        self.with_timeout("put", call).await;
    }

    /// Makes stale every cached value that shows one of `moved`'s products
    /// or hangs on what moved. Returns whether Redis took the bump; if
    /// not, this instance bypasses the cache until a whole bump succeeds.
    #[tracing::instrument(name = "redis", skip_all, fields(db.system = "redis", db.operation = "bump_products"))]
    pub async fn bump_products(&self, moved: &ProductsMoved) -> bool {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let flags = moved.flags();
        // Product markers outlive any value stored before them.
        let marker_ttl = self.ttl_secs.saturating_mul(2);
        let call = async {
            let mut conn = connection(&self.pool).await?;
            let mut invocation = self.bump_products.prepare_invoke();
            invocation
                .key(self.key("seq"))
                .key(self.key("c:stock"))
                .key(self.key("c:price"))
                .arg(self.key("p:"))
                .arg(marker_ttl)
                .arg(flags);
            for id in &moved.ids {
                invocation.arg(id.to_string());
            }
            invocation.invoke_async::<i64>(&mut *conn).await?;
            anyhow::Ok(())
        };
        let bumped = self.with_timeout("bump products", call).await.is_some();
        if !bumped {
            // Not knowing what Redis holds now, only a whole bump helps.
            self.needs_bump.store(true, Ordering::Release);
        }
        bumped
    }

    /// Makes every cached value stale. Returns whether Redis took the bump;
    /// if not, this instance bypasses the cache until a bump succeeds.
    #[tracing::instrument(name = "redis", skip_all, fields(db.system = "redis", db.operation = "bump_generation"))]
    pub async fn bump_generation(&self) -> bool {
        self.needs_bump.store(true, Ordering::Release);
        // The bump must reach Redis even during a back-off, or a recovered
        // Redis would serve values older than the write.
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let call = async {
            let mut conn = connection(&self.pool).await?;
            redis::cmd("INCR")
                .arg(self.generation_key())
                .query_async::<i64>(&mut *conn)
                .await?;
            anyhow::Ok(())
        };
        let bumped = self.with_timeout("bump", call).await.is_some();
        if bumped {
            self.needs_bump.store(false, Ordering::Release);
        }
        bumped
    }
}
