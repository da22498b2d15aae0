//! SQL of the payments database: payments, the payment pool's job queue,
//! the payment's timeline, the outbox towards orders, webhook events and
//! the simulated provider's ledger.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::payments::queue::{JobKind, PaymentNotice};
use crate::domain::payments::status::PaymentStatus;

/// The constraint that keeps one live payment per order.
pub const ONE_LIVE_PER_ORDER: &str = "payments_one_live_per_order";

/// A payment's own row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `None` for a guest order's payment.
    pub user_id: Option<Uuid>,
    pub status: PaymentStatus,
    pub amount: i64,
    pub currency: String,
    pub card_token: String,
    pub card_brand: String,
    pub card_last4: String,
    pub attempts: i32,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub refund_id: Option<Uuid>,
    pub refund_failure_code: Option<String>,
    pub auto_refund: bool,
    /// What has gone back: partial refunds that succeeded, or the whole
    /// amount after a full refund.
    pub refunded_amount: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PAYMENT_COLUMNS: &str = "id, order_id, user_id, status, amount, currency, card_token, \
     card_brand, card_last4, attempts, failure_code, failure_message, refund_id, \
     refund_failure_code, auto_refund, refunded_amount, created_at, updated_at";

/// A new payment.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `None` for a guest order's payment.
    pub user_id: Option<Uuid>,
    pub amount: i64,
    pub currency: &'a str,
    pub card_token: &'a str,
    pub card_brand: &'a str,
    pub card_last4: &'a str,
}

/// One entry of a payment's timeline, as stored (sent as
/// `actors::payments::messages::PaymentEventView`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub kind: String,
    pub detail: Json<serde_json::Value>,
    pub at: DateTime<Utc>,
}

/// A job claimed by a worker, with what the provider call needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub payment_id: Uuid,
    pub kind: JobKind,
    pub attempts: i32,
    pub lease_token: Uuid,
    /// Milliseconds from enqueue to this claim.
    pub queued_ms: f64,
    pub amount: i64,
    pub currency: String,
    pub card_token: String,
    pub refund_id: Option<Uuid>,
    /// Whether the job runs a partial refund (`refund_id` names a row of
    /// `refunds`, whose amount `amount` is).
    pub partial: bool,
}

/// An outbox entry still to deliver.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub kind: PaymentNotice,
    /// The partial refund it tells of.
    pub refund_id: Option<Uuid>,
}

/// Filters of a payment listing.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub user_id: Option<Uuid>,
    pub status: Option<String>,
    pub order_id: Option<Uuid>,
}

/// Queue figures for the admin report.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct QueueFigures {
    /// Jobs not yet done (due, waiting to retry, or running).
    pub depth: i64,
    /// Jobs due now and not claimed.
    pub ready: i64,
    /// Age of the oldest job, in seconds.
    pub oldest_age_secs: f64,
    /// Outbox entries not yet acknowledged by orders.
    pub outbox_pending: i64,
    /// Outbox entries orders refused, kept for reconciliation.
    pub outbox_refused: i64,
}

/// Failed payments within a window: the customer's and the order's, with
/// the age of the oldest of each (seconds).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct RecentFailures {
    pub customer_count: i64,
    pub customer_oldest_secs: f64,
    pub order_count: i64,
    pub order_oldest_secs: f64,
}

/// The customer's and the order's payments that failed in the last
/// `window_secs`.
pub async fn recent_failures(
    pool: &PgPool,
    // `None` for a guest: then the "customer" is the order itself.
    user_id: Option<Uuid>,
    order_id: Uuid,
    window_secs: f64,
) -> Result<RecentFailures, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS customer_count, \
           COALESCE(EXTRACT(EPOCH FROM now() - min(updated_at))::float8, 0) AS customer_oldest_secs, \
           count(*) FILTER (WHERE order_id = $2) AS order_count, \
           COALESCE(EXTRACT(EPOCH FROM now() - min(updated_at) FILTER (WHERE order_id = $2))::float8, 0) \
             AS order_oldest_secs \
         FROM payments WHERE (user_id = $1 OR ($1::uuid IS NULL AND order_id = $2)) AND status = 'failed' \
           AND updated_at > now() - make_interval(secs => $3)",
    )
    .bind(user_id)
    .bind(order_id)
    .bind(window_secs)
    .fetch_one(pool)
    .await
}

/// Writes a payment in `processing`, its charge job and its first event.
/// Fails on [`ONE_LIVE_PER_ORDER`] if the order has a live payment.
pub async fn insert_payment(
    conn: &mut PgConnection,
    p: &NewPayment<'_>,
) -> Result<PaymentRow, sqlx::Error> {
    let row: PaymentRow = sqlx::query_as(&format!(
        "INSERT INTO payments (id, order_id, user_id, status, amount, currency, card_token, card_brand, card_last4) \
         VALUES ($1, $2, $3, 'processing', $4, $5, $6, $7, $8) RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(p.id)
    .bind(p.order_id)
    .bind(p.user_id)
    .bind(p.amount)
    .bind(p.currency)
    .bind(p.card_token)
    .bind(p.card_brand)
    .bind(p.card_last4)
    .fetch_one(&mut *conn)
    .await?;
    enqueue(conn, p.id, JobKind::Charge).await?;
    insert_event(
        conn,
        p.id,
        "created",
        serde_json::json!({"amount": p.amount, "currency": p.currency}),
    )
    .await?;
    Ok(row)
}

/// Adds a job and wakes listening workers on every instance.
pub async fn enqueue(
    conn: &mut PgConnection,
    payment_id: Uuid,
    kind: JobKind,
) -> Result<(), sqlx::Error> {
    // At most one job of a kind per payment: a second ask is the first.
    sqlx::query(
        "INSERT INTO payment_jobs (payment_id, kind) VALUES ($1, $2) \
         ON CONFLICT (payment_id, kind) WHERE refund_id IS NULL DO NOTHING",
    )
    .bind(payment_id)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    // Delivered at commit, and only then.
    sqlx::query("SELECT pg_notify('payment_jobs', '')")
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds an entry to a payment's timeline.
pub async fn insert_event(
    conn: &mut PgConnection,
    payment_id: Uuid,
    kind: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO payment_events (payment_id, kind, detail) VALUES ($1, $2, $3)")
        .bind(payment_id)
        .bind(kind)
        .bind(Json(detail))
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds an outbox entry for the orders service.
pub async fn insert_outbox(
    conn: &mut PgConnection,
    payment_id: Uuid,
    order_id: Uuid,
    kind: PaymentNotice,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO payment_outbox (payment_id, order_id, kind) VALUES ($1, $2, $3)")
        .bind(payment_id)
        .bind(order_id)
        .bind(kind)
        .execute(conn)
        .await?;
    Ok(())
}

/// A payment by id.
pub async fn get_payment(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The order's captured payment (succeeded), if it has one.
pub async fn captured_payment_of(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 AND status = 'succeeded'"
    ))
    .bind(order_id)
    .fetch_optional(pool)
    .await
}

/// A payment by id, locked for a status change.
pub async fn lock_payment(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// What a status change writes besides the status.
#[derive(Debug, Clone, Default)]
pub struct StatusChange<'a> {
    pub attempts: Option<i32>,
    pub failure: Option<(&'a str, &'a str)>,
    pub refund_id: Option<Uuid>,
    pub refund_failure_code: Option<&'a str>,
    pub auto_refund: Option<bool>,
}

/// Writes a new status (already decided by the status machine on a locked
/// row) and what goes with it.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    change: &StatusChange<'_>,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE payments SET status = $2, attempts = COALESCE($3, attempts), \
           failure_code = COALESCE($4, failure_code), failure_message = COALESCE($5, failure_message), \
           refund_id = COALESCE($6, refund_id), refund_failure_code = COALESCE($7, refund_failure_code), \
           auto_refund = COALESCE($8, auto_refund), updated_at = now(), \
           refunded_amount = CASE WHEN $2 = 'refunded' THEN amount ELSE refunded_amount END \
         WHERE id = $1 RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(id)
    .bind(status)
    .bind(change.attempts)
    .bind(change.failure.map(|f| f.0))
    .bind(change.failure.map(|f| f.1))
    .bind(change.refund_id)
    .bind(change.refund_failure_code)
    .bind(change.auto_refund)
    .fetch_one(conn)
    .await
}

/// Records an attempt count without a status change.
pub async fn set_attempts(
    conn: &mut PgConnection,
    id: Uuid,
    attempts: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET attempts = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(attempts)
        .execute(conn)
        .await?;
    Ok(())
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, f: &PaymentFilter) {
    qb.push(" WHERE true");
    if let Some(user) = f.user_id {
        qb.push(" AND user_id = ").push_bind(user);
    }
    if let Some(status) = &f.status {
        qb.push(" AND status = ").push_bind(status.clone());
    }
    if let Some(order) = f.order_id {
        qb.push(" AND order_id = ").push_bind(order);
    }
}

/// One page of payments, newest first, and the total.
pub async fn list_payments(
    pool: &PgPool,
    f: &PaymentFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PaymentRow>, i64), sqlx::Error> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM payments");
    push_filters(&mut count, f);
    let count: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut page = QueryBuilder::new(format!("SELECT {PAYMENT_COLUMNS} FROM payments"));
    push_filters(&mut page, f);
    page.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    Ok((page.build_query_as().fetch_all(pool).await?, count))
}

/// A payment's timeline, oldest first.
pub async fn events(pool: &PgPool, payment_id: Uuid) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as("SELECT kind, detail, at FROM payment_events WHERE payment_id = $1 ORDER BY id")
        .bind(payment_id)
        .fetch_all(pool)
        .await
}

/// Claims up to `limit` of the oldest due jobs whose lease (if any) has
/// run out, each under a new lease, with its payment's amount and card,
/// and records each attempt's start on its payment's timeline.
///
/// The claim commits without waiting for its WAL flush
/// (`synchronous_commit = off`): a claim lost to a server crash only means
/// the job is claimed again, which the lease and the provider's
/// idempotency key make safe. Outcomes are committed durably.
pub async fn claim_jobs(
    pool: &PgPool,
    lease_secs: f64,
    limit: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    super::database::commit_without_flush(&mut tx).await?;
    let jobs: Vec<ClaimedJob> = sqlx::query_as(
        "UPDATE payment_jobs j SET locked_until = now() + make_interval(secs => $1), \
           lease_token = gen_random_uuid(), attempts = j.attempts + 1, \
           started_at = COALESCE(j.started_at, now()) \
         FROM payments p \
         WHERE j.id IN (SELECT id FROM payment_jobs \
                        WHERE run_at <= now() AND (locked_until IS NULL OR locked_until < now()) \
                        ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
           AND p.id = j.payment_id \
         RETURNING j.id, j.payment_id, j.kind, j.attempts, j.lease_token, \
           (EXTRACT(EPOCH FROM (clock_timestamp() - j.created_at)) * 1000)::float8 AS queued_ms, \
           COALESCE((SELECT r.amount FROM refunds r WHERE r.id = j.refund_id), p.amount) AS amount, \
           p.currency, p.card_token, COALESCE(j.refund_id, p.refund_id) AS refund_id, \
           j.refund_id IS NOT NULL AS partial",
    )
    .bind(lease_secs)
    .bind(limit.max(1))
    .fetch_all(&mut *tx)
    .await?;
    for job in &jobs {
        insert_event(
            &mut tx,
            job.payment_id,
            "attempt_started",
            serde_json::json!({"kind": job.kind, "attempt": job.attempts, "queued_ms": job.queued_ms}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(jobs)
}

/// Deletes a finished job if this worker still holds its lease; `false`
/// when the lease was lost (the job belongs to another worker now).
pub async fn finish_job(
    conn: &mut PgConnection,
    id: i64,
    lease: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM payment_jobs WHERE id = $1 AND lease_token = $2")
        .bind(id)
        .bind(lease)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts a job back to run after `delay_secs` if this worker still holds
/// its lease; `false` when the lease was lost.
pub async fn retry_job(
    conn: &mut PgConnection,
    id: i64,
    lease: Uuid,
    delay_secs: f64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payment_jobs SET run_at = now() + make_interval(secs => $3), \
           locked_until = NULL, lease_token = NULL \
         WHERE id = $1 AND lease_token = $2",
    )
    .bind(id)
    .bind(lease)
    .bind(delay_secs)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a payment's job of `kind` whoever holds it (a webhook settled
/// the payment first).
pub async fn drop_job(
    conn: &mut PgConnection,
    payment_id: Uuid,
    kind: JobKind,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM payment_jobs WHERE payment_id = $1 AND kind = $2 AND refund_id IS NULL",
    )
    .bind(payment_id)
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `limit` undelivered outbox entries, oldest first, locked so that
/// another instance's relay skips them.
pub async fn lock_outbox(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, payment_id, order_id, kind, refund_id FROM payment_outbox \
         WHERE delivered_at IS NULL AND refused_at IS NULL \
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The payment's undelivered `kind` entry, locked; waits for a relay that
/// holds it, so that the caller sees what that relay did.
pub async fn lock_outbox_entry(
    conn: &mut PgConnection,
    payment_id: Uuid,
    kind: PaymentNotice,
) -> Result<Option<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, payment_id, order_id, kind, refund_id FROM payment_outbox \
         WHERE payment_id = $1 AND kind = $2 AND delivered_at IS NULL AND refused_at IS NULL \
         ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .bind(payment_id)
    .bind(kind)
    .fetch_optional(conn)
    .await
}

/// Keeps an entry the orders service refused, with its reason, out of the
/// relay's way.
pub async fn outbox_refused(
    conn: &mut PgConnection,
    id: i64,
    refusal: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_outbox SET attempts = attempts + 1, refused_at = now(), refusal = $2 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(refusal)
    .execute(conn)
    .await?;
    Ok(())
}

/// An outcome the orders service refused, as the admin report lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RefusedOutcome {
    pub id: i64,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// What orders was to hear: `refund_started`, `refund_succeeded`, ….
    #[schema(value_type = String)]
    pub kind: PaymentNotice,
    /// Why orders refused it.
    pub refusal: String,
    pub refused_at: DateTime<Utc>,
}

/// The oldest `limit` refused outcomes still waiting for reconciliation.
pub async fn refused_outcomes(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<RefusedOutcome>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, payment_id, order_id, kind, COALESCE(refusal, '') AS refusal, refused_at \
         FROM payment_outbox WHERE delivered_at IS NULL AND refused_at IS NOT NULL \
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks an outbox entry delivered, or counts a failed delivery.
pub async fn outbox_attempted(
    conn: &mut PgConnection,
    id: i64,
    delivered: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_outbox SET attempts = attempts + 1, \
           delivered_at = CASE WHEN $2 THEN now() ELSE NULL END WHERE id = $1",
    )
    .bind(id)
    .bind(delivered)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a webhook event id; `false` when it was seen before.
pub async fn record_webhook(
    conn: &mut PgConnection,
    event_id: &str,
    kind: &str,
    payment_id: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO webhook_events (event_id, kind, payment_id) VALUES ($1, $2, $3) \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(event_id)
    .bind(kind)
    .bind(payment_id)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// The queue's figures now.
pub async fn queue_figures(pool: &PgPool) -> Result<QueueFigures, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM payment_jobs) AS depth, \
           (SELECT count(*) FROM payment_jobs WHERE run_at <= now() \
              AND (locked_until IS NULL OR locked_until < now())) AS ready, \
           COALESCE((SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM payment_jobs), 0) AS oldest_age_secs, \
           (SELECT count(*) FROM payment_outbox WHERE delivered_at IS NULL AND refused_at IS NULL) AS outbox_pending, \
           (SELECT count(*) FROM payment_outbox WHERE delivered_at IS NULL AND refused_at IS NOT NULL) AS outbox_refused",
    )
    .fetch_one(pool)
    .await
}

/// The simulated provider's ledger entry for `key`, if it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub outcome: String,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Whether the simulated provider's ledger leaves room to refund
/// `amount` of the payment: a call it recorded already (a retry), or what
/// it charged less what it refunded covers it.
pub async fn ledger_refundable(
    pool: &PgPool,
    payment_id: Uuid,
    key: Uuid,
    amount: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM provider_ledger WHERE idempotency_key = $2) \
             OR coalesce((SELECT sum(amount) FROM provider_ledger \
                          WHERE payment_id = $1 AND kind = 'charge' AND outcome = 'succeeded'), 0) \
              - coalesce((SELECT sum(amount) FROM provider_ledger \
                          WHERE payment_id = $1 AND kind = 'refund' AND outcome = 'succeeded'), 0) >= $3",
    )
    .bind(payment_id)
    .bind(key)
    .bind(amount)
    .fetch_one(pool)
    .await
}

/// Records a provider outcome under `key` unless one exists; returns the
/// outcome that stands (the first).
#[allow(clippy::too_many_arguments)]
pub async fn ledger_record(
    pool: &PgPool,
    key: Uuid,
    kind: &str,
    payment_id: Uuid,
    amount: i64,
    currency: &str,
    outcome: &str,
    code: Option<&str>,
    message: Option<&str>,
) -> Result<LedgerRow, sqlx::Error> {
    sqlx::query_as(
        "WITH inserted AS ( \
           INSERT INTO provider_ledger (idempotency_key, kind, payment_id, amount, currency, outcome, code, message) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING \
           RETURNING outcome, code, message) \
         SELECT outcome, code, message FROM inserted \
         UNION ALL SELECT outcome, code, message FROM provider_ledger WHERE idempotency_key = $1 \
         LIMIT 1",
    )
    .bind(key)
    .bind(kind)
    .bind(payment_id)
    .bind(amount)
    .bind(currency)
    .bind(outcome)
    .bind(code)
    .bind(message)
    .fetch_one(pool)
    .await
}
