//! SQL of returns (orders database): a return's lines, the per-line count
//! of units in returns, what each line delivered, and the receipt.
//!
//! Every write runs in a transaction that first locks the order's row
//! (`store::fulfilments::lock_order`), as parcels do.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::events::{return_event, Event, LineQuantityData, ReturnData};
use crate::domain::orders::returns::ReturnStatus;

/// A return's own row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReturnRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: ReturnStatus,
    pub note: String,
    pub reject_reason: Option<String>,
    pub refund_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
}

/// One line of a return.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReturnLineRow {
    pub return_id: Uuid,
    pub line_id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
    pub reason: String,
    pub received: i32,
    pub restocked: i32,
    pub location_id: Option<Uuid>,
}

/// An order line as returns see it: what its delivered parcels hold, what
/// is in returns, and where its last delivered parcel left from.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveredRow {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub delivered: i64,
    pub returned_quantity: i32,
    pub last_location: Option<Uuid>,
}

const RETURN_COLUMNS: &str = "id, order_id, status, note, reject_reason, refund_id, created_by, \
     created_at, updated_at, received_at";

/// An order's lines with their delivered and returned units, in order,
/// and when its last parcel was delivered.
pub async fn delivered(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<(Vec<DeliveredRow>, Option<DateTime<Utc>>), sqlx::Error> {
    let lines = sqlx::query_as(
        "SELECT i.id, i.variant_id, i.returned_quantity, \
           coalesce((SELECT sum(l.quantity) FROM fulfilment_lines l JOIN fulfilments f ON f.id = l.fulfilment_id \
                     WHERE l.line_id = i.id AND f.status = 'delivered'), 0)::bigint AS delivered, \
           (SELECT f.location_id FROM fulfilment_lines l JOIN fulfilments f ON f.id = l.fulfilment_id \
             WHERE l.line_id = i.id AND f.status = 'delivered' ORDER BY f.delivered_at DESC LIMIT 1) AS last_location \
         FROM order_items i WHERE i.order_id = $1 ORDER BY i.position",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(delivered_at) FROM fulfilments WHERE order_id = $1 AND status = 'delivered'",
    )
    .bind(order_id)
    .fetch_one(conn)
    .await?;
    Ok((lines, last))
}

/// Writes a requested return of `lines` (line, units, reason) and counts
/// its units against the lines, only where each stays within what was
/// ordered, with its `return.requested` event. `false` (and the caller
/// rolls back) otherwise.
pub async fn insert_return(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
    note: &str,
    created_by: &str,
    lines: &[(Uuid, i32, String)],
) -> Result<bool, sqlx::Error> {
    sqlx::query("INSERT INTO returns (id, order_id, note, created_by) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(order_id)
        .bind(note)
        .bind(created_by)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.1).collect();
    let reasons: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();
    let counted: i64 = sqlx::query_scalar(
        "WITH t AS (SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[]) AS t(line_id, quantity, reason)), \
         rl AS (INSERT INTO return_lines (return_id, line_id, quantity, reason) \
                SELECT $1, line_id, quantity, reason FROM t), \
         i AS (UPDATE order_items i SET returned_quantity = i.returned_quantity + t.quantity FROM t \
               WHERE i.id = t.line_id AND i.order_id = $5 \
                 AND i.returned_quantity + t.quantity <= i.quantity RETURNING i.id) \
         SELECT count(*) FROM i",
    )
    .bind(id)
    .bind(&ids)
    .bind(&quantities)
    .bind(&reasons)
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await?;
    if usize::try_from(counted).ok() != Some(lines.len()) {
        return Ok(false);
    }
    append_return_event(conn, id).await?;
    Ok(true)
}

/// Appends the `return.*` event of return `id`'s status as it is now in
/// the caller's transaction, if that status has one (see [`return_event`]).
async fn append_return_event(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    let row: ReturnRow = sqlx::query_as(&format!(
        "SELECT {RETURN_COLUMNS} FROM returns WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let Some(event_type) = return_event(row.status) else {
        return Ok(());
    };
    let lines = lines_of(&mut *conn, id).await?;
    let data = ReturnData {
        return_id: row.id,
        order_id: row.order_id,
        status: row.status.as_str().to_owned(),
        reason: Some(row.note).filter(|n| !n.trim().is_empty()),
        lines: lines
            .iter()
            .map(|l| LineQuantityData {
                line_id: l.line_id,
                // What arrived, once it has; what was asked for before.
                quantity: match row.status {
                    ReturnStatus::Received => l.received,
                    _ => l.quantity,
                },
            })
            .collect(),
        reject_reason: row.reject_reason,
    };
    let event = Event::new(event_type, row.id, &data);
    crate::store::events::append(conn, &event).await
}

/// One return of an order, locked.
pub async fn lock_return(
    conn: &mut PgConnection,
    order_id: Uuid,
    id: Uuid,
) -> Result<Option<ReturnRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RETURN_COLUMNS} FROM returns WHERE id = $1 AND order_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// A return's lines.
pub async fn lines_of(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Vec<ReturnLineRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.return_id, r.line_id, i.variant_id, r.quantity, r.reason, r.received, r.restocked, r.location_id \
         FROM return_lines r JOIN order_items i ON i.id = r.line_id WHERE r.return_id = $1 ORDER BY i.position",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// Moves a return to `to` (with a rejection's reason, or the refund that
/// paid it back), and appends the event of that move (`return.approved`,
/// `.rejected`, `.received`; none for refunded or closed).
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: ReturnStatus,
    reject_reason: Option<&str>,
    refund_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE returns SET status = $2, reject_reason = COALESCE($3, reject_reason), \
           refund_id = COALESCE($4, refund_id), updated_at = now(), \
           received_at = CASE WHEN $2 = 'received' THEN now() ELSE received_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(reject_reason)
    .bind(refund_id)
    .execute(&mut *conn)
    .await?;
    if return_event(to).is_some() {
        append_return_event(conn, id).await?;
    }
    Ok(())
}

/// Gives units of a return back to its lines (line, units): a rejected or
/// withdrawn return, or units that never arrived.
pub async fn uncount(conn: &mut PgConnection, lines: &[(Uuid, i32)]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.1).collect();
    sqlx::query(
        "UPDATE order_items i SET returned_quantity = i.returned_quantity - t.quantity \
         FROM unnest($1::uuid[], $2::int[]) AS t(line_id, quantity) WHERE i.id = t.line_id",
    )
    .bind(&ids)
    .bind(&quantities)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records what arrived of each line (line, received, restocked,
/// location).
pub async fn record_receipt(
    conn: &mut PgConnection,
    id: Uuid,
    lines: &[(Uuid, i32, i32, Option<Uuid>)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let received: Vec<i32> = lines.iter().map(|l| l.1).collect();
    let restocked: Vec<i32> = lines.iter().map(|l| l.2).collect();
    let locations: Vec<Option<Uuid>> = lines.iter().map(|l| l.3).collect();
    sqlx::query(
        "UPDATE return_lines r SET received = t.received, restocked = t.restocked, location_id = t.location_id \
         FROM unnest($2::uuid[], $3::int[], $4::int[], $5::uuid[]) AS t(line_id, received, restocked, location_id) \
         WHERE r.return_id = $1 AND r.line_id = t.line_id",
    )
    .bind(id)
    .bind(&ids)
    .bind(&received)
    .bind(&restocked)
    .bind(&locations)
    .execute(conn)
    .await?;
    Ok(())
}

/// The returns of an order with their lines, oldest first.
pub async fn returns_of(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Vec<(ReturnRow, Vec<ReturnLineRow>)>, sqlx::Error> {
    let rows: Vec<ReturnRow> = sqlx::query_as(&format!(
        "SELECT {RETURN_COLUMNS} FROM returns WHERE order_id = $1 ORDER BY created_at, id"
    ))
    .bind(order_id)
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let lines: Vec<ReturnLineRow> = sqlx::query_as(
        "SELECT r.return_id, r.line_id, i.variant_id, r.quantity, r.reason, r.received, r.restocked, r.location_id \
         FROM return_lines r JOIN order_items i ON i.id = r.line_id WHERE r.return_id = ANY($1) \
         ORDER BY r.return_id, i.position",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut by_return: HashMap<Uuid, Vec<ReturnLineRow>> = HashMap::new();
    for line in lines {
        by_return.entry(line.return_id).or_default().push(line);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let lines = by_return.remove(&r.id).unwrap_or_default();
            (r, lines)
        })
        .collect())
}

/// Records that the catalog put a return's restocked units back.
pub async fn mark_stock_returned(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE returns SET stock_returned_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Received returns whose restock the catalog has not confirmed for
/// `grace_secs`: (return, order).
pub async fn unstocked_returns(
    pool: &PgPool,
    grace_secs: f64,
    batch: i64,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, order_id FROM returns WHERE received_at IS NOT NULL AND stock_returned_at IS NULL \
           AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
    )
    .bind(grace_secs)
    .bind(batch)
    .fetch_all(pool)
    .await
}

/// A received return's restocked units: (variant, location, units).
pub async fn restock_lines(pool: &PgPool, id: Uuid) -> Result<Vec<(Uuid, Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.variant_id, r.location_id, r.restocked FROM return_lines r \
         JOIN order_items i ON i.id = r.line_id \
         WHERE r.return_id = $1 AND r.restocked > 0 AND r.location_id IS NOT NULL ORDER BY i.variant_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
