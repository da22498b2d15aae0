//! SQL of the orders database: orders, their lines, history and events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::catalog::variant::OptionValues;
use crate::domain::events::{order_event, Event, EventType, OrderData, OrderLineData};
use crate::domain::orders::address::ShippingAddress;
use crate::domain::orders::events::OrderEventKind;
use crate::domain::orders::pricing::OrderLine;
use crate::domain::orders::status::OrderStatus;
use crate::domain::pricing::rules::MethodQuote;

/// An order's own row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    /// `None` for a guest order.
    pub user_id: Option<Uuid>,
    /// A guest order's email (`None` for a customer's).
    pub email: Option<String>,
    pub status: OrderStatus,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub currency: String,
    pub promotion_code: Option<String>,
    pub shipping_address: Json<ShippingAddress>,
    pub shipping: i64,
    pub tax: i64,
    pub shipping_tax: i64,
    pub prices_include_tax: bool,
    pub shipping_method: Option<Json<MethodQuote>>,
    pub payment_id: Option<String>,
    /// Money given back so far, partial refunds and full.
    pub refunded_amount: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A line of an order, as stored (sent as
/// `actors::orders::messages::OrderLineView`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemRow {
    /// The line's own id (fulfilments, refunds and returns name it).
    pub id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub name: String,
    /// `None` on lines written before variants existed.
    pub sku: Option<String>,
    pub options: Json<OptionValues>,
    pub unit_price: i64,
    pub quantity: i32,
    pub line_total: i64,
    /// This line's share of the order's discount.
    pub discount: i64,
    pub tax_rate_bp: i32,
    pub tax: i64,
    /// Units in fulfilments that are not cancelled.
    pub fulfilled_quantity: i32,
    /// Units in returns not rejected or withdrawn.
    pub returned_quantity: i32,
}

/// One status change, as stored (sent as
/// `actors::orders::messages::StatusChangeView`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub order_id: Uuid,
    #[sqlx(rename = "from_status")]
    pub from: Option<String>,
    #[sqlx(rename = "to_status")]
    pub to: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Filters of an order listing.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<Uuid>,
    pub status: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// A new order with its lines.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub id: Uuid,
    /// The customer's account; `None` for a guest order, which has `email`.
    pub user_id: Option<Uuid>,
    pub email: Option<&'a str>,
    /// Sum of the lines.
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    /// Σ line tax + shipping tax.
    pub tax: i64,
    pub shipping_tax: i64,
    pub prices_include_tax: bool,
    /// The method charged, as quoted.
    pub shipping_method: Option<&'a MethodQuote>,
    /// `subtotal - discount + shipping (+ tax unless prices include it)`.
    pub total: i64,
    pub currency: &'a str,
    pub promotion_code: Option<&'a str>,
    pub shipping_address: &'a ShippingAddress,
    pub lines: &'a [OrderLine],
    /// One id per line, in the same order.
    pub line_ids: &'a [Uuid],
    pub expires_at: DateTime<Utc>,
}

/// One purchased line, for the recommender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PurchaseRow {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    pub quantity: i32,
    pub paid_at: DateTime<Utc>,
}

impl PurchaseRow {
    /// The line as the recommender reads it, placed at its payment time.
    pub fn into_input(self) -> crate::domain::recommendations::assemble::PurchaseInput {
        crate::domain::recommendations::assemble::PurchaseInput {
            user_id: self.user_id,
            order_id: self.order_id,
            product_id: self.product_id,
            at_millis: self.paid_at.timestamp_millis() as f64,
        }
    }
}

/// An event from the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub order_id: Uuid,
    pub kind: OrderEventKind,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// The columns an [`OrderRow`] reads.
pub(crate) const ORDER_COLUMNS: &str =
    "id, user_id, email, status, subtotal, discount, total, currency, promotion_code, shipping_address, \
     shipping, tax, shipping_tax, prices_include_tax, shipping_method, payment_id, refunded_amount, \
     created_at, updated_at";

/// Writes a new pending order, its lines and its first history entry in
/// one statement (one round trip; on its own it is its own transaction).
/// Returns the order's row and the history entry as stored.
pub async fn insert_order(
    conn: &mut PgConnection,
    order: &NewOrder<'_>,
    actor: &str,
) -> Result<(OrderRow, HistoryRow), sqlx::Error> {
    let positions: Vec<i32> = (0..order.lines.len())
        .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
        .collect();
    let products: Vec<Uuid> = order.lines.iter().map(|l| l.product_id).collect();
    let variants: Vec<Uuid> = order.lines.iter().map(|l| l.variant_id).collect();
    let skus: Vec<Option<&str>> = order.lines.iter().map(|l| l.sku.as_deref()).collect();
    let options: Vec<Json<&OptionValues>> = order.lines.iter().map(|l| Json(&l.options)).collect();
    let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    let prices: Vec<i64> = order.lines.iter().map(|l| l.unit_price).collect();
    let quantities: Vec<i32> = order.lines.iter().map(|l| l.quantity).collect();
    let totals: Vec<i64> = order.lines.iter().map(|l| l.line_total).collect();
    let discounts: Vec<i64> = order.lines.iter().map(|l| l.discount).collect();
    let tax_rates: Vec<i32> = order.lines.iter().map(|l| l.tax_rate_bp).collect();
    let taxes: Vec<i64> = order.lines.iter().map(|l| l.tax).collect();
    // `order.created`, written by the same statement; its `created_at` is
    // set there, to the order's.
    let created = Event::new(EventType::OrderCreated, order.id, &new_order_data(order));
    let row: OrderRow = sqlx::query_as(&format!(
        "WITH o AS (\
           INSERT INTO orders (id, user_id, status, total, currency, shipping_address, expires_at, \
                               subtotal, discount, promotion_code, shipping, tax, shipping_tax, \
                               prices_include_tax, shipping_method, email) \
           VALUES ($1, $2, 'pending', $3, $4, $5, $6, $14, $15, $16, $21, $22, $23, $24, $25, $28) RETURNING {ORDER_COLUMNS}), \
         i AS (\
           INSERT INTO order_items (order_id, position, product_id, name, unit_price, quantity, line_total, discount, \
                                    variant_id, sku, options, tax_rate_bp, tax, id) \
           SELECT $1, t.* FROM unnest($7::int[], $8::uuid[], $9::text[], $10::bigint[], $11::int[], $12::bigint[], $17::bigint[], \
                                      $18::uuid[], $19::text[], $20::jsonb[], $26::int[], $27::bigint[], $29::uuid[]) AS t), \
         h AS (\
           INSERT INTO order_history (order_id, from_status, to_status, actor, reason) \
           VALUES ($1, NULL, 'pending', $13, 'order placed')), \
         ev AS (\
           INSERT INTO event_outbox (id, type, subject, data, occurred_at) \
           VALUES ($30, $31, $1::text, \
                   jsonb_set($32::jsonb, '{{created_at}}', \
                             to_jsonb(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))), \
                   now())) \
         SELECT * FROM o"
    ))
    .bind(order.id)
    .bind(order.user_id)
    .bind(order.total)
    .bind(order.currency)
    .bind(Json(order.shipping_address))
    .bind(order.expires_at)
    .bind(&positions)
    .bind(&products)
    .bind(&names)
    .bind(&prices)
    .bind(&quantities)
    .bind(&totals)
    .bind(actor)
    .bind(order.subtotal)
    .bind(order.discount)
    .bind(order.promotion_code)
    .bind(&discounts)
    .bind(&variants)
    .bind(&skus)
    .bind(&options)
    .bind(order.shipping)
    .bind(order.tax)
    .bind(order.shipping_tax)
    .bind(order.prices_include_tax)
    .bind(order.shipping_method.map(Json))
    .bind(&tax_rates)
    .bind(&taxes)
    .bind(order.email)
    .bind(order.line_ids)
    .bind(created.id)
    .bind(created.event_type)
    .bind(Json(&created.data))
    .fetch_one(&mut *conn)
    .await?;
    // Every part of one statement runs at the same `now()`: the history
    // entry's time is the order's creation time.
    let history = HistoryRow {
        order_id: row.id,
        from: None,
        to: "pending".to_owned(),
        actor: actor.to_owned(),
        reason: "order placed".to_owned(),
        at: row.created_at,
    };
    Ok((row, history))
}

/// The `order.created` payload of a new order (its `created_at` is the
/// statement's time, set in SQL).
fn new_order_data(order: &NewOrder<'_>) -> OrderData {
    let lines = order
        .lines
        .iter()
        .zip(order.line_ids)
        .map(|(l, id)| OrderLineData {
            line_id: *id,
            product_id: l.product_id,
            variant_id: l.variant_id,
            sku: l.sku.clone(),
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            line_total: l.line_total,
        })
        .collect();
    OrderData {
        order_id: order.id,
        customer_id: order.user_id,
        email: order.email.map(str::to_owned),
        status: OrderStatus::Pending.as_str().to_owned(),
        currency: order.currency.to_owned(),
        subtotal: order.subtotal,
        discount: order.discount,
        shipping: order.shipping,
        tax: order.tax,
        total: order.total,
        refunded_amount: 0,
        lines,
        shipping_address: serde_json::to_value(order.shipping_address)
            .unwrap_or(serde_json::Value::Null),
        created_at: Utc::now(),
    }
}

/// An order's `order.*` payload: its row and lines.
pub fn order_data(row: &OrderRow, items: &[ItemRow]) -> OrderData {
    OrderData {
        order_id: row.id,
        customer_id: row.user_id,
        email: row.email.clone(),
        status: row.status.as_str().to_owned(),
        currency: row.currency.clone(),
        subtotal: row.subtotal,
        discount: row.discount,
        shipping: row.shipping,
        tax: row.tax,
        total: row.total,
        refunded_amount: row.refunded_amount,
        lines: items
            .iter()
            .map(|i| OrderLineData {
                line_id: i.id,
                product_id: i.product_id,
                variant_id: i.variant_id,
                sku: i.sku.clone(),
                name: i.name.clone(),
                quantity: i.quantity,
                unit_price: i.unit_price,
                line_total: i.line_total,
            })
            .collect(),
        shipping_address: serde_json::to_value(&row.shipping_address.0)
            .unwrap_or(serde_json::Value::Null),
        created_at: row.created_at,
    }
}

/// The columns an [`ItemRow`] reads.
const ITEM_COLUMNS: &str =
    "id, order_id, product_id, variant_id, name, sku, options, unit_price, quantity, \
     line_total, discount, tax_rate_bp, tax, fulfilled_quantity, returned_quantity";

/// Appends an `order.*` event of `event_type` about order `id` as it is
/// now in the caller's transaction, with its lines.
pub async fn append_order_event(
    conn: &mut PgConnection,
    event_type: EventType,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    let row: OrderRow =
        sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let items: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM order_items WHERE order_id = $1 ORDER BY position"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let event = Event::new(event_type, id, &order_data(&row, &items));
    crate::store::events::append(conn, &event).await
}

/// Records one status change, and appends the public `order.*` event it
/// emits (if any, see [`order_event`]) in the same transaction: every
/// status change after placing goes through here, so no path misses its
/// event. Call it after the change itself.
pub async fn insert_history(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: Option<&str>,
    to: &str,
    actor: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO order_history (order_id, from_status, to_status, actor, reason) VALUES ($1, $2, $3, $4, $5)")
        .bind(order_id)
        .bind(from)
        .bind(to)
        .bind(actor)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    let from = from.and_then(OrderStatus::parse);
    if let Some(event_type) = OrderStatus::parse(to).and_then(|to| order_event(from, to)) {
        append_order_event(conn, event_type, order_id).await?;
    }
    Ok(())
}

/// An order's own row by id.
pub async fn get_order(conn: &mut PgConnection, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The one guarded write of a transition: it happens only if the order is
/// still in `from`. `None` when someone else changed it first.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    from: &str,
    to: &str,
    payment_id: Option<&str>,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE orders SET status = $3, payment_id = COALESCE($4, payment_id), updated_at = now(), \
           refunded_amount = CASE WHEN $3 = 'refunded' THEN total ELSE refunded_amount END \
         WHERE id = $1 AND status = $2 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(payment_id)
    .fetch_optional(conn)
    .await
}

/// Records that an order was paid: the event the recommender reads, with
/// the order's lines as they are in `order_items`, in the caller's
/// transaction. One statement, so the lines are read where they are written.
/// A guest order's event has a null `user_id` (the recommender skips it:
/// there is nobody to recommend to).
pub async fn insert_paid_event(
    conn: &mut PgConnection,
    order_id: Uuid,
    user_id: Option<Uuid>,
    payment_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_events (order_id, kind, payload) \
         SELECT $1, $4, jsonb_build_object( \
           'order_id', $1, 'user_id', $2, 'payment_id', $3::text, \
           'items', COALESCE(jsonb_agg(jsonb_build_object('product_id', i.product_id, 'variant_id', i.variant_id, 'quantity', i.quantity) \
                             ORDER BY i.position) FILTER (WHERE i.order_id IS NOT NULL), '[]'::jsonb)) \
         FROM (SELECT 1) AS one LEFT JOIN order_items i ON i.order_id = $1",
    )
    .bind(order_id)
    .bind(user_id)
    .bind(payment_id)
    .bind(OrderEventKind::OrderPaid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Events after `after_id`, oldest first.
pub async fn events_after(
    pool: &PgPool,
    after_id: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, order_id, kind, payload, created_at FROM order_events WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(after_id)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Lines and history of the given orders.
pub async fn items_and_history(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<(HashMap<Uuid, Vec<ItemRow>>, HashMap<Uuid, Vec<HistoryRow>>), sqlx::Error> {
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT id, order_id, product_id, variant_id, name, sku, options, unit_price, quantity, line_total, discount, \
                tax_rate_bp, tax, fulfilled_quantity, returned_quantity \
         FROM order_items \
         WHERE order_id = ANY($1) ORDER BY order_id, position",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let history: Vec<HistoryRow> = sqlx::query_as(
        "SELECT order_id, from_status, to_status, actor, reason, at FROM order_history \
         WHERE order_id = ANY($1) ORDER BY order_id, id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut by_order_items: HashMap<Uuid, Vec<ItemRow>> = HashMap::new();
    for item in items {
        by_order_items.entry(item.order_id).or_default().push(item);
    }
    let mut by_order_history: HashMap<Uuid, Vec<HistoryRow>> = HashMap::new();
    for entry in history {
        by_order_history
            .entry(entry.order_id)
            .or_default()
            .push(entry);
    }
    Ok((by_order_items, by_order_history))
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, f: &OrderFilter) {
    qb.push(" WHERE true");
    if let Some(user) = f.user_id {
        qb.push(" AND user_id = ").push_bind(user);
    }
    if let Some(status) = &f.status {
        qb.push(" AND status = ").push_bind(status.clone());
    }
    if let Some(after) = f.created_after {
        qb.push(" AND created_at >= ").push_bind(after);
    }
    if let Some(before) = f.created_before {
        qb.push(" AND created_at < ").push_bind(before);
    }
}

/// One page of orders, newest first, and the total.
pub async fn list_orders(
    pool: &PgPool,
    f: &OrderFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<OrderRow>, i64), sqlx::Error> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM orders");
    push_filters(&mut count, f);
    let count: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut page = QueryBuilder::new(format!("SELECT {ORDER_COLUMNS} FROM orders"));
    push_filters(&mut page, f);
    page.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let rows = page.build_query_as().fetch_all(pool).await?;
    Ok((rows, count))
}

/// Moves up to `batch` overdue pending orders to expired, with history,
/// in one statement, and appends each one's `order.expired` event in the
/// same transaction; concurrent sweepers skip each other's rows. Returns
/// the expired orders' ids.
pub async fn expire_overdue(pool: &PgPool, batch: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "WITH expired AS ( \
           UPDATE orders SET status = 'expired', updated_at = now() \
           WHERE id IN (SELECT id FROM orders WHERE status = 'pending' AND expires_at < now() \
                        ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             AND status = 'pending' \
           RETURNING id), \
         logged AS ( \
           INSERT INTO order_history (order_id, from_status, to_status, actor, reason) \
           SELECT id, 'pending', 'expired', 'system', 'not paid in time' FROM expired) \
         SELECT id FROM expired",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    for id in &expired {
        append_order_event(&mut tx, EventType::OrderExpired, *id).await?;
    }
    tx.commit().await?;
    Ok(expired)
}

/// Records that the catalog confirmed a paid order's stock as sold.
pub async fn mark_stock_committed(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET stock_committed_at = now() WHERE id = $1 AND stock_committed_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that the catalog gave back a cancelled or expired order's stock.
pub async fn mark_stock_released(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET stock_released_at = now() WHERE id = $1 AND stock_released_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Cancelled or expired orders whose release has not been confirmed for
/// `older_than_secs`.
pub async fn unreleased_orders(
    pool: &PgPool,
    older_than_secs: f64,
    batch: i64,
) -> Result<Vec<(Uuid, OrderStatus)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status FROM orders WHERE status IN ('cancelled', 'expired', 'refunded') AND stock_released_at IS NULL \
         AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
    )
    .bind(older_than_secs)
    .bind(batch)
    .fetch_all(pool)
    .await
}

/// Paid orders whose stock commit has not been confirmed for `older_than`.
pub async fn uncommitted_paid_orders(
    pool: &PgPool,
    older_than_secs: f64,
    batch: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM orders WHERE payment_id IS NOT NULL AND stock_committed_at IS NULL \
         AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
    )
    .bind(older_than_secs)
    .bind(batch)
    .fetch_all(pool)
    .await
}

/// Purchased lines of paid, (partially) fulfilled or delivered customers' orders, oldest
/// first, for users in `user_ids` (all users when empty). Guest orders are
/// left out: the recommender learns per customer.
pub async fn purchase_history(
    pool: &PgPool,
    user_ids: &[Uuid],
    limit: i64,
) -> Result<Vec<PurchaseRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.user_id, o.id AS order_id, i.product_id, i.quantity, \
                COALESCE((SELECT min(h.at) FROM order_history h WHERE h.order_id = o.id AND h.to_status = 'paid'), o.created_at) AS paid_at \
         FROM orders o JOIN order_items i ON i.order_id = o.id \
         WHERE o.status IN ('paid', 'partially_fulfilled', 'fulfilled', 'delivered') AND o.user_id IS NOT NULL \
           AND (cardinality($1::uuid[]) = 0 OR o.user_id = ANY($1)) \
         ORDER BY paid_at, o.id, i.position LIMIT $2",
    )
    .bind(user_ids)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Delivered orders (seed-demo's history), many at once, a statement per
/// table instead of five per order (the demo seeds a million lines): each
/// column goes as one array and `unnest` turns the arrays back into rows.
/// Orders that exist already are skipped with everything of theirs.
/// Returns how many orders were inserted.
pub async fn insert_delivered_orders(
    conn: &mut PgConnection,
    orders: &[(NewOrder<'_>, DateTime<Utc>)],
) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = orders.iter().map(|(o, _)| o.id).collect();
    let users: Vec<Option<Uuid>> = orders.iter().map(|(o, _)| o.user_id).collect();
    let totals: Vec<i64> = orders.iter().map(|(o, _)| o.total).collect();
    let currencies: Vec<&str> = orders.iter().map(|(o, _)| o.currency).collect();
    let addresses: Vec<String> = orders
        .iter()
        .map(|(o, _)| serde_json::to_string(o.shipping_address).unwrap_or_else(|_| "{}".into()))
        .collect();
    let at: Vec<DateTime<Utc>> = orders.iter().map(|(_, at)| *at).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO orders (id, user_id, status, total, subtotal, currency, shipping_address, payment_id, expires_at, created_at, updated_at, stock_committed_at) \
         SELECT id, user_id, 'delivered', total, total, currency, address::jsonb, 'demo_' || id::text, at, at, at + interval '5 days', at \
         FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[], $6::timestamptz[]) \
              AS t(id, user_id, total, currency, address, at) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(&users)
    .bind(&totals)
    .bind(&currencies)
    .bind(&addresses)
    .bind(&at)
    .fetch_all(&mut *conn)
    .await?;
    if inserted.is_empty() {
        return Ok(0);
    }
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    let new: Vec<&(NewOrder<'_>, DateTime<Utc>)> = orders
        .iter()
        .filter(|(o, _)| inserted.contains(&o.id))
        .collect();
    // Lines, already fulfilled (one parcel of everything, delivered).
    let mut line = (
        Vec::<Uuid>::new(),
        Vec::<i32>::new(),
        Vec::<Uuid>::new(),
        Vec::<String>::new(),
        Vec::<i64>::new(),
        Vec::<i32>::new(),
        Vec::<i64>::new(),
        Vec::<i64>::new(),
        Vec::<Uuid>::new(),
        Vec::<Option<String>>::new(),
        Vec::<String>::new(),
        Vec::<i32>::new(),
        Vec::<i64>::new(),
    );
    for (o, _) in &new {
        for (position, l) in o.lines.iter().enumerate() {
            line.0.push(o.id);
            line.1.push(i32::try_from(position).unwrap_or(i32::MAX));
            line.2.push(l.product_id);
            line.3.push(l.name.clone());
            line.4.push(l.unit_price);
            line.5.push(l.quantity);
            line.6.push(l.line_total);
            line.7.push(l.discount);
            line.8.push(l.variant_id);
            line.9.push(l.sku.clone());
            line.10
                .push(serde_json::to_string(&l.options).unwrap_or_else(|_| "{}".into()));
            line.11.push(l.tax_rate_bp);
            line.12.push(l.tax);
        }
    }
    sqlx::query(
        "INSERT INTO order_items (order_id, position, product_id, name, unit_price, quantity, line_total, discount, \
         variant_id, sku, options, tax_rate_bp, tax, fulfilled_quantity) \
         SELECT order_id, position, product_id, name, unit_price, quantity, line_total, discount, \
                variant_id, sku, options::jsonb, tax_rate_bp, tax, quantity \
         FROM unnest($1::uuid[], $2::int4[], $3::uuid[], $4::text[], $5::int8[], $6::int4[], $7::int8[], $8::int8[], \
                     $9::uuid[], $10::text[], $11::text[], $12::int4[], $13::int8[]) \
              AS t(order_id, position, product_id, name, unit_price, quantity, line_total, discount, \
                   variant_id, sku, options, tax_rate_bp, tax)",
    )
    .bind(&line.0)
    .bind(&line.1)
    .bind(&line.2)
    .bind(&line.3)
    .bind(&line.4)
    .bind(&line.5)
    .bind(&line.6)
    .bind(&line.7)
    .bind(&line.8)
    .bind(&line.9)
    .bind(&line.10)
    .bind(&line.11)
    .bind(&line.12)
    .execute(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = new.iter().map(|(o, _)| o.id).collect();
    let users: Vec<Option<Uuid>> = new.iter().map(|(o, _)| o.user_id).collect();
    let at: Vec<DateTime<Utc>> = new.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "INSERT INTO order_history (order_id, from_status, to_status, actor, reason, at) \
         SELECT t.id, s.from_status, s.to_status, \
                CASE WHEN s.n = 1 THEN 'user:' || t.user_id::text ELSE s.actor END, s.reason, t.at + s.after \
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) WITH ORDINALITY AS t(id, user_id, at, n) \
         CROSS JOIN (VALUES (1, NULL, 'pending', '', 'order placed', interval '0'), \
                            (2, 'pending', 'paid', 'payments', 'payment succeeded', interval '1 minute'), \
                            (3, 'paid', 'fulfilled', 'admin:demo', '', interval '1 day'), \
                            (4, 'fulfilled', 'delivered', 'admin:demo', '', interval '5 days')) \
              AS s(n, from_status, to_status, actor, reason, after) \
         ORDER BY t.n, s.n",
    )
    .bind(&ids)
    .bind(&users)
    .bind(&at)
    .execute(&mut *conn)
    .await?;
    let parcels: Vec<Uuid> = new.iter().map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "WITH t AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS t(order_id, id, at)), \
         f AS (INSERT INTO fulfilments (id, order_id, status, created_by, stock_shipped_at, created_at, \
                                        updated_at, shipped_at, delivered_at) \
               SELECT id, order_id, 'delivered', 'admin:demo', at, at + interval '1 day', at + interval '5 days', \
                      at + interval '1 day', at + interval '5 days' FROM t) \
         INSERT INTO fulfilment_lines (fulfilment_id, line_id, quantity) \
         SELECT t.id, i.id, i.quantity FROM t JOIN order_items i ON i.order_id = t.order_id",
    )
    .bind(&ids)
    .bind(&parcels)
    .bind(&at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO order_events (order_id, kind, payload) \
         SELECT t.id, $3, jsonb_build_object( \
           'order_id', t.id, 'user_id', t.user_id, 'payment_id', 'demo_' || t.id::text, \
           'items', COALESCE((SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'variant_id', i.variant_id, \
                                                                  'quantity', i.quantity) ORDER BY i.position) \
                              FROM order_items i WHERE i.order_id = t.id), '[]'::jsonb)) \
         FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS t(id, user_id, n) ORDER BY t.n",
    )
    .bind(&ids)
    .bind(&users)
    .bind(OrderEventKind::OrderPaid)
    .execute(&mut *conn)
    .await?;
    Ok(new.len() as u64)
}

/// Distinct products in a user's pending orders.
pub async fn pending_products(pool: &PgPool, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT i.product_id FROM orders o JOIN order_items i ON i.order_id = o.id \
         WHERE o.user_id = $1 AND o.status = 'pending'",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// The status of each of these orders that exists.
pub async fn statuses(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, status FROM orders WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// Adds a partial refund to the order's refunded amount, once per refund
/// id. `None` when it was applied before; `Some(false)` (nothing written)
/// when it would take the refunded amount past the order's total.
pub async fn apply_refund(
    conn: &mut PgConnection,
    order_id: Uuid,
    refund_id: Uuid,
    amount: i64,
) -> Result<Option<bool>, sqlx::Error> {
    let new: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO order_refunds (refund_id, order_id, amount) VALUES ($1, $2, $3) \
         ON CONFLICT (refund_id) DO NOTHING RETURNING refund_id",
    )
    .bind(refund_id)
    .bind(order_id)
    .bind(amount)
    .fetch_optional(&mut *conn)
    .await?;
    if new.is_none() {
        return Ok(None);
    }
    let added = sqlx::query(
        "UPDATE orders SET refunded_amount = refunded_amount + $2, updated_at = now() \
         WHERE id = $1 AND refunded_amount + $2 <= total",
    )
    .bind(order_id)
    .bind(amount)
    .execute(conn)
    .await?;
    Ok(Some(added.rows_affected() == 1))
}
