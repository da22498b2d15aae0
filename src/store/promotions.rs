//! SQL of discount codes and their uses (in the carts database). A use is
//! counted under the promotion's row lock, so concurrent checkouts cannot
//! spend more uses than the promotion has.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::pagination::PageRequest;
use crate::domain::promotions::{self, Context, Inapplicable, Kind, Promotion};

/// The unique index on `upper(code)`.
pub const CODE_TAKEN: &str = "promotions_code";

/// A promotion as stored, with its held uses (sent as
/// `actors::carts::promotions::PromotionView`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PromotionRow {
    pub id: Uuid,
    /// Upper case; matched case-insensitively.
    pub code: String,
    /// `percent` or `fixed`.
    pub kind: String,
    /// Percent (1-100), or minor units of `currency`.
    pub value: i64,
    pub currency: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub min_subtotal: i64,
    pub max_uses: Option<i64>,
    pub max_uses_per_customer: Option<i64>,
    pub active: bool,
    /// Uses counted now (orders placed with it and not cancelled or
    /// expired unpaid).
    pub uses: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PromotionRow {
    /// The rule this row holds.
    pub fn rule(&self) -> Promotion {
        Promotion {
            code: self.code.clone(),
            kind: if self.kind == "fixed" {
                Kind::Fixed
            } else {
                Kind::Percent
            },
            value: self.value,
            currency: self.currency.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            min_subtotal: self.min_subtotal,
            max_uses: self.max_uses,
            max_uses_per_customer: self.max_uses_per_customer,
            active: self.active,
        }
    }
}

/// The stored name of a kind.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Percent => "percent",
        Kind::Fixed => "fixed",
    }
}

const COLUMNS: &str = "p.id, p.code, p.kind, p.value, p.currency, p.starts_at, p.ends_at, \
     p.min_subtotal, p.max_uses, p.max_uses_per_customer, p.active, \
     (SELECT count(*) FROM promotion_uses u WHERE u.promotion_id = p.id AND u.released_at IS NULL) AS uses, \
     p.created_at, p.updated_at";

/// Binds `$1` (the id) and the rule's fields as `$2`..`$11`, in column
/// order: code, kind, value, currency, starts_at, ends_at, min_subtotal,
/// max_uses, max_uses_per_customer, active.
fn bind_rule<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    id: Uuid,
    p: &'q Promotion,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(id)
        .bind(&p.code)
        .bind(kind_name(p.kind))
        .bind(p.value)
        .bind(&p.currency)
        .bind(p.starts_at)
        .bind(p.ends_at)
        .bind(p.min_subtotal)
        .bind(p.max_uses)
        .bind(p.max_uses_per_customer)
        .bind(p.active)
}

/// Writes a new promotion.
pub async fn insert(pool: &PgPool, id: Uuid, p: &Promotion) -> sqlx::Result<PromotionRow> {
    let insert = sqlx::query(
        "INSERT INTO promotions (id, code, kind, value, currency, starts_at, ends_at, \
           min_subtotal, max_uses, max_uses_per_customer, active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    );
    bind_rule(insert, id, p).execute(pool).await?;
    by_id(pool, id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Replaces a promotion's fields; `None` when it does not exist.
pub async fn update(pool: &PgPool, id: Uuid, p: &Promotion) -> sqlx::Result<Option<PromotionRow>> {
    let update = sqlx::query(
        "UPDATE promotions SET code = $2, kind = $3, value = $4, currency = $5, starts_at = $6, \
           ends_at = $7, min_subtotal = $8, max_uses = $9, max_uses_per_customer = $10, \
           active = $11, updated_at = now() WHERE id = $1",
    );
    let done = bind_rule(update, id, p).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    by_id(pool, id).await
}

/// Deletes a promotion; whether it existed.
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM promotions WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

/// One promotion by id.
pub async fn by_id(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<PromotionRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM promotions p WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One promotion by code, whatever its case.
pub async fn by_code(pool: &PgPool, code: &str) -> sqlx::Result<Option<PromotionRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM promotions p WHERE upper(p.code) = upper($1)"
    ))
    .bind(code)
    .fetch_optional(pool)
    .await
}

/// One page of promotions, newest first, and how many there are.
pub async fn list(pool: &PgPool, page: PageRequest) -> sqlx::Result<(Vec<PromotionRow>, i64)> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM promotions p ORDER BY p.created_at DESC, p.id LIMIT $1 OFFSET $2"
    ))
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM promotions")
        .fetch_one(pool)
        .await?;
    Ok((rows, count))
}

/// Held uses of a promotion: everyone's, and `user_id`'s.
pub async fn held_uses(
    conn: &mut PgConnection,
    promotion_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE user_id = $2) FROM promotion_uses \
         WHERE promotion_id = $1 AND released_at IS NULL",
    )
    .bind(promotion_id)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await
}

/// What spending a use decided.
#[derive(Debug, Clone)]
pub enum Spend {
    /// Counted for `order_id`; the rule as it stood.
    Spent(Promotion),
    /// The promotion is gone.
    Gone,
    /// It does not apply now.
    Refused(Inapplicable),
}

/// Counts one use of a promotion for an order about to be placed, if it
/// still applies: the promotion's row is locked while its uses are
/// counted, so concurrent spenders are serialised. Idempotent per order.
pub async fn spend(
    pool: &PgPool,
    promotion_id: Uuid,
    order_id: Uuid,
    user_id: Uuid,
    subtotal: i64,
    currency: &str,
) -> sqlx::Result<Spend> {
    let mut tx = pool.begin().await?;
    let row: Option<PromotionRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM promotions p WHERE p.id = $1 FOR UPDATE OF p"
    ))
    .bind(promotion_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Spend::Gone);
    };
    let already: Option<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM promotion_uses WHERE order_id = $1 AND released_at IS NULL",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    if already.is_some() {
        return Ok(Spend::Spent(row.rule()));
    }
    let (uses, customer_uses) = held_uses(&mut tx, promotion_id, user_id).await?;
    let rule = row.rule();
    let context = Context {
        now: Utc::now(),
        subtotal,
        currency,
        uses,
        customer_uses,
    };
    if let Err(why) = promotions::check(&rule, &context) {
        return Ok(Spend::Refused(why));
    }
    sqlx::query(
        "INSERT INTO promotion_uses (order_id, promotion_id, user_id) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id) DO UPDATE SET released_at = NULL, promotion_id = $2",
    )
    .bind(order_id)
    .bind(promotion_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Spend::Spent(rule))
}

/// Gives back the use counted for these orders (never placed, or cancelled
/// or expired unpaid); how many were held.
pub async fn release(pool: &PgPool, order_ids: &[Uuid]) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE promotion_uses SET released_at = now() \
         WHERE order_id = ANY($1) AND released_at IS NULL",
    )
    .bind(order_ids)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Marks the uses of paid orders final.
pub async fn settle(pool: &PgPool, order_ids: &[Uuid]) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE promotion_uses SET settled_at = now() \
         WHERE order_id = ANY($1) AND released_at IS NULL AND settled_at IS NULL",
    )
    .bind(order_ids)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Unsettled held uses older than `min_age_secs`, oldest first, for reconciling with
/// the orders they were counted for.
pub async fn held_orders(pool: &PgPool, min_age_secs: i64, limit: i64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT order_id FROM promotion_uses WHERE released_at IS NULL AND settled_at IS NULL \
           AND created_at < now() - make_interval(secs => $1::double precision) \
         ORDER BY created_at LIMIT $2",
    )
    .bind(min_age_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await
}
