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

impl StatusChange<'_> {
    /// `row` as it is once it took `status` with this change: what
    /// [`write_payments`] then stores. Only fields the change names move;
    /// a full refund gives back the whole amount.
    pub fn apply_to(&self, row: &mut PaymentRow, status: PaymentStatus) {
        row.status = status;
        if let Some(n) = self.attempts {
            row.attempts = n;
        }
        if let Some((code, message)) = self.failure {
            row.failure_code = Some(code.to_owned());
            row.failure_message = Some(message.to_owned());
        }
        if let Some(id) = self.refund_id {
            row.refund_id = Some(id);
        }
        if let Some(code) = self.refund_failure_code {
            row.refund_failure_code = Some(code.to_owned());
        }
        if let Some(auto) = self.auto_refund {
            row.auto_refund = auto;
        }
        if status == PaymentStatus::Refunded {
            row.refunded_amount = row.amount;
        }
    }
}

/// Locks the payments `ids` (in id order, so two batches never wait on
/// each other in a cycle) and reads them.
pub async fn lock_payments(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Stores the rows, locked and changed by the caller (the status machine
/// decided on them), in one statement; returns them as stored. At most
/// one row per payment.
pub async fn write_payments(
    conn: &mut PgConnection,
    rows: &[PaymentRow],
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
    let failure_codes: Vec<Option<&str>> = rows.iter().map(|r| r.failure_code.as_deref()).collect();
    let failure_messages: Vec<Option<&str>> =
        rows.iter().map(|r| r.failure_message.as_deref()).collect();
    let refund_ids: Vec<Option<Uuid>> = rows.iter().map(|r| r.refund_id).collect();
    let refund_failure_codes: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.refund_failure_code.as_deref())
        .collect();
    let auto_refunds: Vec<bool> = rows.iter().map(|r| r.auto_refund).collect();
    let refunded: Vec<i64> = rows.iter().map(|r| r.refunded_amount).collect();
    // The new values' names differ from the table's, so RETURNING's
    // columns name the table's row alone.
    sqlx::query_as(&format!(
        "UPDATE payments SET status = u.new_status, attempts = u.new_attempts, \
           failure_code = u.new_failure_code, failure_message = u.new_failure_message, \
           refund_id = u.new_refund_id, refund_failure_code = u.new_refund_failure_code, \
           auto_refund = u.new_auto_refund, refunded_amount = u.new_refunded_amount, \
           updated_at = now() \
         FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::uuid[], \
                     $7::text[], $8::bool[], $9::int8[]) \
           AS u(payment_id, new_status, new_attempts, new_failure_code, new_failure_message, \
                new_refund_id, new_refund_failure_code, new_auto_refund, new_refunded_amount) \
         WHERE payments.id = u.payment_id RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(ids)
    .bind(statuses)
    .bind(attempts)
    .bind(failure_codes)
    .bind(failure_messages)
    .bind(refund_ids)
    .bind(refund_failure_codes)
    .bind(auto_refunds)
    .bind(refunded)
    .fetch_all(conn)
    .await
}

/// An entry of a payment's timeline, to be written.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub payment_id: Uuid,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// An outbox entry towards orders, to be written.
#[derive(Debug, Clone, Copy)]
pub struct NewNotice {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub kind: PaymentNotice,
}

/// Appends timeline entries, outbox entries towards orders and public
/// events (`event_outbox`), each in the order given, in one statement.
pub async fn append_records(
    conn: &mut PgConnection,
    timeline: &[NewEvent],
    outbox: &[NewNotice],
    public: &[crate::domain::events::Event],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH t AS (INSERT INTO payment_events (payment_id, kind, detail) \
                    SELECT p, k, d::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) \
                      WITH ORDINALITY AS x(p, k, d, n) ORDER BY n), \
              o AS (INSERT INTO payment_outbox (payment_id, order_id, kind) \
                    SELECT p, r, k FROM unnest($4::uuid[], $5::uuid[], $6::text[]) \
                      WITH ORDINALITY AS x(p, r, k, n) ORDER BY n) \
         INSERT INTO event_outbox (id, type, subject, data, occurred_at) \
           SELECT i, y, s, d::jsonb, at FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], \
                                                    $11::timestamptz[]) \
             WITH ORDINALITY AS x(i, y, s, d, at, n) ORDER BY n",
    )
    .bind(timeline.iter().map(|e| e.payment_id).collect::<Vec<_>>())
    .bind(timeline.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(timeline.iter().map(|e| e.detail.to_string()).collect::<Vec<_>>())
    .bind(outbox.iter().map(|o| o.payment_id).collect::<Vec<_>>())
    .bind(outbox.iter().map(|o| o.order_id).collect::<Vec<_>>())
    .bind(outbox.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>())
    .bind(public.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(public.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(public.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>())
    .bind(public.iter().map(|e| e.data.to_string()).collect::<Vec<_>>())
    .bind(public.iter().map(|e| e.time).collect::<Vec<_>>())
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
        "WITH claimed AS ( \
           UPDATE payment_jobs j SET locked_until = now() + make_interval(secs => $1), \
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
             j.refund_id IS NOT NULL AS partial), \
         started AS ( \
           INSERT INTO payment_events (payment_id, kind, detail) \
           SELECT payment_id, 'attempt_started', \
             jsonb_build_object('kind', kind, 'attempt', attempts, 'queued_ms', queued_ms) \
           FROM claimed ORDER BY id) \
         SELECT * FROM claimed",
    )
    .bind(lease_secs)
    .bind(limit.max(1))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(jobs)
}

/// What becomes of a claimed job once its attempt is over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobEnd {
    /// Done: the job is deleted.
    Finished,
    /// Run again after this many seconds.
    RetryAfter(f64),
}

/// Ends the claimed jobs `(id, lease token, end)` that this worker still
/// holds, in one statement, and returns the ids it held: a job whose
/// lease was lost belongs to another worker, and nothing of it is
/// written (the fence).
pub async fn end_jobs(
    conn: &mut PgConnection,
    jobs: &[(i64, Uuid, JobEnd)],
) -> Result<Vec<i64>, sqlx::Error> {
    let ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
    let leases: Vec<Uuid> = jobs.iter().map(|j| j.1).collect();
    let delays: Vec<Option<f64>> = jobs
        .iter()
        .map(|j| match j.2 {
            JobEnd::Finished => None,
            JobEnd::RetryAfter(secs) => Some(secs),
        })
        .collect();
    sqlx::query_scalar(
        "WITH u AS (SELECT * FROM unnest($1::int8[], $2::uuid[], $3::float8[]) AS u(id, lease, delay)), \
              retried AS (UPDATE payment_jobs j SET run_at = now() + make_interval(secs => u.delay), \
                            locked_until = NULL, lease_token = NULL \
                          FROM u WHERE u.delay IS NOT NULL AND j.id = u.id AND j.lease_token = u.lease \
                          RETURNING j.id), \
              finished AS (DELETE FROM payment_jobs j USING u \
                           WHERE u.delay IS NULL AND j.id = u.id AND j.lease_token = u.lease \
                           RETURNING j.id) \
         SELECT id FROM retried UNION ALL SELECT id FROM finished",
    )
    .bind(ids)
    .bind(leases)
    .bind(delays)
    .fetch_all(conn)
    .await
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
