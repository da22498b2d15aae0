//! SQL of fulfilments (orders database): the parcels an order ships in,
//! their lines, and the per-line count of units promised to parcels.
//!
//! Every write here runs in a transaction that first locks the order's row
//! ([`lock_order`]), so the checks and the status that follows from the
//! parcels see one order at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::orders::{OrderRow, ORDER_COLUMNS};
use crate::domain::events::{fulfilment_event, Event, FulfilmentData, LineQuantityData};
use crate::domain::orders::fulfilment::{FulfilmentStatus, TrackingChange};
use crate::domain::orders::status::Shipped;

/// A fulfilment's own row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FulfilmentRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: FulfilmentStatus,
    pub location_id: Option<Uuid>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// Units of one order line in a fulfilment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FulfilmentLineRow {
    pub fulfilment_id: Uuid,
    pub line_id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
}

/// An order line as fulfilments see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LineCountRow {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
    pub fulfilled_quantity: i32,
}

/// A new fulfilment.
#[derive(Debug, Clone)]
pub struct NewFulfilment<'a> {
    pub id: Uuid,
    pub order_id: Uuid,
    pub location_id: Option<Uuid>,
    pub carrier: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub tracking_url: Option<&'a str>,
    pub created_by: &'a str,
}

const FULFILMENT_COLUMNS: &str = "id, order_id, status, location_id, carrier, tracking_number, \
     tracking_url, created_by, created_at, updated_at, shipped_at, delivered_at, cancelled_at";

/// Locks an order's row for the rest of the transaction and reads it.
pub async fn lock_order(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An order's lines with the units promised to parcels, in order.
pub async fn line_counts(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<LineCountRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, variant_id, quantity, fulfilled_quantity FROM order_items \
         WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Units of each line in parcels (not cancelled) from each location:
/// (location, line, units).
pub async fn taken_at_locations(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<(Uuid, Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.location_id, l.line_id, sum(l.quantity)::bigint FROM fulfilments f \
         JOIN fulfilment_lines l ON l.fulfilment_id = f.id \
         WHERE f.order_id = $1 AND f.status <> 'cancelled' AND f.location_id IS NOT NULL \
         GROUP BY 1, 2",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Writes a pending fulfilment of `lines` (line, units) and counts its
/// units against the lines, only where that keeps each line within what
/// was ordered, with its `fulfilment.created` event. `false` (and the
/// caller rolls back) when a line would go past it.
pub async fn insert_fulfilment(
    conn: &mut PgConnection,
    new: &NewFulfilment<'_>,
    lines: &[(Uuid, i32)],
) -> Result<bool, sqlx::Error> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.1).collect();
    sqlx::query(
        "INSERT INTO fulfilments (id, order_id, location_id, carrier, tracking_number, tracking_url, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new.id)
    .bind(new.order_id)
    .bind(new.location_id)
    .bind(new.carrier)
    .bind(new.tracking_number)
    .bind(new.tracking_url)
    .bind(new.created_by)
    .execute(&mut *conn)
    .await?;
    let counted: i64 = sqlx::query_scalar(
        "WITH t AS (SELECT * FROM unnest($2::uuid[], $3::int[]) AS t(line_id, quantity)), \
         fl AS (INSERT INTO fulfilment_lines (fulfilment_id, line_id, quantity) \
                SELECT $1, line_id, quantity FROM t), \
         i AS (UPDATE order_items i SET fulfilled_quantity = i.fulfilled_quantity + t.quantity FROM t \
               WHERE i.id = t.line_id AND i.order_id = $4 \
                 AND i.fulfilled_quantity + t.quantity <= i.quantity RETURNING i.id) \
         SELECT count(*) FROM i",
    )
    .bind(new.id)
    .bind(&ids)
    .bind(&quantities)
    .bind(new.order_id)
    .fetch_one(&mut *conn)
    .await?;
    if usize::try_from(counted).ok() != Some(lines.len()) {
        return Ok(false);
    }
    let data = FulfilmentData {
        fulfilment_id: new.id,
        order_id: new.order_id,
        status: FulfilmentStatus::Pending.as_str().to_owned(),
        location_id: new.location_id.unwrap_or_default(),
        carrier: new.carrier.map(str::to_owned),
        tracking_number: new.tracking_number.map(str::to_owned),
        tracking_url: new.tracking_url.map(str::to_owned),
        lines: lines
            .iter()
            .map(|(line_id, quantity)| LineQuantityData {
                line_id: *line_id,
                quantity: *quantity,
            })
            .collect(),
    };
    let event = Event::new(fulfilment_event(FulfilmentStatus::Pending), new.id, &data);
    crate::store::events::append(conn, &event).await?;
    Ok(true)
}

/// One fulfilment of an order, locked.
pub async fn lock_fulfilment(
    conn: &mut PgConnection,
    order_id: Uuid,
    id: Uuid,
) -> Result<Option<FulfilmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {FULFILMENT_COLUMNS} FROM fulfilments WHERE id = $1 AND order_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// An order's fulfilments that are `status`, oldest first.
pub async fn fulfilment_ids_in(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: FulfilmentStatus,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM fulfilments WHERE order_id = $1 AND status = $2 ORDER BY created_at, id",
    )
    .bind(order_id)
    .bind(status)
    .fetch_all(conn)
    .await
}

/// Moves a fulfilment to `to`, stamping when, and appends the event of
/// that move (`fulfilment.shipped`, `.delivered`, `.cancelled`); a
/// cancelled one gives its units back to its lines.
pub async fn set_fulfilment_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: FulfilmentStatus,
) -> Result<FulfilmentRow, sqlx::Error> {
    let row: FulfilmentRow = sqlx::query_as(&format!(
        "UPDATE fulfilments SET status = $2, updated_at = now(), \
           shipped_at = CASE WHEN $2 = 'shipped' THEN now() ELSE shipped_at END, \
           delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, \
           cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END \
         WHERE id = $1 RETURNING {FULFILMENT_COLUMNS}"
    ))
    .bind(id)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    if to == FulfilmentStatus::Cancelled {
        sqlx::query(
            "UPDATE order_items i SET fulfilled_quantity = i.fulfilled_quantity - l.quantity \
             FROM fulfilment_lines l WHERE l.fulfilment_id = $1 AND i.id = l.line_id",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    if to == FulfilmentStatus::Pending {
        // Not a move any action makes; a new parcel's event is its insert's.
        return Ok(row);
    }
    let lines: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT l.line_id, l.quantity FROM fulfilment_lines l JOIN order_items i ON i.id = l.line_id \
         WHERE l.fulfilment_id = $1 ORDER BY i.position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let data = FulfilmentData {
        fulfilment_id: row.id,
        order_id: row.order_id,
        status: row.status.as_str().to_owned(),
        location_id: row.location_id.unwrap_or_default(),
        carrier: row.carrier.clone(),
        tracking_number: row.tracking_number.clone(),
        tracking_url: row.tracking_url.clone(),
        lines: lines
            .into_iter()
            .map(|(line_id, quantity)| LineQuantityData { line_id, quantity })
            .collect(),
    };
    let event = Event::new(fulfilment_event(to), row.id, &data);
    crate::store::events::append(conn, &event).await?;
    Ok(row)
}

/// Changes a fulfilment's carrier and tracking.
pub async fn set_tracking(
    conn: &mut PgConnection,
    id: Uuid,
    change: &TrackingChange,
) -> Result<FulfilmentRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE fulfilments SET updated_at = now(), \
           carrier = CASE WHEN $2 THEN $3 ELSE carrier END, \
           tracking_number = CASE WHEN $4 THEN $5 ELSE tracking_number END, \
           tracking_url = CASE WHEN $6 THEN $7 ELSE tracking_url END \
         WHERE id = $1 RETURNING {FULFILMENT_COLUMNS}"
    ))
    .bind(id)
    .bind(change.carrier.is_some())
    .bind(change.carrier.clone().flatten())
    .bind(change.tracking_number.is_some())
    .bind(change.tracking_number.clone().flatten())
    .bind(change.tracking_url.is_some())
    .bind(change.tracking_url.clone().flatten())
    .fetch_one(conn)
    .await
}

/// How far an order's units have gone out.
pub async fn progress(conn: &mut PgConnection, order_id: Uuid) -> Result<Shipped, sqlx::Error> {
    let (ordered, shipped, all_delivered): (i64, i64, bool) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(quantity), 0)::bigint FROM order_items WHERE order_id = $1), \
                (SELECT coalesce(sum(l.quantity), 0)::bigint FROM fulfilments f \
                   JOIN fulfilment_lines l ON l.fulfilment_id = f.id \
                   WHERE f.order_id = $1 AND f.status IN ('shipped', 'delivered')), \
                NOT EXISTS (SELECT 1 FROM fulfilments WHERE order_id = $1 AND status = 'shipped')",
    )
    .bind(order_id)
    .fetch_one(conn)
    .await?;
    Ok(Shipped {
        ordered,
        shipped,
        all_delivered,
    })
}

/// The fulfilments of `order_ids` with their lines, oldest first.
pub async fn fulfilments_of(
    pool: &PgPool,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<(FulfilmentRow, Vec<FulfilmentLineRow>)>>, sqlx::Error> {
    let rows: Vec<FulfilmentRow> = sqlx::query_as(&format!(
        "SELECT {FULFILMENT_COLUMNS} FROM fulfilments WHERE order_id = ANY($1) \
         ORDER BY order_id, created_at, id"
    ))
    .bind(order_ids)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let lines: Vec<FulfilmentLineRow> = sqlx::query_as(
        "SELECT l.fulfilment_id, l.line_id, i.variant_id, l.quantity FROM fulfilment_lines l \
         JOIN order_items i ON i.id = l.line_id WHERE l.fulfilment_id = ANY($1) \
         ORDER BY l.fulfilment_id, i.position",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut lines_of: HashMap<Uuid, Vec<FulfilmentLineRow>> = HashMap::new();
    for line in lines {
        lines_of.entry(line.fulfilment_id).or_default().push(line);
    }
    let mut by_order: HashMap<Uuid, Vec<(FulfilmentRow, Vec<FulfilmentLineRow>)>> = HashMap::new();
    for row in rows {
        let lines = lines_of.remove(&row.id).unwrap_or_default();
        by_order.entry(row.order_id).or_default().push((row, lines));
    }
    Ok(by_order)
}

/// A shipped fulfilment's units per variant, for the catalog's sale.
pub async fn stock_lines(pool: &PgPool, id: Uuid) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.variant_id, l.quantity FROM fulfilment_lines l JOIN order_items i ON i.id = l.line_id \
         WHERE l.fulfilment_id = $1 ORDER BY i.variant_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Records that the catalog sold a shipped fulfilment's units.
pub async fn mark_stock_shipped(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE fulfilments SET stock_shipped_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Shipped fulfilments whose sale the catalog has not confirmed for
/// `grace_secs`: (fulfilment, order, location).
pub async fn unsold_fulfilments(
    pool: &PgPool,
    grace_secs: f64,
    batch: i64,
) -> Result<Vec<(Uuid, Uuid, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, order_id, location_id FROM fulfilments \
         WHERE status IN ('shipped', 'delivered') AND stock_shipped_at IS NULL \
           AND updated_at < now() - make_interval(secs => $1) \
         ORDER BY updated_at LIMIT $2",
    )
    .bind(grace_secs)
    .bind(batch)
    .fetch_all(pool)
    .await
}
