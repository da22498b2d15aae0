//! SQL of stock locations, per-location stock levels, the movement ledger
//! and reservation allocations (catalog database).
//!
//! Lock order, shared with `store::catalog`: locations (only a location's
//! own change and setting stock at it lock them), then variants in id
//! order, then their levels, then products. Every function here that writes a
//! level expects its variants locked by the caller, so two writers of one
//! variant's levels queue on the variant row and never on each other's
//! level rows in a cycle.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::cache_scope::ProductsMoved;
use crate::domain::catalog::allocation::Source;
use crate::domain::catalog::location::{LevelSet, LocationFields, StockRefusal};
use crate::domain::events::{Event, EventType, StockReason, VariantStockData};

/// Constraint names callers map to answers.
pub mod constraints {
    /// Location names are unique.
    pub const LOCATION_NAME: &str = "stock_locations_name_key";
    /// Ledger rows name their location: one with history stays.
    pub const MOVEMENT_LOCATION: &str = "stock_movements_location_id_fkey";
    /// Allocations name their location.
    pub const ALLOCATION_LOCATION: &str = "reservation_allocations_location_id_fkey";
}

/// A stock location as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LocationRow {
    pub id: Uuid,
    pub name: String,
    pub country: String,
    pub priority: i32,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const LOCATION_COLUMNS: &str = "id, name, country, priority, is_active, created_at, updated_at";

/// The order locations are preferred in.
const RANKED: &str = "ORDER BY priority DESC, id";

/// Every location, preferred first.
pub async fn list_locations(pool: &PgPool) -> Result<Vec<LocationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {LOCATION_COLUMNS} FROM stock_locations {RANKED}"
    ))
    .fetch_all(pool)
    .await
}

/// One location.
pub async fn get_location(pool: &PgPool, id: Uuid) -> Result<Option<LocationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {LOCATION_COLUMNS} FROM stock_locations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Creates a location; a taken name fails on [`constraints::LOCATION_NAME`].
pub async fn insert_location(
    pool: &PgPool,
    id: Uuid,
    f: &LocationFields,
) -> Result<LocationRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO stock_locations (id, name, country, priority, is_active) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {LOCATION_COLUMNS}"
    ))
    .bind(id)
    .bind(&f.name)
    .bind(&f.country)
    .bind(f.priority)
    .bind(f.is_active)
    .fetch_one(pool)
    .await
}

/// Creates a location unless one has its name; whether it did.
pub async fn insert_location_if_absent(
    pool: &PgPool,
    f: &LocationFields,
) -> Result<bool, sqlx::Error> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO stock_locations (id, name, country, priority, is_active) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(&f.name)
    .bind(&f.country)
    .bind(f.priority)
    .bind(f.is_active)
    .fetch_optional(pool)
    .await?;
    Ok(id.is_some())
}

/// Replaces a location's fields and returns it as it was before and is
/// now; `None` when there is none.
pub async fn update_location(
    conn: &mut PgConnection,
    id: Uuid,
    f: &LocationFields,
) -> Result<Option<(bool, LocationRow)>, sqlx::Error> {
    let was_active: Option<bool> =
        sqlx::query_scalar("SELECT is_active FROM stock_locations WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(was_active) = was_active else {
        return Ok(None);
    };
    let row = sqlx::query_as(&format!(
        "UPDATE stock_locations SET name = $2, country = $3, priority = $4, is_active = $5, updated_at = now() \
         WHERE id = $1 RETURNING {LOCATION_COLUMNS}"
    ))
    .bind(id)
    .bind(&f.name)
    .bind(&f.country)
    .bind(f.priority)
    .bind(f.is_active)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some((was_active, row)))
}

/// Deletes a location; `false` when there is none. One with history (any
/// movement or allocation) fails on its foreign key.
pub async fn delete_location(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM stock_locations WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Locks, in id order, the variants stocked at `location`, and returns
/// them with their products.
pub async fn lock_variants_at(
    conn: &mut PgConnection,
    location: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, product_id FROM product_variants \
         WHERE id IN (SELECT variant_id FROM stock_levels WHERE location_id = $1) \
         ORDER BY id FOR UPDATE",
    )
    .bind(location)
    .fetch_all(conn)
    .await
}

/// Share-locks the named locations in id order, so none is deactivated or
/// deleted while stock is set there. Taken before the variants: a
/// location's own change locks it first and its variants after.
pub async fn share_locations(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM stock_locations WHERE id = ANY($1) ORDER BY id FOR SHARE")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks, in id order, the variants a reservation holds.
pub async fn lock_variants_held_by(
    conn: &mut PgConnection,
    reservations: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, product_id FROM product_variants \
         WHERE id IN (SELECT variant_id FROM reservation_items WHERE reservation_id = ANY($1)) \
         ORDER BY id FOR UPDATE",
    )
    .bind(reservations)
    .fetch_all(conn)
    .await
}

/// Rewrites each variant's available stock from its levels: Σ (on_hand −
/// held) over active locations. The variants must be locked.
pub async fn sync_variant_stock(
    conn: &mut PgConnection,
    variants: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE product_variants v SET stock = s.free, updated_at = now() \
         FROM (SELECT x.id, least(coalesce((SELECT sum(sl.on_hand - sl.held) FROM stock_levels sl \
                 JOIN stock_locations l ON l.id = sl.location_id \
                 WHERE sl.variant_id = x.id AND l.is_active), 0), 2147483647)::int AS free \
               FROM unnest($1::uuid[]) AS x(id)) s \
         WHERE v.id = s.id AND v.stock <> s.free",
    )
    .bind(variants)
    .execute(conn)
    .await?;
    Ok(())
}

/// A variant's totals as `variant.stock_changed` reports them.
#[derive(Debug, Clone, sqlx::FromRow)]
struct StockTotalsRow {
    variant_id: Uuid,
    product_id: Uuid,
    sku: String,
    stock_quantity: i64,
    available: i64,
}

/// Appends one `variant.stock_changed` event per variant of `variants`
/// (each once, however often it is named), with its totals as they are now
/// in the caller's transaction: units on hand over every location, and
/// what is available (the variant's `stock`). Variants deleted since are
/// skipped.
pub async fn append_stock_changed(
    conn: &mut PgConnection,
    variants: &[Uuid],
    reason: StockReason,
) -> Result<(), sqlx::Error> {
    if variants.is_empty() {
        return Ok(());
    }
    let rows: Vec<StockTotalsRow> = sqlx::query_as(
        "SELECT v.id AS variant_id, v.product_id, v.sku, \
                coalesce((SELECT sum(s.on_hand) FROM stock_levels s WHERE s.variant_id = v.id), 0)::bigint \
                  AS stock_quantity, \
                v.stock::bigint AS available \
         FROM product_variants v WHERE v.id = ANY($1) ORDER BY v.id",
    )
    .bind(variants)
    .fetch_all(&mut *conn)
    .await?;
    let events: Vec<Event> = rows
        .into_iter()
        .map(|r| {
            let data = VariantStockData {
                variant_id: r.variant_id,
                product_id: r.product_id,
                sku: Some(r.sku),
                stock_quantity: r.stock_quantity,
                available: r.available,
                reason: reason.as_str().to_owned(),
            };
            Event::new(EventType::VariantStockChanged, r.variant_id, &data)
        })
        .collect();
    crate::store::events::append_all(conn, &events).await
}

/// One variant's count at one location.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LevelRow {
    pub location_id: Uuid,
    pub location_name: String,
    pub country: String,
    pub priority: i32,
    pub is_active: bool,
    pub on_hand: i32,
    pub held: i32,
}

/// A variant's levels, preferred location first.
pub async fn levels_of(pool: &PgPool, variant: Uuid) -> Result<Vec<LevelRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.id AS location_id, l.name AS location_name, l.country, l.priority, l.is_active, \
                s.on_hand, s.held \
         FROM stock_levels s JOIN stock_locations l ON l.id = s.location_id \
         WHERE s.variant_id = $1 ORDER BY l.priority DESC, l.id",
    )
    .bind(variant)
    .fetch_all(pool)
    .await
}

/// Sets a variant's count at each of `levels` (sorted by location), one
/// adjustment movement per change, or says why not and changes nothing.
/// The variant must be locked; its available stock is synced after.
pub async fn set_levels(
    conn: &mut PgConnection,
    variant: Uuid,
    levels: &[LevelSet],
    admin: Option<Uuid>,
) -> Result<Result<(), StockRefusal>, sqlx::Error> {
    let locations: Vec<Uuid> = levels.iter().map(|l| l.location_id).collect();
    let current: Vec<(Uuid, i32, i32)> = sqlx::query_as(
        "SELECT l.id, coalesce(s.on_hand, 0), coalesce(s.held, 0) FROM stock_locations l \
         LEFT JOIN stock_levels s ON s.location_id = l.id AND s.variant_id = $1 \
         WHERE l.id = ANY($2) ORDER BY l.id",
    )
    .bind(variant)
    .bind(&locations)
    .fetch_all(&mut *conn)
    .await?;
    let mut deltas = Vec::with_capacity(levels.len());
    for level in levels {
        let Some((_, on_hand, held)) = current.iter().find(|c| c.0 == level.location_id) else {
            return Ok(Err(StockRefusal::UnknownLocation(level.location_id)));
        };
        if level.on_hand < *held {
            return Ok(Err(StockRefusal::BelowHeld {
                location_id: level.location_id,
                held: *held,
            }));
        }
        deltas.push(level.on_hand - on_hand);
    }
    let on_hand: Vec<i32> = levels.iter().map(|l| l.on_hand).collect();
    write_levels(conn, variant, &locations, &on_hand, &deltas, admin).await?;
    sync_variant_stock(conn, &[variant]).await?;
    if deltas.iter().any(|d| *d != 0) {
        append_stock_changed(conn, &[variant], StockReason::Adjustment).await?;
    }
    Ok(Ok(()))
}

/// Upserts the counts and records the non-zero changes, in one statement.
async fn write_levels(
    conn: &mut PgConnection,
    variant: Uuid,
    locations: &[Uuid],
    on_hand: &[i32],
    deltas: &[i32],
    admin: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH x AS (SELECT * FROM unnest($2::uuid[], $3::int[], $4::int[]) AS x(location_id, on_hand, delta)), \
         up AS (INSERT INTO stock_levels (variant_id, location_id, on_hand) \
                SELECT $1, location_id, on_hand FROM x \
                ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = excluded.on_hand, updated_at = now()) \
         INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, admin_id) \
         SELECT $1, location_id, 'adjustment', delta, 0, $5 FROM x WHERE delta <> 0",
    )
    .bind(variant)
    .bind(locations)
    .bind(on_hand)
    .bind(deltas)
    .bind(admin)
    .execute(conn)
    .await?;
    Ok(())
}

/// The location `stock` writes of the product and variant endpoints go
/// to: the highest-priority active one.
async fn home_location(conn: &mut PgConnection) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT id FROM stock_locations WHERE is_active {RANKED} LIMIT 1"
    ))
    .fetch_optional(conn)
    .await
}

/// Records the opening stock of new variants at the home location (one
/// level and one adjustment each); refused when some have stock and no
/// location is active. The variants were just inserted with that stock.
pub async fn record_opening_stock(
    conn: &mut PgConnection,
    variants: &[(Uuid, i32)],
    admin: Option<Uuid>,
) -> Result<Result<(), StockRefusal>, sqlx::Error> {
    let stocked: Vec<&(Uuid, i32)> = variants.iter().filter(|(_, s)| *s > 0).collect();
    if stocked.is_empty() {
        return Ok(Ok(()));
    }
    let Some(home) = home_location(conn).await? else {
        return Ok(Err(StockRefusal::NoActiveLocation));
    };
    let ids: Vec<Uuid> = stocked.iter().map(|(id, _)| *id).collect();
    let stock: Vec<i32> = stocked.iter().map(|(_, s)| *s).collect();
    sqlx::query(
        "WITH x AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS x(id, stock)), \
         lv AS (INSERT INTO stock_levels (variant_id, location_id, on_hand) SELECT id, $3, stock FROM x) \
         INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, admin_id) \
         SELECT id, $3, 'adjustment', stock, 0, $4 FROM x",
    )
    .bind(&ids)
    .bind(&stock)
    .bind(home)
    .bind(admin)
    .execute(conn)
    .await?;
    Ok(Ok(()))
}

/// Changes a variant's available stock by `delta` at the home location
/// (the meaning `stock` keeps on the product and variant endpoints). The
/// variant must be locked; its available stock is synced after.
pub async fn adjust_at_home(
    conn: &mut PgConnection,
    variant: Uuid,
    delta: i32,
    admin: Option<Uuid>,
) -> Result<Result<(), StockRefusal>, sqlx::Error> {
    if delta == 0 {
        return Ok(Ok(()));
    }
    let Some(home) = home_location(conn).await? else {
        return Ok(Err(StockRefusal::NoActiveLocation));
    };
    let (on_hand, held): (i32, i32) = sqlx::query_as(
        "SELECT coalesce(max(on_hand), 0), coalesce(max(held), 0) FROM stock_levels \
         WHERE variant_id = $1 AND location_id = $2",
    )
    .bind(variant)
    .bind(home)
    .fetch_one(&mut *conn)
    .await?;
    let next = i64::from(on_hand) + i64::from(delta);
    if next < i64::from(held) {
        return Ok(Err(StockRefusal::BelowHeld {
            location_id: home,
            held,
        }));
    }
    let next = i32::try_from(next).unwrap_or(i32::MAX);
    write_levels(conn, variant, &[home], &[next], &[delta], admin).await?;
    sync_variant_stock(conn, &[variant]).await?;
    append_stock_changed(conn, &[variant], StockReason::Adjustment).await?;
    Ok(Ok(()))
}

/// What each active location has free of each of `variants`. The
/// variants must be locked.
pub async fn free_sources(
    conn: &mut PgConnection,
    variants: &[Uuid],
) -> Result<Vec<(Uuid, Source)>, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, i32, i32)> = sqlx::query_as(
        "SELECT s.variant_id, s.location_id, l.priority, s.on_hand - s.held \
         FROM stock_levels s JOIN stock_locations l ON l.id = s.location_id \
         WHERE l.is_active AND s.variant_id = ANY($1) AND s.on_hand > s.held",
    )
    .bind(variants)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(variant, location_id, priority, free)| {
            let source = Source {
                location_id,
                priority,
                free,
            };
            (variant, source)
        })
        .collect())
}

/// Units of one variant a reservation takes from one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub variant_id: Uuid,
    pub location_id: Uuid,
    pub quantity: i32,
}

/// Records a reservation's lines and where they came from, holds those
/// units at their locations and writes the ledger, in one statement. The
/// variants must be locked; their available stock is synced after.
pub async fn hold(
    conn: &mut PgConnection,
    reservation: Uuid,
    lines: &[(Uuid, i32)],
    allocations: &[Allocation],
) -> Result<(), sqlx::Error> {
    let line_ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let line_qty: Vec<i32> = lines.iter().map(|l| l.1).collect();
    let variants: Vec<Uuid> = allocations.iter().map(|a| a.variant_id).collect();
    let locations: Vec<Uuid> = allocations.iter().map(|a| a.location_id).collect();
    let quantities: Vec<i32> = allocations.iter().map(|a| a.quantity).collect();
    sqlx::query(
        "WITH items AS (INSERT INTO reservation_items (reservation_id, variant_id, quantity) \
                        SELECT $1, id, quantity FROM unnest($2::uuid[], $3::int[]) AS x(id, quantity)), \
         t AS (SELECT * FROM unnest($4::uuid[], $5::uuid[], $6::int[]) AS t(variant_id, location_id, quantity)), \
         alloc AS (INSERT INTO reservation_allocations (reservation_id, variant_id, location_id, quantity) \
                   SELECT $1, variant_id, location_id, quantity FROM t), \
         lv AS (UPDATE stock_levels s SET held = s.held + t.quantity, updated_at = now() FROM t \
                WHERE s.variant_id = t.variant_id AND s.location_id = t.location_id) \
         INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, reservation_id) \
         SELECT variant_id, location_id, 'reservation', 0, quantity, $1 FROM t",
    )
    .bind(reservation)
    .bind(&line_ids)
    .bind(&line_qty)
    .bind(&variants)
    .bind(&locations)
    .bind(&quantities)
    .execute(&mut *conn)
    .await?;
    let mut ids = line_ids;
    ids.sort_unstable();
    sync_variant_stock(conn, &ids).await?;
    append_stock_changed(conn, &ids, StockReason::Reservation).await
}

/// Gives the units of `reservations` that have not shipped back to exactly
/// the locations they came from, with a release movement each. The variants must be locked;
/// their available stock is synced after.
pub async fn unhold(
    conn: &mut PgConnection,
    reservations: &[Uuid],
    variants: &[Uuid],
) -> Result<(), sqlx::Error> {
    let mut moved: Vec<Uuid> = sqlx::query_scalar(
        "WITH a AS (SELECT reservation_id, variant_id, location_id, quantity - shipped AS quantity \
                    FROM reservation_allocations \
                    WHERE reservation_id = ANY($1) AND quantity > shipped), \
         lv AS (UPDATE stock_levels s SET held = s.held - t.quantity, updated_at = now() \
                FROM (SELECT variant_id, location_id, sum(quantity)::int AS quantity FROM a GROUP BY 1, 2) t \
                WHERE s.variant_id = t.variant_id AND s.location_id = t.location_id) \
         INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, reservation_id) \
         SELECT variant_id, location_id, 'release', 0, -quantity, reservation_id FROM a \
         RETURNING variant_id",
    )
    .bind(reservations)
    .fetch_all(&mut *conn)
    .await?;
    sync_variant_stock(conn, variants).await?;
    // Only the variants that moved: a fully shipped reservation gives
    // nothing back.
    moved.sort_unstable();
    moved.dedup();
    append_stock_changed(conn, &moved, StockReason::Release).await
}

/// What a reservation holds at one location for one variant.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldingRow {
    pub variant_id: Uuid,
    pub location_id: Uuid,
    /// Units allocated there.
    pub quantity: i32,
    /// Of which shipped.
    pub shipped: i32,
}

/// A reservation's status, whether it was sold when paid (before
/// shipments existed), and its allocations, preferred location first.
pub async fn holdings(
    pool: &PgPool,
    reservation: Uuid,
) -> Result<(Option<(String, bool)>, Vec<HoldingRow>), sqlx::Error> {
    let status: Option<(String, bool)> =
        sqlx::query_as("SELECT status, sold_at_payment FROM reservations WHERE id = $1")
            .bind(reservation)
            .fetch_optional(pool)
            .await?;
    let rows = sqlx::query_as(
        "SELECT a.variant_id, a.location_id, a.quantity, a.shipped FROM reservation_allocations a \
         JOIN stock_locations l ON l.id = a.location_id \
         WHERE a.reservation_id = $1 ORDER BY l.priority DESC, l.id, a.variant_id",
    )
    .bind(reservation)
    .fetch_all(pool)
    .await?;
    Ok((status, rows))
}

/// What [`ship`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipped {
    /// The units were sold off the shelves now.
    Now,
    /// This shipment was recorded before: nothing changed.
    Before,
    /// The reservation was sold when paid (before shipments existed): the
    /// shipment is recorded, no stock moves.
    SoldAtPayment,
    /// The reservation is not committed (its status, or `unknown`).
    NotCommitted(String),
    /// The location does not hold these units for the reservation.
    NotHeld,
}

/// Sells a shipment's units off the shelves of `location`, where the
/// reservation holds them: the allocations count them shipped, the levels
/// lose them from `on_hand` and `held`, and a sale movement naming the
/// shipment is written for each. Claimed by the shipment's id, so a
/// repeated call sells nothing twice. What is available does not change
/// (the units were held), so variants' stock stays as it is. Run in a
/// transaction, which the caller rolls back unless [`Shipped::Now`] or
/// [`Shipped::SoldAtPayment`].
pub async fn ship(
    conn: &mut PgConnection,
    shipment: Uuid,
    reservation: Uuid,
    location: Option<Uuid>,
    lines: &[(Uuid, i32)],
) -> Result<Shipped, sqlx::Error> {
    // The reservation first, as committing and releasing lock it.
    let status: Option<(String, bool)> =
        sqlx::query_as("SELECT status, sold_at_payment FROM reservations WHERE id = $1 FOR UPDATE")
            .bind(reservation)
            .fetch_optional(&mut *conn)
            .await?;
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO shipments (id, reservation_id, location_id) \
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM reservations WHERE id = $2) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(shipment)
    .bind(reservation)
    .bind(location)
    .fetch_optional(&mut *conn)
    .await?;
    let sold_at_payment = match status {
        None => return Ok(Shipped::NotCommitted("unknown".into())),
        Some(_) if claimed.is_none() => return Ok(Shipped::Before),
        Some((status, _)) if status != "committed" => return Ok(Shipped::NotCommitted(status)),
        Some((_, sold)) => sold,
    };
    if sold_at_payment {
        return Ok(Shipped::SoldAtPayment);
    }
    let Some(location) = location else {
        return Ok(Shipped::NotHeld);
    };
    let mut variants: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    variants.sort_unstable();
    sqlx::query("SELECT id FROM product_variants WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&variants)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.1).collect();
    let taken: i64 = sqlx::query_scalar(
        "WITH t AS (SELECT * FROM unnest($3::uuid[], $4::int[]) AS t(variant_id, quantity)), \
         a AS (UPDATE reservation_allocations a SET shipped = a.shipped + t.quantity FROM t \
               WHERE a.reservation_id = $1 AND a.location_id = $2 AND a.variant_id = t.variant_id \
                 AND a.quantity - a.shipped >= t.quantity RETURNING a.variant_id) \
         SELECT count(*) FROM a",
    )
    .bind(reservation)
    .bind(location)
    .bind(&ids)
    .bind(&quantities)
    .fetch_one(&mut *conn)
    .await?;
    if usize::try_from(taken).ok() != Some(lines.len()) {
        return Ok(Shipped::NotHeld);
    }
    sqlx::query(
        "WITH t AS (SELECT * FROM unnest($3::uuid[], $4::int[]) AS t(variant_id, quantity)), \
         lv AS (UPDATE stock_levels s SET on_hand = s.on_hand - t.quantity, held = s.held - t.quantity, \
                  updated_at = now() FROM t \
                WHERE s.variant_id = t.variant_id AND s.location_id = $2) \
         INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, \
                                      reservation_id, shipment_id) \
         SELECT variant_id, $2, 'sale', -quantity, -quantity, $1, $5 FROM t",
    )
    .bind(reservation)
    .bind(location)
    .bind(&ids)
    .bind(&quantities)
    .bind(shipment)
    .execute(&mut *conn)
    .await?;
    append_stock_changed(conn, &variants, StockReason::Sale).await?;
    Ok(Shipped::Now)
}

/// Puts a return's restocked units (variant, location, units) back on the
/// shelves: `on_hand` rises (a level is made where there was none) with a
/// `return` movement naming the order's reservation, and the variants'
/// available stock is synced. Claimed by the return's id, so a repeated
/// call adds nothing twice (`None`; else what moved). Units of variants
/// deleted since are skipped: there is no shelf to put them on.
pub async fn restock(
    conn: &mut PgConnection,
    claim: Uuid,
    reservation: Uuid,
    lines: &[(Uuid, Uuid, i32)],
) -> Result<Option<ProductsMoved>, sqlx::Error> {
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO stock_returns (id, reservation_id) VALUES ($1, $2) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(claim)
    .bind(reservation)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_none() {
        return Ok(None);
    }
    // Locations before variants, the order a location's own change takes.
    let mut places: Vec<Uuid> = lines.iter().map(|l| l.1).collect();
    places.sort_unstable();
    places.dedup();
    share_locations(conn, &places).await?;
    let mut ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let locked: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, product_id FROM product_variants WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let live: Vec<&(Uuid, Uuid, i32)> = lines
        .iter()
        .filter(|l| locked.iter().any(|(v, _)| *v == l.0))
        .collect();
    let variants: Vec<Uuid> = live.iter().map(|l| l.0).collect();
    let locations: Vec<Uuid> = live.iter().map(|l| l.1).collect();
    let quantities: Vec<i32> = live.iter().map(|l| l.2).collect();
    sqlx::query(
        "WITH t AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS t(variant_id, location_id, quantity)), \
         mk AS (INSERT INTO stock_levels (variant_id, location_id, on_hand) \
                SELECT DISTINCT variant_id, location_id, 0 FROM t ON CONFLICT DO NOTHING) \
         SELECT 1",
    )
    .bind(&variants)
    .bind(&locations)
    .bind(&quantities)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH t AS (SELECT variant_id, location_id, sum(quantity)::int AS quantity \
                    FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS t(variant_id, location_id, quantity) \
                    GROUP BY 1, 2), \
         lv AS (UPDATE stock_levels s SET on_hand = s.on_hand + t.quantity, updated_at = now() FROM t \
                WHERE s.variant_id = t.variant_id AND s.location_id = t.location_id) \
         INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, reservation_id) \
         SELECT variant_id, location_id, 'return', quantity, 0, $4 FROM t",
    )
    .bind(&variants)
    .bind(&locations)
    .bind(&quantities)
    .bind(reservation)
    .execute(&mut *conn)
    .await?;
    let mut synced: Vec<Uuid> = locked.iter().map(|(v, _)| *v).collect();
    synced.sort_unstable();
    sync_variant_stock(conn, &synced).await?;
    append_stock_changed(conn, &synced, StockReason::Return).await?;
    let mut products: Vec<Uuid> = locked.into_iter().map(|(_, p)| p).collect();
    products.sort_unstable();
    products.dedup();
    let moved = super::catalog::refresh_totals(conn, &products).await?;
    Ok(Some(moved))
}

/// A ledger row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MovementRow {
    pub id: i64,
    pub variant_id: Uuid,
    pub location_id: Uuid,
    pub kind: String,
    pub on_hand_delta: i32,
    pub held_delta: i32,
    pub reservation_id: Option<Uuid>,
    pub admin_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Which ledger rows to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovementFilter {
    pub variant_id: Option<Uuid>,
    pub location_id: Option<Uuid>,
    pub reservation_id: Option<Uuid>,
    pub kind: Option<&'static str>,
}

/// A page of the ledger, newest first, and how many rows match.
pub async fn list_movements(
    pool: &PgPool,
    f: &MovementFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MovementRow>, i64), sqlx::Error> {
    const WHERE: &str = "WHERE ($1::uuid IS NULL OR variant_id = $1) \
         AND ($2::uuid IS NULL OR location_id = $2) \
         AND ($3::uuid IS NULL OR reservation_id = $3) \
         AND ($4::text IS NULL OR kind = $4)";
    let rows = sqlx::query_as(&format!(
        "SELECT id, variant_id, location_id, kind, on_hand_delta, held_delta, reservation_id, admin_id, \
         created_at FROM stock_movements {WHERE} ORDER BY id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(f.variant_id)
    .bind(f.location_id)
    .bind(f.reservation_id)
    .bind(f.kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let count = sqlx::query_scalar(&format!("SELECT count(*) FROM stock_movements {WHERE}"))
        .bind(f.variant_id)
        .bind(f.location_id)
        .bind(f.reservation_id)
        .bind(f.kind)
        .fetch_one(pool)
        .await?;
    Ok((rows, count))
}
