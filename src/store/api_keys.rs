//! SQL of API keys (auth database): keys are found by the digest of their
//! secret, never by the secret, which is not stored.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A key's own row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_by, created_at";

/// A new key, with the digest of its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub digest: &'a [u8],
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Uuid,
}

/// Writes a new key.
pub async fn insert(pool: &PgPool, key: &NewApiKey<'_>) -> Result<ApiKeyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(key.id)
    .bind(key.name)
    .bind(key.prefix)
    .bind(key.digest)
    .bind(key.scopes)
    .bind(key.expires_at)
    .bind(key.created_by)
    .fetch_one(pool)
    .await
}

/// Every key, oldest first (revoked ones too).
pub async fn list(pool: &PgPool) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
}

/// One key by id.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Revokes a key (once; a revoked key stays revoked). `None` when there
/// is no such key.
pub async fn revoke(pool: &PgPool, id: Uuid) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The live key with this digest (not revoked, not expired), marking it
/// used: `last_used_at` is written at most once a minute, so a busy key
/// costs no write per request.
pub async fn use_key(pool: &PgPool, digest: &[u8]) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > now())"
    ))
    .bind(digest)
    .fetch_optional(pool)
    .await?;
    if let Some(key) = &row {
        touch(pool, key.id).await?;
    }
    Ok(row)
}

/// Records that a key was used now, unless it was within the last minute.
pub async fn touch(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
         AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
