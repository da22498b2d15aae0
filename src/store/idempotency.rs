//! Idempotency-key storage, shared by every domain that takes keys; each
//! such domain's database has its own `idempotency_keys` table. The primary
//! key `(user_id, key)` is the source of truth, never Redis.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::idempotency::{KeyRecord, SavedResponse};

/// The outcome of trying to claim a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key and must save its response.
    Claimed,
    /// Another request claimed it first.
    Existing(KeyRecord),
}

#[derive(sqlx::FromRow)]
struct Row {
    fingerprint: String,
    response_status: Option<i16>,
    response_type: Option<String>,
    response_body: Option<Vec<u8>>,
}

/// Claims `key` for `user_id`. A key whose first request died without
/// saving a response (its lock older than `stale_after`) can be claimed
/// again by the same request, so a crash never wedges a key.
pub async fn claim(
    pool: &PgPool,
    user_id: Uuid,
    key: &str,
    fingerprint: &str,
    stale_after: Duration,
) -> Result<Claim, sqlx::Error> {
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, key) DO UPDATE SET locked_at = now() \
         WHERE idempotency_keys.response_status IS NULL \
           AND idempotency_keys.fingerprint = EXCLUDED.fingerprint \
           AND idempotency_keys.locked_at < now() - make_interval(secs => $4) \
         RETURNING true",
    )
    .bind(user_id)
    .bind(key)
    .bind(fingerprint)
    .bind(stale_after.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Claimed);
    }
    let row: Row = sqlx::query_as(
        "SELECT fingerprint, response_status, response_type, response_body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_one(pool)
    .await?;
    let response = match (row.response_status, row.response_type, row.response_body) {
        (Some(status), Some(content_type), Some(body)) => Some(SavedResponse {
            status: u16::try_from(status).unwrap_or(500),
            content_type,
            body,
        }),
        _ => None,
    };
    Ok(Claim::Existing(KeyRecord {
        fingerprint: row.fingerprint,
        response,
    }))
}

/// Saves the response of the request that claimed the key.
pub async fn complete(
    pool: &PgPool,
    user_id: Uuid,
    key: &str,
    response: &SavedResponse,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_type = $4, response_body = $5 \
         WHERE user_id = $1 AND key = $2 AND response_status IS NULL",
    )
    .bind(user_id)
    .bind(key)
    .bind(i16::try_from(response.status).unwrap_or(500))
    .bind(&response.content_type)
    .bind(&response.body)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes keys older than `retention`; returns how many.
pub async fn purge(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
