//! Idempotency-key storage, shared by every domain that takes keys; each
//! such domain's database has its own `idempotency_keys` table. The primary
//! key `(user_id, key)` is the source of truth, never Redis.
//!
//! A key moves through: claimed (a lease with a fencing token) → effect
//! bound (`resource_id`, in the effect's own transaction) → response saved.
//! A crash between any two steps leaves a state that a retry resolves
//! without a second effect.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::idempotency::{
    Claim, IdempotencyKey, KeyLease, KeyRecord, KeyedRequest, SavedResponse,
};

#[derive(sqlx::FromRow)]
struct Row {
    fingerprint: String,
    response_status: Option<i16>,
    response_type: Option<String>,
    response_body: Option<Vec<u8>>,
    resource_id: Option<Uuid>,
}

/// Claims `key` for `user_id`. A key whose first request died without an
/// effect or a response (its lock older than `stale_after`, or released)
/// can be claimed again by the same request, so a crash never wedges a key;
/// a key with an effect is never claimed again.
pub async fn claim(
    pool: &PgPool,
    request: &KeyedRequest,
    stale_after: Duration,
) -> Result<Claim, sqlx::Error> {
    let (user_id, key, fingerprint) = (request.user_id, request.key.as_str(), &request.fingerprint);
    let token = Uuid::new_v4();
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, lock_token) VALUES ($1, $2, $3, $5) \
         ON CONFLICT (user_id, key) DO UPDATE SET locked_at = now(), lock_token = EXCLUDED.lock_token \
         WHERE idempotency_keys.response_status IS NULL \
           AND idempotency_keys.resource_id IS NULL \
           AND idempotency_keys.fingerprint = EXCLUDED.fingerprint \
           AND idempotency_keys.locked_at < now() - make_interval(secs => $4) \
         RETURNING true",
    )
    .bind(user_id)
    .bind(key)
    .bind(fingerprint)
    .bind(stale_after.as_secs_f64())
    .bind(token)
    .fetch_optional(pool)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Claimed(KeyLease {
            user_id,
            key: request.key.clone(),
            token,
        }));
    }
    let row: Row = sqlx::query_as(
        "SELECT fingerprint, response_status, response_type, response_body, resource_id \
         FROM idempotency_keys WHERE user_id = $1 AND key = $2",
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
            retry_after_secs: None,
        }),
        _ => None,
    };
    Ok(Claim::Existing(KeyRecord {
        fingerprint: row.fingerprint,
        response,
        resource_id: row.resource_id,
    }))
}

/// Binds the resource a claimed request created to its key, inside the
/// transaction that creates it, with the request's answer when it is
/// already known (then effect and answer commit together, and no retry
/// ever has to recover one). `false` when the lease was lost (the key was
/// re-claimed by a retry, or already has an effect): the caller must roll
/// back, so one key never has two effects.
pub async fn bind_effect(
    conn: &mut PgConnection,
    lease: &KeyLease,
    resource_id: Uuid,
    response: Option<&SavedResponse>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET resource_id = $4, \
           response_status = $5, response_type = $6, response_body = $7 \
         WHERE user_id = $1 AND key = $2 AND lock_token = $3 \
           AND resource_id IS NULL AND response_status IS NULL",
    )
    .bind(lease.user_id)
    .bind(lease.key.as_str())
    .bind(lease.token)
    .bind(resource_id)
    .bind(response.map(|r| i16::try_from(r.status).unwrap_or(500)))
    .bind(response.map(|r| r.content_type.as_str()))
    .bind(response.map(|r| r.body.as_slice()))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Saves the response of the request holding `lease`, or (without a
/// lease) the response rendered from a key's bound resource. A request
/// that lost its lease saves nothing.
pub async fn complete(
    pool: &PgPool,
    user_id: Uuid,
    key: &IdempotencyKey,
    lease_token: Option<Uuid>,
    response: &SavedResponse,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_type = $4, response_body = $5 \
         WHERE user_id = $1 AND key = $2 AND response_status IS NULL \
           AND (lock_token = $6 OR ($6 IS NULL AND resource_id IS NOT NULL))",
    )
    .bind(user_id)
    .bind(key.as_str())
    .bind(i16::try_from(response.status).unwrap_or(500))
    .bind(&response.content_type)
    .bind(&response.body)
    .bind(lease_token)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives a claimed key back without an answer (the request was shed before
/// it had an effect), so a retry may claim it at once. A key with an
/// effect stays bound to it.
pub async fn release(pool: &PgPool, lease: &KeyLease) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET lock_token = NULL, locked_at = '-infinity' \
         WHERE user_id = $1 AND key = $2 AND lock_token = $3 AND response_status IS NULL",
    )
    .bind(lease.user_id)
    .bind(lease.key.as_str())
    .bind(lease.token)
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
