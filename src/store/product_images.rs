//! SQL of product images (the rows; the files are in `store::media`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An image as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImageRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub key: String,
    pub content_type: String,
    pub bytes: i32,
    pub width: i32,
    pub height: i32,
    pub alt: String,
    pub position: i32,
    pub variant_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A checked upload, ready to be recorded.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub id: Uuid,
    pub product_id: Uuid,
    pub key: &'a str,
    pub content_type: &'a str,
    pub bytes: i32,
    pub width: i32,
    pub height: i32,
    pub alt: &'a str,
    pub variant_ids: &'a [Uuid],
}

const COLUMNS: &str = "id, product_id, key, content_type, bytes, width, height, alt, position, \
     variant_ids, created_at, updated_at";

/// Records an image after the product's others (next position).
pub async fn insert(conn: &mut PgConnection, image: &NewImage<'_>) -> sqlx::Result<ImageRow> {
    sqlx::query_as(&format!(
        "INSERT INTO product_images (id, product_id, key, content_type, bytes, width, height, alt, variant_ids, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
           (SELECT coalesce(max(position) + 1, 0) FROM product_images WHERE product_id = $2)) \
         RETURNING {COLUMNS}"
    ))
    .bind(image.id)
    .bind(image.product_id)
    .bind(image.key)
    .bind(image.content_type)
    .bind(image.bytes)
    .bind(image.width)
    .bind(image.height)
    .bind(image.alt)
    .bind(image.variant_ids)
    .fetch_one(conn)
    .await
}

/// The images of `product_ids`, by product, position and id.
pub async fn of_products(pool: &PgPool, product_ids: &[Uuid]) -> sqlx::Result<Vec<ImageRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM product_images WHERE product_id = ANY($1) ORDER BY product_id, position, id"
    ))
    .bind(product_ids)
    .fetch_all(pool)
    .await
}

/// How many images a product has.
pub async fn count(conn: &mut PgConnection, product_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM product_images WHERE product_id = $1")
        .bind(product_id)
        .fetch_one(conn)
        .await
}

/// One image of a product, locked for a change.
pub async fn lock(
    conn: &mut PgConnection,
    product_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ImageRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM product_images WHERE id = $1 AND product_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(product_id)
    .fetch_optional(conn)
    .await
}

/// Overwrites an image's editable fields.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    alt: &str,
    position: i32,
    variant_ids: &[Uuid],
) -> sqlx::Result<ImageRow> {
    sqlx::query_as(&format!(
        "UPDATE product_images SET alt = $2, position = $3, variant_ids = $4, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(alt)
    .bind(position)
    .bind(variant_ids)
    .fetch_one(conn)
    .await
}

/// Deletes an image's row.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM product_images WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets a variant in the images that show it (it was deleted).
pub async fn forget_variant(conn: &mut PgConnection, variant_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE product_images SET variant_ids = array_remove(variant_ids, $1), updated_at = now() \
         WHERE $1 = ANY(variant_ids)",
    )
    .bind(variant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys of a product's images (to remove their files after it goes).
pub async fn keys_of(pool: &PgPool, product_id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT key FROM product_images WHERE product_id = $1")
        .bind(product_id)
        .fetch_all(pool)
        .await
}
