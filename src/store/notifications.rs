//! SQL of the notifications database: the mail queue and the orders whose
//! mails are still to come.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A mail about to be queued, rendered.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub kind: &'a str,
    pub source_id: Uuid,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
}

/// A mail claimed for sending, under a lease.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// This attempt's number, from 1.
    pub attempts: i32,
    /// The fencing token: every write of the outcome names it.
    pub lease_token: Uuid,
}

/// A queued mail as it stands (for checks and operations).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailRow {
    pub id: Uuid,
    pub kind: String,
    pub source_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Queues a mail; `false` when a mail of its kind for its source exists
/// already (an event taken twice).
pub async fn enqueue(conn: &mut PgConnection, mail: &NewMail<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO mails (id, kind, source_id, recipient, subject, body_text, body_html) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source_id, kind) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(mail.kind)
    .bind(mail.source_id)
    .bind(mail.recipient)
    .bind(mail.subject)
    .bind(mail.body_text)
    .bind(mail.body_html)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Remembers who `order_id`'s mails go to and the order as placed.
pub async fn remember_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    recipient: &str,
    order: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_orders (order_id, recipient, order_data) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(recipient)
    .bind(sqlx::types::Json(order))
    .execute(conn)
    .await?;
    Ok(())
}

/// The recipient and placed order of `order_id`, if its creation was seen.
pub async fn order_contact(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<(String, serde_json::Value)>, sqlx::Error> {
    let row: Option<(String, sqlx::types::Json<serde_json::Value>)> =
        sqlx::query_as("SELECT recipient, order_data FROM mail_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(r, d)| (r, d.0)))
}

/// Claims the oldest due mail for `lease_secs`, counting the attempt.
/// Mails claimed by a sender whose lease ran out are due again; two
/// senders (on any instance) never hold one mail at once.
pub async fn claim(pool: &PgPool, lease_secs: f64) -> Result<Option<ClaimedMail>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE mails SET locked_until = now() + make_interval(secs => $1), \
           lease_token = gen_random_uuid(), attempts = attempts + 1, updated_at = now() \
         WHERE id = (SELECT id FROM mails \
                     WHERE status = 'pending' AND run_at <= now() \
                       AND (locked_until IS NULL OR locked_until < now()) \
                     ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, recipient, subject, body_text, body_html, attempts, lease_token",
    )
    .bind(lease_secs)
    .fetch_optional(pool)
    .await
}

/// Records a mail sent, if `lease` still holds it; a mail carrying a
/// secret loses its body. `false` when the lease was lost.
pub async fn mark_sent(
    pool: &PgPool,
    id: Uuid,
    lease: Uuid,
    erase_body: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE mails SET status = 'sent', sent_at = now(), updated_at = now(), \
           locked_until = NULL, lease_token = NULL, last_error = NULL, \
           body_text = CASE WHEN $3 THEN '' ELSE body_text END, \
           body_html = CASE WHEN $3 THEN '' ELSE body_html END \
         WHERE id = $1 AND lease_token = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(lease)
    .bind(erase_body)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts a mail back to be tried after `delay_secs`, if `lease` still holds
/// it. `false` when the lease was lost.
pub async fn retry(
    pool: &PgPool,
    id: Uuid,
    lease: Uuid,
    delay_secs: f64,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE mails SET run_at = now() + make_interval(secs => $3), locked_until = NULL, \
           lease_token = NULL, last_error = $4, updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(lease)
    .bind(delay_secs)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a mail up for good (`failed`), if `lease` still holds it.
pub async fn give_up(
    pool: &PgPool,
    id: Uuid,
    lease: Uuid,
    error: &str,
    erase_body: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE mails SET status = 'failed', locked_until = NULL, lease_token = NULL, \
           last_error = $3, updated_at = now(), \
           body_text = CASE WHEN $4 THEN '' ELSE body_text END, \
           body_html = CASE WHEN $4 THEN '' ELSE body_html END \
         WHERE id = $1 AND lease_token = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(lease)
    .bind(error)
    .bind(erase_body)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes sent and failed mails last touched more than `days` ago, and
/// remembered orders older than `order_days`.
pub async fn purge(pool: &PgPool, days: u32, order_days: u32) -> Result<u64, sqlx::Error> {
    let mails = sqlx::query(
        "DELETE FROM mails WHERE status <> 'pending' \
         AND updated_at < now() - make_interval(days => $1)",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .execute(pool)
    .await?
    .rows_affected();
    let orders =
        sqlx::query("DELETE FROM mail_orders WHERE created_at < now() - make_interval(days => $1)")
            .bind(i32::try_from(order_days).unwrap_or(i32::MAX))
            .execute(pool)
            .await?
            .rows_affected();
    Ok(mails + orders)
}

/// Counts of mails by status, for the metrics.
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, count(*) FROM mails GROUP BY status ORDER BY status")
        .fetch_all(pool)
        .await
}

/// The mails to `recipient`, oldest first.
pub async fn mails_to(pool: &PgPool, recipient: &str) -> Result<Vec<MailRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, source_id, recipient, subject, status, attempts, last_error, created_at, sent_at \
         FROM mails WHERE recipient = $1 ORDER BY created_at, id",
    )
    .bind(recipient)
    .fetch_all(pool)
    .await
}
