//! SQL of the carts database. Every change to a cart runs in a transaction
//! that first locks the cart's row, so two requests on one cart (two tabs,
//! a merge and an add) apply one after the other and the limits hold.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::carts::{ShippingChoice, StoredLine};
use crate::domain::catalog::stock::StockLine;
use crate::domain::orders::address::ShippingAddress;

/// A guest cart's stored secret and state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GuestRow {
    pub token_hash: Vec<u8>,
    pub merged_into: Option<Uuid>,
}

/// Limits a change must keep, decided under the cart's lock.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_lines: usize,
    pub max_quantity: i32,
    /// The product's stock now, from the catalog.
    pub stock: i32,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    /// The cart already holds `max_lines` other products.
    TooManyLines,
    /// The line would hold `requested`, more than `max_quantity`.
    OverMaxQuantity {
        requested: i64,
    },
    /// The line would hold `requested`, more than the stock.
    OverStock {
        requested: i64,
    },
    /// `set_quantity` on a product the cart does not hold.
    NoSuchLine,
}

/// The customer's cart's id, the cart made on first use.
pub async fn user_cart(pool: &PgPool, user_id: Uuid) -> sqlx::Result<Uuid> {
    let select = "SELECT id FROM carts WHERE user_id = $1";
    // Read first: every cart request but the first finds it, and an
    // insert attempt would write (and lock) on each of them.
    if let Some(found) = sqlx::query_scalar(select)
        .bind(user_id)
        .fetch_optional(pool)
        .await?
    {
        return Ok(found);
    }
    sqlx::query("INSERT INTO carts (id, user_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
        .bind(Uuid::new_v4())
        .bind(user_id)
        .execute(pool)
        .await?;
    sqlx::query_scalar(select)
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// A cart's chosen promotion: its id (`None` once the promotion was
/// deleted) and the code it was chosen by.
/// A cart as stored: its lines, when it last changed, its promotion and
/// its shipping choice.
#[derive(Debug, Clone)]
pub struct Contents {
    pub lines: Vec<StoredLine>,
    pub updated_at: DateTime<Utc>,
    pub promotion: ChosenPromotion,
    pub shipping: Option<ShippingChoice>,
}

pub type ChosenPromotion = Option<(Option<Uuid>, String)>;

/// A cart's last change and promotion, read with its lines in one round
/// trip: (lines oldest first, updated_at, chosen promotion).
pub async fn contents(pool: &PgPool, cart_id: Uuid) -> sqlx::Result<Contents> {
    type Row = (
        DateTime<Utc>,
        Option<Uuid>,
        Option<String>,
        Option<Uuid>,
        Option<i32>,
        Option<i64>,
        Option<String>,
        Option<Uuid>,
        Option<Json<ShippingAddress>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.updated_at, c.promotion_id, c.promotion_code, \
           i.variant_id, i.quantity, i.seen_price, i.seen_currency, \
           c.shipping_method_id, c.shipping_address \
         FROM carts c LEFT JOIN cart_items i ON i.cart_id = c.id \
         WHERE c.id = $1 ORDER BY i.added_at, i.variant_id",
    )
    .bind(cart_id)
    .fetch_all(pool)
    .await?;
    let first = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    let updated_at = first.0;
    let promotion = first.2.clone().map(|code| (first.1, code));
    let shipping = match (first.7, &first.8) {
        (Some(method_id), Some(address)) => Some(ShippingChoice {
            method_id,
            address: address.0.clone(),
        }),
        _ => None,
    };
    let lines = rows
        .into_iter()
        .filter_map(|(_, _, _, variant_id, quantity, price, currency, _, _)| {
            Some(StoredLine {
                variant_id: variant_id?,
                quantity: quantity?,
                seen_price: price?,
                seen_currency: currency?,
            })
        })
        .collect();
    Ok(Contents {
        lines,
        updated_at,
        promotion,
        shipping,
    })
}

/// Records the cart's shipping choice, or clears it (`None`).
pub async fn set_shipping(
    pool: &PgPool,
    cart_id: Uuid,
    choice: Option<&ShippingChoice>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE carts SET shipping_method_id = $2, shipping_address = $3, updated_at = now() \
         WHERE id = $1",
    )
    .bind(cart_id)
    .bind(choice.map(|c| c.method_id))
    .bind(choice.map(|c| Json(&c.address)))
    .execute(pool)
    .await?;
    Ok(())
}

/// A new guest cart.
pub async fn create_guest(pool: &PgPool, id: Uuid, token_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO carts (id, token_hash) VALUES ($1, $2)")
        .bind(id)
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// A guest cart not older than `ttl_days` since its last change.
pub async fn guest(pool: &PgPool, id: Uuid, ttl_days: i64) -> sqlx::Result<Option<GuestRow>> {
    sqlx::query_as(
        "SELECT token_hash, merged_into FROM carts
         WHERE id = $1 AND user_id IS NULL
           AND updated_at > now() - make_interval(days => $2::int)",
    )
    .bind(id)
    .bind(i32::try_from(ttl_days).unwrap_or(i32::MAX))
    .fetch_optional(pool)
    .await
}

/// A cart's lines, oldest first.
pub async fn lines(pool: &PgPool, cart_id: Uuid) -> sqlx::Result<Vec<StoredLine>> {
    let rows: Vec<(Uuid, i32, i64, String)> = sqlx::query_as(
        "SELECT variant_id, quantity, seen_price, seen_currency FROM cart_items
         WHERE cart_id = $1 ORDER BY added_at, variant_id",
    )
    .bind(cart_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(variant_id, quantity, seen_price, seen_currency)| StoredLine {
                variant_id,
                quantity,
                seen_price,
                seen_currency,
            },
        )
        .collect())
}

async fn lock(conn: &mut PgConnection, cart_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM carts WHERE id = $1 FOR UPDATE")
        .bind(cart_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn touch(conn: &mut PgConnection, cart_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE carts SET updated_at = now() WHERE id = $1")
        .bind(cart_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn quantity_of(
    conn: &mut PgConnection,
    cart_id: Uuid,
    variant_id: Uuid,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("SELECT quantity FROM cart_items WHERE cart_id = $1 AND variant_id = $2")
        .bind(cart_id)
        .bind(variant_id)
        .fetch_optional(&mut *conn)
        .await
}

async fn line_count(conn: &mut PgConnection, cart_id: Uuid) -> sqlx::Result<usize> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cart_items WHERE cart_id = $1")
        .bind(cart_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// A line's quantity (if the cart holds it) and the cart's line count, in
/// one round trip. Read after the cart's lock, in a statement of its own,
/// so it sees every change committed before the lock was granted.
async fn line_and_count(
    conn: &mut PgConnection,
    cart_id: Uuid,
    variant_id: Uuid,
) -> sqlx::Result<(Option<i32>, usize)> {
    let (held, n): (Option<i32>, i64) = sqlx::query_as(
        "SELECT (SELECT quantity FROM cart_items WHERE cart_id = $1 AND variant_id = $2), \
           (SELECT count(*) FROM cart_items WHERE cart_id = $1)",
    )
    .bind(cart_id)
    .bind(variant_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((held, usize::try_from(n).unwrap_or(usize::MAX)))
}

async fn upsert(
    conn: &mut PgConnection,
    cart_id: Uuid,
    variant_id: Uuid,
    quantity: i32,
    price: (i64, &str),
) -> sqlx::Result<()> {
    // The line and the cart's last change, in one statement.
    sqlx::query(
        "WITH line AS (INSERT INTO cart_items (cart_id, variant_id, quantity, seen_price, seen_currency)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (cart_id, variant_id) DO UPDATE
           SET quantity = EXCLUDED.quantity, seen_price = EXCLUDED.seen_price,
               seen_currency = EXCLUDED.seen_currency)
         UPDATE carts SET updated_at = now() WHERE id = $1",
    )
    .bind(cart_id)
    .bind(variant_id)
    .bind(quantity)
    .bind(price.0)
    .bind(price.1)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks a line's new quantity against the limits.
fn judge(quantity: i64, limits: Limits) -> Option<Change> {
    if quantity > i64::from(limits.max_quantity) {
        Some(Change::OverMaxQuantity {
            requested: quantity,
        })
    } else if quantity > i64::from(limits.stock) {
        Some(Change::OverStock {
            requested: quantity,
        })
    } else {
        None
    }
}

/// Sets a line to `quantity` (`add`: adds to what it holds), at today's
/// price, unless a limit forbids it.
pub async fn change_line(
    pool: &PgPool,
    cart_id: Uuid,
    variant_id: Uuid,
    quantity: i32,
    add: bool,
    price: (i64, &str),
    limits: Limits,
) -> sqlx::Result<Change> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, cart_id).await?;
    let (held, lines) = line_and_count(&mut tx, cart_id, variant_id).await?;
    let new = match (held, add) {
        (None, false) => return Ok(Change::NoSuchLine),
        (None, true) => {
            if lines >= limits.max_lines {
                return Ok(Change::TooManyLines);
            }
            i64::from(quantity)
        }
        (Some(held), true) => i64::from(held) + i64::from(quantity),
        (Some(_), false) => i64::from(quantity),
    };
    if let Some(refused) = judge(new, limits) {
        return Ok(refused);
    }
    // Within max_quantity, which is an i32.
    let new = i32::try_from(new).unwrap_or(i32::MAX);
    upsert(&mut tx, cart_id, variant_id, new, price).await?;
    tx.commit().await?;
    Ok(Change::Done)
}

/// Removes a line; whether the cart held it.
pub async fn remove_line(pool: &PgPool, cart_id: Uuid, variant_id: Uuid) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, cart_id).await?;
    let removed = sqlx::query("DELETE FROM cart_items WHERE cart_id = $1 AND variant_id = $2")
        .bind(cart_id)
        .bind(variant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if removed {
        touch(&mut tx, cart_id).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Empties a cart.
pub async fn clear(pool: &PgPool, cart_id: Uuid) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, cart_id).await?;
    sqlx::query("DELETE FROM cart_items WHERE cart_id = $1")
        .bind(cart_id)
        .execute(&mut *tx)
        .await?;
    touch(&mut tx, cart_id).await?;
    tx.commit().await
}

/// Deletes a guest cart and its lines.
pub async fn delete_guest(pool: &PgPool, cart_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM carts WHERE id = $1 AND user_id IS NULL")
        .bind(cart_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Lines moved; the guest cart is emptied and marked merged.
    Merged,
    /// The guest cart was merged before (into `into`); nothing changed.
    AlreadyMerged { into: Uuid },
}

/// Moves a guest cart's lines into the customer's cart: quantities add,
/// capped at each product's stock (`stock`, from the catalog) and the line
/// limit; products past the line limit stay behind. The guest cart is
/// emptied and marked, not deleted, so a second merge is recognised.
pub async fn merge(
    pool: &PgPool,
    guest_id: Uuid,
    user_cart: Uuid,
    stock: &HashMap<Uuid, (i32, i64, String)>,
    max_lines: usize,
    max_quantity: i32,
) -> sqlx::Result<Merge> {
    let mut tx = pool.begin().await?;
    // Both rows, in id order, so two merges cannot deadlock.
    let (first, second) = if guest_id < user_cart {
        (guest_id, user_cart)
    } else {
        (user_cart, guest_id)
    };
    lock(&mut tx, first).await?;
    lock(&mut tx, second).await?;
    let merged_into: Option<Uuid> =
        sqlx::query_scalar("SELECT merged_into FROM carts WHERE id = $1")
            .bind(guest_id)
            .fetch_one(&mut *tx)
            .await?;
    if let Some(into) = merged_into {
        return Ok(Merge::AlreadyMerged { into });
    }
    let guest_lines: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT variant_id, quantity FROM cart_items WHERE cart_id = $1 ORDER BY added_at, variant_id",
    )
    .bind(guest_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut lines = line_count(&mut tx, user_cart).await?;
    for (variant_id, quantity) in guest_lines {
        let Some((in_stock, price, currency)) = stock.get(&variant_id) else {
            continue;
        };
        let held = quantity_of(&mut tx, user_cart, variant_id).await?;
        if held.is_none() && lines >= max_lines {
            continue;
        }
        let cap = (*in_stock).clamp(0, max_quantity);
        let new = (held.unwrap_or(0).saturating_add(quantity)).min(cap);
        if new <= 0 {
            continue;
        }
        if held.is_none() {
            lines += 1;
        }
        upsert(&mut tx, user_cart, variant_id, new, (*price, currency)).await?;
    }
    sqlx::query("DELETE FROM cart_items WHERE cart_id = $1")
        .bind(guest_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE carts SET merged_into = $2 WHERE id = $1")
        .bind(guest_id)
        .bind(user_cart)
        .execute(&mut *tx)
        .await?;
    touch(&mut tx, user_cart).await?;
    tx.commit().await?;
    Ok(Merge::Merged)
}

/// Deletes guest carts untouched for `ttl_days`; how many.
pub async fn sweep_guests(pool: &PgPool, ttl_days: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM carts WHERE user_id IS NULL
           AND updated_at < now() - make_interval(days => $1::int)",
    )
    .bind(i32::try_from(ttl_days).unwrap_or(i32::MAX))
    .execute(pool)
    .await?
    .rows_affected())
}

/// Sets (id and code) or clears a cart's promotion.
pub async fn set_promotion(
    pool: &PgPool,
    cart_id: Uuid,
    promotion: Option<(Uuid, &str)>,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, cart_id).await?;
    sqlx::query(
        "UPDATE carts SET promotion_id = $2, promotion_code = $3, updated_at = now() WHERE id = $1",
    )
    .bind(cart_id)
    .bind(promotion.map(|p| p.0))
    .bind(promotion.map(|p| p.1))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// How a checkout may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// This checkout will place the order `order_id`.
    Started { order_id: Uuid },
    /// Another checkout of this cart is running.
    InProgress,
    /// An earlier checkout stopped (a crash or a timeout) while placing
    /// `order_id`; whether it was placed must be found out first.
    Unfinished { order_id: Uuid },
}

/// Claims the cart for one checkout, choosing the order's id before the
/// order exists. A claim older than `lock_secs` is an unfinished one.
///
/// One statement (one round trip, one commit): the row lock the `UPDATE`
/// takes serialises two checkouts of one cart, and the second re-reads the
/// row after the first commits (`READ COMMITTED`), so it sees the claim.
pub async fn begin_checkout(pool: &PgPool, cart_id: Uuid, lock_secs: i64) -> sqlx::Result<Begin> {
    let fresh_id = Uuid::new_v4();
    let claimed: Option<(Uuid, bool)> = sqlx::query_as(
        "UPDATE carts c SET checkout_order_id = coalesce(c.checkout_order_id, $3), \
           checkout_started_at = now() \
         WHERE c.id = $1 AND NOT coalesce(c.checkout_order_id IS NOT NULL \
           AND c.checkout_started_at > now() - make_interval(secs => $2::double precision), false) \
         RETURNING c.checkout_order_id, c.checkout_order_id = $3",
    )
    .bind(cart_id)
    .bind(lock_secs as f64)
    .bind(fresh_id)
    .fetch_optional(pool)
    .await?;
    Ok(match claimed {
        Some((order_id, true)) => Begin::Started { order_id },
        // Claimed again, for the recovery.
        Some((order_id, false)) => Begin::Unfinished { order_id },
        None => {
            // Running elsewhere, or the cart is gone (a guest cart deleted
            // since it was resolved).
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM carts WHERE id = $1")
                .bind(cart_id)
                .fetch_optional(pool)
                .await?;
            match exists {
                Some(_) => Begin::InProgress,
                None => return Err(sqlx::Error::RowNotFound),
            }
        }
    })
}

/// Gives up a checkout that placed nothing: the cart is as it was.
pub async fn abandon_checkout(pool: &PgPool, cart_id: Uuid, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE carts SET checkout_order_id = NULL, checkout_started_at = NULL \
         WHERE id = $1 AND checkout_order_id = $2",
    )
    .bind(cart_id)
    .bind(order_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that the cart became `order_id`, and takes the order's lines
/// (`taken`: product and quantity) out of it, in one transaction, if the
/// cart is still claimed for that order; whether it was. Only what the
/// order took leaves: a line added or raised while the checkout ran keeps
/// the difference. Finishing twice, or after another checkout took the
/// cart, changes nothing.
pub async fn finish_checkout(
    pool: &PgPool,
    cart_id: Uuid,
    order_id: Uuid,
    // `None` for a guest cart's checkout.
    user_id: Option<Uuid>,
    taken: &[StockLine],
) -> sqlx::Result<bool> {
    let (products, quantities): (Vec<Uuid>, Vec<i32>) =
        taken.iter().map(|l| (l.variant_id, l.quantity)).unzip();
    // One statement: the claim's release locks the cart's row, and the
    // record and the lines change only if it was still claimed for this
    // order. Lines the order took whole go; the rest keep what it did not
    // take (the two touch different rows).
    let claimed: Option<i32> = sqlx::query_scalar(
        "WITH claimed AS (UPDATE carts SET promotion_id = NULL, promotion_code = NULL, \
             checkout_order_id = NULL, checkout_started_at = NULL, updated_at = now() \
           WHERE id = $1 AND checkout_order_id = $2 RETURNING id), \
         recorded AS (INSERT INTO checkouts (order_id, cart_id, user_id) \
           SELECT $2, id, $3 FROM claimed ON CONFLICT (order_id) DO NOTHING), \
         taken AS (SELECT * FROM unnest($4::uuid[], $5::int[]) AS t(variant_id, quantity)), \
         gone AS (DELETE FROM cart_items c USING taken t, claimed \
           WHERE c.cart_id = claimed.id AND c.variant_id = t.variant_id \
             AND c.quantity <= t.quantity), \
         kept AS (UPDATE cart_items c SET quantity = c.quantity - t.quantity \
           FROM taken t, claimed \
           WHERE c.cart_id = claimed.id AND c.variant_id = t.variant_id \
             AND c.quantity > t.quantity) \
         SELECT 1 FROM claimed",
    )
    .bind(cart_id)
    .bind(order_id)
    .bind(user_id)
    .bind(&products)
    .bind(&quantities)
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// The customer a cart belongs to (`None` for a guest cart).
pub async fn owner(pool: &PgPool, cart_id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT user_id FROM carts WHERE id = $1")
        .bind(cart_id)
        .fetch_one(pool)
        .await
}
