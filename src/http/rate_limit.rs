//! Fixed-window rate limits counted in Redis, shared by every instance. If
//! Redis is down the limiter fails open (logged and counted): availability
//! of the shop beats throttling, and argon2's cost still bounds guessing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use redis::Script;
use serde::Serialize;

use super::error::ApiError;
use crate::store::redis::{connection, RedisPool};

/// Increments the window counter, starting the window on the first hit, and
/// returns the count and the milliseconds left in the window.
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// A limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limit (or Redis unreachable).
    Allowed,
    /// Over the limit until the window ends.
    Limited { retry_after_secs: u64 },
}

/// Counters of the limiter's own health.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RateLimitStats {
    /// Redis calls that failed or timed out (the request was let through).
    pub redis_errors: u64,
    /// Requests refused with 429.
    pub limited: u64,
    /// Requests counted and let through.
    pub allowed: u64,
}

/// Redis-backed fixed-window limiter with keys namespaced by the instance prefix.
#[derive(Clone)]
pub struct RateLimiter {
    pool: RedisPool,
    prefix: String,
    timeout: Duration,
    /// The window every limit is counted over.
    window: Duration,
    script: Arc<Script>,
    redis_errors: Arc<AtomicU64>,
    limited: Arc<AtomicU64>,
    allowed: Arc<AtomicU64>,
}

impl RateLimiter {
    /// A limiter over `pool` counting in windows of `window`; every key
    /// starts with `prefix`.
    pub fn new(pool: RedisPool, prefix: &str, timeout: Duration, window: Duration) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
            timeout,
            window,
            script: Arc::new(Script::new(HIT_SCRIPT)),
            redis_errors: Arc::default(),
            limited: Arc::default(),
            allowed: Arc::default(),
        }
    }

    /// Counts one hit on `scope`/`subject` and says whether it is allowed.
    pub async fn hit(&self, scope: &str, subject: &str, limit: u32, window: Duration) -> Verdict {
        let key = format!("{}:ratelimit:{scope}:{subject}", self.prefix);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let call = async {
            let mut conn = connection(&self.pool).await?;
            let (count, ttl_ms): (u64, i64) = self
                .script
                .key(&key)
                .arg(window_ms)
                .invoke_async(&mut *conn)
                .await?;
            anyhow::Ok((count, ttl_ms))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((count, ttl_ms))) if count > u64::from(limit) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                let ttl_ms = u64::try_from(ttl_ms).unwrap_or(window_ms);
                Verdict::Limited {
                    retry_after_secs: ttl_ms.div_ceil(1000).max(1),
                }
            }
            Ok(Ok(_)) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                Verdict::Allowed
            }
            Ok(Err(e)) => self.fail_open(&e.to_string()),
            Err(_) => self.fail_open("timed out"),
        }
    }

    fn fail_open(&self, why: &str) -> Verdict {
        self.redis_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            error = why,
            "rate limiter cannot reach Redis; allowing the request"
        );
        Verdict::Allowed
    }

    /// Whether Redis answers PING within the timeout.
    pub async fn ping(&self) -> Result<(), String> {
        let call = async {
            let mut conn = connection(&self.pool).await?;
            redis::cmd("PING").query_async::<String>(&mut *conn).await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// The Redis pool's connections and wait counters.
    pub fn pool_state(&self) -> bb8::State {
        self.pool.state()
    }

    /// The limiter's counters.
    pub fn stats(&self) -> RateLimitStats {
        RateLimitStats {
            redis_errors: self.redis_errors.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
            allowed: self.allowed.load(Ordering::Relaxed),
        }
    }
}

/// The client's address without its port, so that one client is one key
/// whatever connection it uses.
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    let forwarded = trust_forwarded_for
        .then(|| {
            req.connection_info()
                .realip_remote_addr()
                .map(str::to_owned)
        })
        .flatten();
    let raw = forwarded.or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
    match raw {
        Some(raw) => raw
            .parse::<SocketAddr>()
            .map(|a| a.ip().to_string())
            .or_else(|_| raw.parse::<IpAddr>().map(|ip| ip.to_string()))
            .unwrap_or(raw),
        None => "unknown".into(),
    }
}

/// Counts a hit on each `(scope, subject, limit)`; the first over its limit
/// answers 429 with the time left in its window.
pub async fn throttle(limiter: &RateLimiter, checks: &[(&str, &str, u32)]) -> Result<(), ApiError> {
    for &(scope, subject, limit) in checks {
        if let Verdict::Limited { retry_after_secs } =
            limiter.hit(scope, subject, limit, limiter.window).await
        {
            tracing::warn!(scope, "rate limit reached");
            return Err(ApiError::RateLimited { retry_after_secs });
        }
    }
    Ok(())
}
