//! SQL of the tax rules in the orders database: classes and rates.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::pricing::config::TaxRateDraft;
use crate::domain::pricing::rules::TaxRate;

/// A tax class as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClassRow {
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A tax rate as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RateRow {
    pub id: Uuid,
    pub tax_class: String,
    pub country: String,
    pub region: Option<String>,
    pub rate_bp: i32,
    pub created_at: DateTime<Utc>,
}

impl RateRow {
    /// The rate as pricing reads it.
    pub fn rule(&self) -> TaxRate {
        TaxRate {
            tax_class: self.tax_class.clone(),
            country: self.country.clone(),
            region: self.region.clone(),
            rate_bp: u32::try_from(self.rate_bp).unwrap_or(0),
        }
    }
}

/// Unique and foreign-key constraints the actor turns into 409s and 422s.
pub mod constraints {
    /// One rate per class, country and region.
    pub const RATE_PLACE: &str = "tax_rates_place_key";
    /// A rate's class must exist.
    pub const RATE_CLASS: &str = "tax_rates_tax_class_fkey";
    /// Class codes are unique.
    pub const CLASS_CODE: &str = "tax_classes_pkey";
}

const RATE_COLUMNS: &str = "id, tax_class, country, region, rate_bp, created_at";

/// Every class, by code.
pub async fn classes(pool: &PgPool) -> Result<Vec<ClassRow>, sqlx::Error> {
    sqlx::query_as("SELECT code, name, created_at FROM tax_classes ORDER BY code")
        .fetch_all(pool)
        .await
}

/// Creates a class.
pub async fn insert_class(pool: &PgPool, code: &str, name: &str) -> Result<ClassRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO tax_classes (code, name) VALUES ($1, $2) RETURNING code, name, created_at",
    )
    .bind(code)
    .bind(name)
    .fetch_one(pool)
    .await
}

/// Deletes a class and its rates; whether it existed.
pub async fn delete_class(pool: &PgPool, code: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM tax_classes WHERE code = $1")
        .bind(code)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every rate, by class, country and region.
pub async fn rates(pool: &PgPool) -> Result<Vec<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates ORDER BY tax_class, country, region NULLS FIRST, id"
    ))
    .fetch_all(pool)
    .await
}

/// One rate.
pub async fn rate(pool: &PgPool, id: Uuid) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Creates a rate.
pub async fn insert_rate(
    pool: &PgPool,
    id: Uuid,
    r: &TaxRateDraft,
) -> Result<RateRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO tax_rates (id, tax_class, country, region, rate_bp) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {RATE_COLUMNS}"
    ))
    .bind(id)
    .bind(&r.tax_class)
    .bind(&r.country)
    .bind(&r.region)
    .bind(i32::try_from(r.rate_bp).unwrap_or(i32::MAX))
    .fetch_one(pool)
    .await
}

/// Replaces a rate's fields; `None` when it does not exist.
pub async fn update_rate(
    pool: &PgPool,
    id: Uuid,
    r: &TaxRateDraft,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE tax_rates SET tax_class = $2, country = $3, region = $4, rate_bp = $5 \
         WHERE id = $1 RETURNING {RATE_COLUMNS}"
    ))
    .bind(id)
    .bind(&r.tax_class)
    .bind(&r.country)
    .bind(&r.region)
    .bind(i32::try_from(r.rate_bp).unwrap_or(i32::MAX))
    .fetch_optional(pool)
    .await
}

/// Deletes a rate; whether it existed.
pub async fn delete_rate(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM tax_rates WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Creates a rate unless one has this id or place (demo data, which must
/// not override a rate the shop set); whether it did.
pub async fn insert_rate_if_absent(
    pool: &PgPool,
    id: Uuid,
    r: &TaxRateDraft,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO tax_rates (id, tax_class, country, region, rate_bp) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&r.tax_class)
    .bind(&r.country)
    .bind(&r.region)
    .bind(i32::try_from(r.rate_bp).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
