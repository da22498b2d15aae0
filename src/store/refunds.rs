//! SQL of partial refunds (payments database): the refunds of a payment,
//! their jobs on the payment pool's queue, and their settlement.
//!
//! A refund is written while its payment's row is locked (the caller
//! holds [`super::payments::lock_payment`]), after the sum of the
//! payment's pending and succeeded refunds is checked against the
//! captured amount: two refunds of one payment queue on that lock.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::events::{Event, EventType, RefundData};
use crate::domain::payments::queue::{JobKind, PaymentNotice};
use crate::domain::payments::refund::{RefundStatus, RefundedLine};

/// A refund's own row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub status: RefundStatus,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub lines: Json<Vec<RefundedLine>>,
    pub shipping: bool,
    pub failure_code: Option<String>,
    pub created_by: String,
    /// The orders domain's return it pays back.
    pub return_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const REFUND_COLUMNS: &str = "id, payment_id, order_id, status, amount, currency, reason, lines, \
     shipping, failure_code, created_by, return_id, created_at, updated_at";

/// A new refund.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: &'a str,
    pub reason: &'a str,
    pub lines: &'a [RefundedLine],
    pub shipping: bool,
    pub created_by: &'a str,
    pub return_id: Option<Uuid>,
}

/// A payment's refunds that count against its captured amount (pending
/// or succeeded). The payment must be locked.
pub async fn counting(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> Result<Vec<RefundRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 AND status <> 'failed' \
         ORDER BY created_at, id"
    ))
    .bind(payment_id)
    .fetch_all(conn)
    .await
}

/// Whether orders has acknowledged that this payment paid its order (its
/// `payment_succeeded` entry was delivered).
pub async fn order_took_payment(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM payment_outbox WHERE payment_id = $1 \
           AND kind = 'payment_succeeded' AND delivered_at IS NULL)",
    )
    .bind(payment_id)
    .fetch_one(conn)
    .await
}

/// Writes a pending refund, its job and its timeline entry, and wakes the
/// workers at commit. The payment must be locked.
pub async fn insert_refund(
    conn: &mut PgConnection,
    new: &NewRefund<'_>,
) -> Result<RefundRow, sqlx::Error> {
    let row: RefundRow = sqlx::query_as(&format!(
        "INSERT INTO refunds (id, payment_id, order_id, amount, currency, reason, lines, shipping, created_by, return_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {REFUND_COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.payment_id)
    .bind(new.order_id)
    .bind(new.amount)
    .bind(new.currency)
    .bind(new.reason)
    .bind(Json(new.lines))
    .bind(new.shipping)
    .bind(new.created_by)
    .bind(new.return_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO payment_jobs (payment_id, kind, refund_id) VALUES ($1, $2, $3)")
        .bind(new.payment_id)
        .bind(JobKind::Refund)
        .bind(new.id)
        .execute(&mut *conn)
        .await?;
    super::payments::insert_event(
        conn,
        new.payment_id,
        "partial_refund_requested",
        serde_json::json!({"refund_id": new.id, "amount": new.amount, "by": new.created_by}),
    )
    .await?;
    sqlx::query("SELECT pg_notify('payment_jobs', '')")
        .execute(conn)
        .await?;
    Ok(row)
}

/// One refund of a payment.
pub async fn get_refund(
    pool: &PgPool,
    payment_id: Uuid,
    id: Uuid,
) -> Result<Option<RefundRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1 AND payment_id = $2"
    ))
    .bind(id)
    .bind(payment_id)
    .fetch_optional(pool)
    .await
}

/// A payment's refunds, oldest first.
pub async fn list_refunds(pool: &PgPool, payment_id: Uuid) -> Result<Vec<RefundRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
    ))
    .bind(payment_id)
    .fetch_all(pool)
    .await
}

/// Settles a pending refund as `to` (with the provider's code when it
/// failed), with its timeline entry and its public `refund.succeeded` or
/// `refund.failed` event; a success adds to the payment's refunded amount
/// and tells orders (the outbox). `None` (and nothing written) when it was
/// settled already.
pub async fn settle(
    conn: &mut PgConnection,
    id: Uuid,
    to: RefundStatus,
    failure_code: Option<&str>,
    detail: serde_json::Value,
) -> Result<Option<RefundRow>, sqlx::Error> {
    let row: Option<RefundRow> = sqlx::query_as(&format!(
        "UPDATE refunds SET status = $2, failure_code = $3, updated_at = now() \
         WHERE id = $1 AND status = 'pending' RETURNING {REFUND_COLUMNS}"
    ))
    .bind(id)
    .bind(to)
    .bind(failure_code)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let event = match to {
        RefundStatus::Succeeded => "partial_refund_succeeded",
        _ => "partial_refund_failed",
    };
    let mut detail = detail;
    detail["refund_id"] = serde_json::json!(row.id);
    detail["amount"] = serde_json::json!(row.amount);
    super::payments::insert_event(conn, row.payment_id, event, detail).await?;
    let public = Event::new(
        match to {
            RefundStatus::Succeeded => EventType::RefundSucceeded,
            _ => EventType::RefundFailed,
        },
        row.id,
        &RefundData {
            refund_id: Some(row.id),
            payment_id: row.payment_id,
            order_id: row.order_id,
            amount: row.amount,
            currency: row.currency.clone(),
            return_id: row.return_id,
        },
    );
    crate::store::events::append(&mut *conn, &public).await?;
    if to == RefundStatus::Succeeded {
        sqlx::query(
            "UPDATE payments SET refunded_amount = refunded_amount + $2, updated_at = now() WHERE id = $1",
        )
        .bind(row.payment_id)
        .bind(row.amount)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO payment_outbox (payment_id, order_id, kind, refund_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(row.payment_id)
        .bind(row.order_id)
        .bind(PaymentNotice::PartialRefundSucceeded)
        .bind(row.id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(row))
}

/// A refund's amount and return (for the relay).
pub async fn amount_of(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(i64, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as("SELECT amount, return_id FROM refunds WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}
