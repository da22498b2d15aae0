//! SQL of the address book (auth database).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::domain::auth::address_book::BookAddress;
use crate::domain::orders::address::ShippingAddress;

const COLUMNS: &str =
    "id, user_id, name, line1, line2, city, region, postal_code, country, phone, \
     is_default_shipping, is_default_billing, created_at, updated_at";

/// A row of `addresses`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
    pub is_default_shipping: bool,
    pub is_default_billing: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AddressRow {
    /// The postal fields, as an order snapshots them.
    pub fn postal(&self) -> ShippingAddress {
        ShippingAddress {
            name: self.name.clone(),
            line1: self.line1.clone(),
            line2: self.line2.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
            phone: self.phone.clone(),
        }
    }

    /// The address as the book's rules see it.
    pub fn book(&self) -> BookAddress {
        BookAddress {
            address: self.postal(),
            is_default_shipping: self.is_default_shipping,
            is_default_billing: self.is_default_billing,
        }
    }
}

/// Locks the user's row: every change to one user's book takes this lock
/// first, so the limit check and the default switch see a settled book.
/// `false` when there is no such user.
pub async fn lock_book(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// How many addresses the user has.
pub async fn count(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM addresses WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// The user's addresses, oldest first.
pub async fn list(pool: &PgPool, user_id: Uuid) -> Result<Vec<AddressRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM addresses WHERE user_id = $1 ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// One of the user's addresses; another user's is `None`.
pub async fn get(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<AddressRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// Takes the defaults `a` claims away from the user's other addresses.
pub async fn clear_defaults(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Uuid,
    a: &BookAddress,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE addresses SET \
           is_default_shipping = is_default_shipping AND NOT $3, \
           is_default_billing = is_default_billing AND NOT $4, \
           updated_at = now() \
         WHERE user_id = $1 AND id <> $2 \
           AND ((is_default_shipping AND $3) OR (is_default_billing AND $4))",
    )
    .bind(user_id)
    .bind(keep)
    .bind(a.is_default_shipping)
    .bind(a.is_default_billing)
    .execute(conn)
    .await?;
    Ok(())
}

type AddressQuery<'q> = sqlx::query::QueryAs<'q, Postgres, AddressRow, PgArguments>;

/// Binds the address's fields, in column order from `name` to
/// `is_default_billing`, after whatever the query bound before.
fn bind_fields<'q>(query: AddressQuery<'q>, a: &'q BookAddress) -> AddressQuery<'q> {
    let p = &a.address;
    query
        .bind(&p.name)
        .bind(&p.line1)
        .bind(&p.line2)
        .bind(&p.city)
        .bind(&p.region)
        .bind(&p.postal_code)
        .bind(&p.country)
        .bind(&p.phone)
        .bind(a.is_default_shipping)
        .bind(a.is_default_billing)
}

/// Inserts an address.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    a: &BookAddress,
) -> Result<AddressRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO addresses (id, user_id, name, line1, line2, city, region, postal_code, country, \
           phone, is_default_shipping, is_default_billing) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    );
    bind_fields(sqlx::query_as(&sql).bind(id).bind(user_id), a)
        .fetch_one(conn)
        .await
}

/// Replaces an address's fields.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    a: &BookAddress,
) -> Result<AddressRow, sqlx::Error> {
    let sql = format!(
        "UPDATE addresses SET name = $2, line1 = $3, line2 = $4, city = $5, region = $6, \
           postal_code = $7, country = $8, phone = $9, is_default_shipping = $10, \
           is_default_billing = $11, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    bind_fields(sqlx::query_as(&sql).bind(id), a)
        .fetch_one(conn)
        .await
}

/// Deletes one of the user's addresses; `false` when there was none.
pub async fn delete(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM addresses WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
