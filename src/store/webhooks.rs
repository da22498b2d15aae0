//! SQL of the webhooks database: endpoints (subscriptions) and deliveries,
//! a durable job queue claimed under a lease whose token fences a worker
//! that lost it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::database::commit_without_flush;

/// A subscription, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub is_active: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, description, is_active, secret, previous_secret, \
     previous_expires_at, failing_since, disabled_reason, disabled_at, created_at, updated_at";

/// A new subscription.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    pub is_active: bool,
    pub secret: &'a str,
}

/// Changes to a subscription; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub is_active: Option<bool>,
}

/// One delivery, as its log shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_response: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, status, attempts, \
     next_attempt_at, last_attempt_at, last_status_code, last_response, last_error, created_at, completed_at";

/// A delivery to make: one event for one endpoint.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub body: String,
}

/// A delivery a worker has claimed, with what it needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub body: String,
    pub attempts: i32,
    pub lease_token: Uuid,
    pub url: String,
    pub secret: String,
    /// The pre-rotation secret while it still signs.
    pub previous_secret: Option<String>,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub status_code: Option<i32>,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// Creates a subscription.
pub async fn create_endpoint(
    pool: &PgPool,
    e: &NewEndpoint<'_>,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO endpoints (id, url, events, description, is_active, secret) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(e.id)
    .bind(e.url)
    .bind(e.events)
    .bind(e.description)
    .bind(e.is_active)
    .bind(e.secret)
    .fetch_one(pool)
    .await
}

/// A page of subscriptions, oldest first, and how many there are.
pub async fn list_endpoints(
    pool: &PgPool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EndpointRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints ORDER BY created_at, id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM endpoints")
        .fetch_one(pool)
        .await?;
    Ok((rows, count))
}

/// One subscription.
pub async fn get_endpoint(pool: &PgPool, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Every active subscription (what the fan-out matches events against).
pub async fn active_endpoints(pool: &PgPool) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE is_active ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
}

/// Applies `patch`. Re-activating an endpoint clears why it was disabled
/// and its failing streak.
pub async fn update_endpoint(
    pool: &PgPool,
    id: Uuid,
    patch: &EndpointPatch,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE endpoints SET url = COALESCE($2, url), events = COALESCE($3, events), \
           description = COALESCE($4, description), is_active = COALESCE($5, is_active), \
           disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END, \
           disabled_at = CASE WHEN $5 THEN NULL ELSE disabled_at END, \
           failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END, \
           updated_at = now() \
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(id)
    .bind(patch.url.as_deref())
    .bind(patch.events.as_deref())
    .bind(patch.description.as_deref())
    .bind(patch.is_active)
    .fetch_optional(pool)
    .await
}

/// Deletes a subscription and its deliveries; `false` if there was none.
pub async fn delete_endpoint(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM endpoints WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the signing secret; the current one keeps signing beside it
/// for `overlap_secs`.
pub async fn rotate_secret(
    pool: &PgPool,
    id: Uuid,
    secret: &str,
    overlap_secs: f64,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE endpoints SET previous_secret = secret, secret = $2, \
           previous_expires_at = now() + make_interval(secs => $3), updated_at = now() \
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(id)
    .bind(secret)
    .bind(overlap_secs)
    .fetch_optional(pool)
    .await
}

/// Writes deliveries, skipping any (endpoint, event) already written (a
/// fan-out that ran twice, or on two instances) and any endpoint disabled
/// since the fan-out read it (its row lock orders this against
/// `disable_endpoint`, so no delivery is left pending behind a disabled
/// endpoint); how many were new.
pub async fn insert_deliveries(
    pool: &PgPool,
    deliveries: &[NewDelivery],
) -> Result<u64, sqlx::Error> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = deliveries.iter().map(|_| Uuid::new_v4()).collect();
    let endpoints: Vec<Uuid> = deliveries.iter().map(|d| d.endpoint_id).collect();
    let events: Vec<Uuid> = deliveries.iter().map(|d| d.event_id).collect();
    let types: Vec<&str> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
    let bodies: Vec<&str> = deliveries.iter().map(|d| d.body.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO deliveries (id, endpoint_id, event_id, event_type, body) \
         SELECT u.id, u.endpoint_id, u.event_id, u.event_type, u.body \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) \
              AS u (id, endpoint_id, event_id, event_type, body) \
         JOIN (SELECT id FROM endpoints WHERE id = ANY($2) AND is_active FOR SHARE) e \
           ON e.id = u.endpoint_id \
         ON CONFLICT (endpoint_id, event_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&endpoints)
    .bind(&events)
    .bind(&types)
    .bind(&bodies)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Claims up to `limit` of the most overdue pending deliveries of active
/// endpoints for `lease_secs`, each with a fresh lease token. The claim is
/// not flushed before it answers: one lost to a crash is claimed again.
pub async fn claim(
    pool: &PgPool,
    lease_secs: f64,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    commit_without_flush(&mut tx).await?;
    let claimed = sqlx::query_as(
        "UPDATE deliveries d SET locked_until = now() + make_interval(secs => $1), \
           lease_token = gen_random_uuid(), attempts = d.attempts + 1 \
         FROM endpoints e \
         WHERE d.id IN (SELECT x.id FROM deliveries x JOIN endpoints y ON y.id = x.endpoint_id \
                        WHERE x.status = 'pending' AND x.next_attempt_at <= now() AND y.is_active \
                          AND (x.locked_until IS NULL OR x.locked_until < now()) \
                        ORDER BY x.next_attempt_at LIMIT $2 FOR UPDATE OF x SKIP LOCKED) \
           AND e.id = d.endpoint_id \
         RETURNING d.id, d.endpoint_id, d.event_id, d.body, d.attempts, d.lease_token, e.url, e.secret, \
           CASE WHEN e.previous_expires_at > now() THEN e.previous_secret END AS previous_secret",
    )
    .bind(lease_secs)
    .bind(limit.max(1))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Records 2xx answers: those deliveries succeeded and their endpoints'
/// failing streaks end. Answers how many were recorded; a delivery whose
/// lease was lost (another worker owns it) is left alone. Not flushed
/// before it answers: a success lost to a crash is delivered again.
pub async fn record_successes(
    pool: &PgPool,
    done: &[(&ClaimedDelivery, &AttemptRecord)],
) -> Result<u64, sqlx::Error> {
    if done.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = done.iter().map(|(d, _)| d.id).collect();
    let tokens: Vec<Uuid> = done.iter().map(|(d, _)| d.lease_token).collect();
    let codes: Vec<Option<i32>> = done.iter().map(|(_, a)| a.status_code).collect();
    let answers: Vec<Option<&str>> = done.iter().map(|(_, a)| a.response.as_deref()).collect();
    let mut tx = pool.begin().await?;
    commit_without_flush(&mut tx).await?;
    let endpoints: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE deliveries d SET status = 'succeeded', locked_until = NULL, lease_token = NULL, \
           last_attempt_at = now(), last_status_code = u.code, last_response = u.answer, \
           last_error = NULL, completed_at = now() \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[]) AS u (id, token, code, answer) \
         WHERE d.id = u.id AND d.lease_token = u.token \
         RETURNING d.endpoint_id",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&codes)
    .bind(&answers)
    .fetch_all(&mut *tx)
    .await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "UPDATE endpoints SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL",
    )
    .bind(&endpoints)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(endpoints.len() as u64)
}

/// Records a failed attempt: due again after `retry_after_ms`, or
/// `failed` when `None` or when its endpoint was disabled meanwhile (an
/// attempt in flight while another worker disabled it). Starts the endpoint's failing streak if none is
/// running and answers when it started (`None` when the lease was lost).
pub async fn record_failure(
    pool: &PgPool,
    d: &ClaimedDelivery,
    attempt: &AttemptRecord,
    retry_after_ms: Option<f64>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The endpoint's row lock orders this against `disable_endpoint`: a
    // delivery is never left pending behind a disabled endpoint.
    let active: bool =
        sqlx::query_scalar("SELECT is_active FROM endpoints WHERE id = $1 FOR NO KEY UPDATE")
            .bind(d.endpoint_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(false);
    let retry_after_ms = retry_after_ms.filter(|_| active);
    let done = sqlx::query(
        "UPDATE deliveries SET \
           status = CASE WHEN $5::float8 IS NULL THEN 'failed' ELSE 'pending' END, \
           next_attempt_at = CASE WHEN $5::float8 IS NULL THEN next_attempt_at \
                                  ELSE now() + make_interval(secs => $5 / 1000.0) END, \
           completed_at = CASE WHEN $5::float8 IS NULL THEN now() END, \
           locked_until = NULL, lease_token = NULL, last_attempt_at = now(), \
           last_status_code = $3, last_response = $4, last_error = $6 \
         WHERE id = $1 AND lease_token = $2",
    )
    .bind(d.id)
    .bind(d.lease_token)
    .bind(attempt.status_code)
    .bind(attempt.response.as_deref())
    .bind(retry_after_ms)
    .bind(attempt.error.as_deref())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let since: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = $1 \
         RETURNING failing_since",
    )
    .bind(d.endpoint_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(since))
}

/// Disables an endpoint that has failed too long, saying why; its pending
/// deliveries fail with it (they can be redelivered once it is re-enabled).
pub async fn disable_endpoint(pool: &PgPool, id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE endpoints SET is_active = false, disabled_reason = $2, disabled_at = now(), \
           updated_at = now() WHERE id = $1 AND is_active",
    )
    .bind(id)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE deliveries SET status = 'failed', completed_at = now(), \
           last_error = COALESCE(last_error, 'endpoint disabled') \
         WHERE endpoint_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A page of an endpoint's deliveries, newest first, and how many it has.
pub async fn list_deliveries(
    pool: &PgPool,
    endpoint_id: Uuid,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DeliveryRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE endpoint_id = $1 \
           AND ($2::text IS NULL OR status = $2) \
         ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    ))
    .bind(endpoint_id)
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)",
    )
    .bind(endpoint_id)
    .bind(status)
    .fetch_one(pool)
    .await?;
    Ok((rows, count))
}

/// Makes a delivery due now, with a fresh schedule (same event id, same
/// body); `None` if the endpoint has no such delivery.
pub async fn redeliver(
    pool: &PgPool,
    endpoint_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), \
           completed_at = NULL, locked_until = NULL, lease_token = NULL \
         WHERE id = $1 AND endpoint_id = $2 RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(delivery_id)
    .bind(endpoint_id)
    .fetch_optional(pool)
    .await
}

/// Deletes finished deliveries older than `before`.
pub async fn purge_deliveries(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM deliveries WHERE status <> 'pending' AND completed_at < $1")
            .bind(before)
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
