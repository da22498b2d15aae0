//! The bb8 Redis pool. Built without connecting, so an instance starts (and
//! serves from PostgreSQL) while Redis is down, and recovers by itself.

use std::time::Duration;

use anyhow::Context as _;
use bb8_redis::RedisConnectionManager;

use crate::config::RedisSettings;

/// A pool of Redis connections.
pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// A pool that connects on demand and gives up after `timeout_ms`.
pub fn pool(settings: &RedisSettings) -> anyhow::Result<RedisPool> {
    let manager =
        RedisConnectionManager::new(settings.url.as_str()).context("redis.url is malformed")?;
    Ok(bb8::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(None)
        .connection_timeout(Duration::from_millis(settings.timeout_ms))
        .retry_connection(false)
        .build_unchecked(manager))
}

/// A connection from `pool`, or why there is none (down, slow, exhausted).
pub async fn connection(
    pool: &RedisPool,
) -> anyhow::Result<bb8::PooledConnection<'_, RedisConnectionManager>> {
    pool.get()
        .await
        .map_err(|e| anyhow::anyhow!("redis pool: {e}"))
}
