//! SQL of the shipping rules in the orders database: zones and their
//! methods.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::pricing::config::{MethodFields, ZoneDraft};
use crate::domain::pricing::rules::{Method, Zone};
use crate::domain::pricing::shipping::Rate;

/// A zone as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ZoneRow {
    pub id: Uuid,
    pub name: String,
    pub countries: Vec<String>,
    pub postal_code_prefixes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ZoneRow {
    /// The zone as pricing reads it.
    pub fn rule(&self) -> Zone {
        Zone {
            id: self.id,
            name: self.name.clone(),
            countries: self.countries.clone(),
            postal_code_prefixes: self.postal_code_prefixes.clone(),
        }
    }
}

/// A method as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MethodRow {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    pub currency: String,
    pub rate: Json<Rate>,
    pub free_over: Option<i64>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    pub tax_class: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MethodRow {
    /// The method as pricing reads it.
    pub fn rule(&self) -> Method {
        Method {
            id: self.id,
            zone_id: self.zone_id,
            name: self.name.clone(),
            carrier: self.carrier.clone(),
            currency: self.currency.clone(),
            rate: self.rate.0.clone(),
            free_over: self.free_over,
            min_days: self.min_days,
            max_days: self.max_days,
            tax_class: self.tax_class.clone(),
            is_active: self.is_active,
        }
    }
}

const ZONE_COLUMNS: &str = "id, name, countries, postal_code_prefixes, created_at, updated_at";
const METHOD_COLUMNS: &str = "id, zone_id, name, carrier, currency, rate, free_over, min_days, \
     max_days, tax_class, is_active, created_at, updated_at";

/// The pricing rules' version: it moves with every write to zones,
/// methods and tax rates (a trigger, in the writer's transaction).
pub async fn rules_version(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM pricing_rules_version")
        .fetch_one(pool)
        .await
}

/// Every zone, by name then id.
pub async fn zones(pool: &PgPool) -> Result<Vec<ZoneRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ZONE_COLUMNS} FROM shipping_zones ORDER BY name, id"
    ))
    .fetch_all(pool)
    .await
}

/// One zone.
pub async fn zone(pool: &PgPool, id: Uuid) -> Result<Option<ZoneRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ZONE_COLUMNS} FROM shipping_zones WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Creates a zone.
pub async fn insert_zone(pool: &PgPool, id: Uuid, z: &ZoneDraft) -> Result<ZoneRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO shipping_zones (id, name, countries, postal_code_prefixes) \
         VALUES ($1, $2, $3, $4) RETURNING {ZONE_COLUMNS}"
    ))
    .bind(id)
    .bind(&z.name)
    .bind(&z.countries)
    .bind(&z.postal_code_prefixes)
    .fetch_one(pool)
    .await
}

/// Replaces a zone's fields; `None` when it does not exist.
pub async fn update_zone(
    pool: &PgPool,
    id: Uuid,
    z: &ZoneDraft,
) -> Result<Option<ZoneRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE shipping_zones SET name = $2, countries = $3, postal_code_prefixes = $4, \
         updated_at = now() WHERE id = $1 RETURNING {ZONE_COLUMNS}"
    ))
    .bind(id)
    .bind(&z.name)
    .bind(&z.countries)
    .bind(&z.postal_code_prefixes)
    .fetch_optional(pool)
    .await
}

/// Deletes a zone and its methods; whether it existed.
pub async fn delete_zone(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM shipping_zones WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every method, optionally of one zone, by zone, name and id.
pub async fn methods(pool: &PgPool, zone_id: Option<Uuid>) -> Result<Vec<MethodRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {METHOD_COLUMNS} FROM shipping_methods \
         WHERE $1::uuid IS NULL OR zone_id = $1 ORDER BY zone_id, name, id"
    ))
    .bind(zone_id)
    .fetch_all(pool)
    .await
}

/// One method.
pub async fn method(pool: &PgPool, id: Uuid) -> Result<Option<MethodRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {METHOD_COLUMNS} FROM shipping_methods WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Creates a method (its zone must exist: a foreign-key violation
/// otherwise).
pub async fn insert_method(
    pool: &PgPool,
    id: Uuid,
    m: &MethodFields,
) -> Result<MethodRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO shipping_methods (id, zone_id, name, carrier, currency, rate, free_over, \
         min_days, max_days, tax_class, is_active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {METHOD_COLUMNS}"
    ))
    .bind(id)
    .bind(m.zone_id)
    .bind(&m.name)
    .bind(&m.carrier)
    .bind(&m.currency)
    .bind(Json(&m.rate))
    .bind(m.free_over)
    .bind(m.min_days)
    .bind(m.max_days)
    .bind(&m.tax_class)
    .bind(m.is_active)
    .fetch_one(pool)
    .await
}

/// Replaces a method's fields; `None` when it does not exist.
pub async fn update_method(
    pool: &PgPool,
    id: Uuid,
    m: &MethodFields,
) -> Result<Option<MethodRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE shipping_methods SET zone_id = $2, name = $3, carrier = $4, currency = $5, \
         rate = $6, free_over = $7, min_days = $8, max_days = $9, tax_class = $10, \
         is_active = $11, updated_at = now() WHERE id = $1 RETURNING {METHOD_COLUMNS}"
    ))
    .bind(id)
    .bind(m.zone_id)
    .bind(&m.name)
    .bind(&m.carrier)
    .bind(&m.currency)
    .bind(Json(&m.rate))
    .bind(m.free_over)
    .bind(m.min_days)
    .bind(m.max_days)
    .bind(&m.tax_class)
    .bind(m.is_active)
    .fetch_optional(pool)
    .await
}

/// Deletes a method; whether it existed.
pub async fn delete_method(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM shipping_methods WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Creates a zone unless one has this id (demo data); whether it did.
pub async fn insert_zone_if_absent(
    pool: &PgPool,
    id: Uuid,
    z: &ZoneDraft,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO shipping_zones (id, name, countries, postal_code_prefixes) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(&z.name)
    .bind(&z.countries)
    .bind(&z.postal_code_prefixes)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Creates a method unless one has this id (demo data); whether it did.
pub async fn insert_method_if_absent(
    pool: &PgPool,
    id: Uuid,
    m: &MethodFields,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO shipping_methods (id, zone_id, name, carrier, currency, rate, free_over, \
         min_days, max_days, tax_class, is_active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(m.zone_id)
    .bind(&m.name)
    .bind(&m.carrier)
    .bind(&m.currency)
    .bind(Json(&m.rate))
    .bind(m.free_over)
    .bind(m.min_days)
    .bind(m.max_days)
    .bind(&m.tax_class)
    .bind(m.is_active)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
