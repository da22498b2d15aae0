//! The catalog's Redis cache: cache-aside values under a generation number.
//!
//! Every key embeds the current generation; every catalog write bumps it,
//! so the next read after a write misses and reloads, without scanning or
//! deleting keys (old generations expire by TTL). If a bump fails, this
//! instance bypasses the cache until a later bump succeeds, so it never
//! serves what it may have made stale. When Redis fails, calls are skipped
//! for a short back-off and reads go to PostgreSQL; recovery is automatic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Script;
use serde::Serialize;

use crate::store::redis::{connection, RedisPool};

/// How long Redis is left alone after a failure.
const BACKOFF: Duration = Duration::from_secs(1);

/// Reads the generation and the value under it in one round trip.
const GET_SCRIPT: &str = r"
local generation = redis.call('GET', KEYS[1]) or '0'
local value = redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])
if value then return {generation, value} end
return {generation}
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

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The cached value.
    Hit(String),
    /// Nothing cached under the current generation; store the value there.
    Miss { generation: String },
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
    stats: Arc<CacheStats>,
    down_until: Arc<Mutex<Option<Instant>>>,
    needs_bump: Arc<AtomicBool>,
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
            stats: Arc::default(),
            down_until: Arc::default(),
            needs_bump: Arc::default(),
        }
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

    /// Looks `kind`/`key` up under the current generation.
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
                .arg(format!("{}g", self.namespace))
                .arg(format!("{kind}:{key}"))
                .invoke_async(&mut *conn)
                .await?;
            anyhow::Ok(reply)
        };
        match self.with_timeout("get", call).await {
            Some(mut reply) if reply.len() == 2 => Lookup::Hit(reply.pop().unwrap_or_default()),
            Some(mut reply) if reply.len() == 1 => Lookup::Miss {
                generation: reply.pop().unwrap_or_default(),
            },
            _ => Lookup::Bypass,
        }
    }

    /// Stores a value under the generation its lookup saw. If a write bumped
    /// the generation meanwhile, the value lands under the old generation,
    /// where no reader looks any more.
    #[tracing::instrument(name = "redis", skip_all, fields(db.system = "redis", db.operation = "put"))]
    pub async fn put(&self, generation: &str, kind: &str, key: &str, value: &str) {
        let full_key = format!("{}g{generation}:{kind}:{key}", self.namespace);
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
