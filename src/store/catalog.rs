//! SQL of the catalog database: categories, products, stock reservations
//! (their per-location levels and ledger are in `store::stock`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::cache_scope::ProductsMoved;
use crate::domain::catalog::category::CategoryFields;
use crate::domain::catalog::facets::{CategoryCount, Facets, PriceRange, StockCounts, ValueCount};
use crate::domain::catalog::listing::{CategoryRef, Ordering};
use crate::domain::catalog::listing_index::{CategoryName, IndexedProduct, Ranks};
use crate::domain::catalog::product::ProductFields;
use crate::domain::catalog::variant::{OptionValues, ProductOption, VariantFields};
use crate::domain::events::{Event, EventType, ProductData};

/// A category as stored (sent as `actors::catalog::messages::CategoryView`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CategoryRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

/// A product as stored (sent as `actors::catalog::messages::ProductView`).
/// `sku`, `price` and `stock` are kept from its variants (see
/// [`refresh_totals`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProductRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// The default variant's, when the product has no options.
    pub sku: Option<String>,
    pub description: String,
    pub category_id: Option<Uuid>,
    /// Lowest active variant price, in minor units of `currency`.
    pub price: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units over the active variants.
    pub stock: i32,
    pub tags: Vec<String>,
    pub is_active: bool,
    pub options: Json<Vec<ProductOption>>,
    /// Tax-class code (a class of the orders domain, not checked here).
    pub tax_class: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductRow {
    /// The editable fields, for applying a partial update.
    pub fn fields(&self) -> ProductFields {
        ProductFields {
            name: self.name.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            category_id: self.category_id,
            currency: self.currency.clone(),
            tags: self.tags.clone(),
            is_active: self.is_active,
            options: self.options.0.clone(),
            tax_class: self.tax_class.clone(),
        }
    }
}

/// A product variant as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VariantRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku: String,
    pub options: Json<OptionValues>,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub stock: i32,
    pub weight_grams: i32,
    /// `false` for variants that are never shipped.
    pub requires_shipping: bool,
    pub is_active: bool,
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl VariantRow {
    /// The editable fields, for applying a partial update.
    pub fn fields(&self) -> VariantFields {
        VariantFields {
            sku: self.sku.clone(),
            options: self.options.0.clone(),
            price: self.price,
            compare_at_price: self.compare_at_price,
            stock: self.stock,
            weight_grams: self.weight_grams,
            requires_shipping: self.requires_shipping,
            is_active: self.is_active,
            position: self.position,
        }
    }
}

/// What carts and orders need to price, ship, tax and hold a line: a
/// variant, with its product's name, currency and tax class. `is_active` is
/// the product's and the variant's together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct VariantSnapshot {
    pub id: Uuid,
    pub product_id: Uuid,
    pub name: String,
    pub slug: String,
    pub sku: String,
    #[sqlx(json)]
    pub options: OptionValues,
    pub price: i64,
    pub currency: String,
    pub is_active: bool,
    pub stock: i32,
    /// The variant's weight, for shipping rates banded by weight.
    pub weight_grams: i32,
    /// Whether the line is shipped; lines that are not add no weight and
    /// need no shipping method.
    pub requires_shipping: bool,
    /// The product's tax-class code, for the line's tax rate (a class
    /// without a rate is charged at none).
    pub tax_class: String,
}

/// How a line's id resolved to a variant: the id of a variant, or of a
/// product with one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemResolution {
    /// The id the line named.
    pub requested: Uuid,
    /// The variant it names; `None` when unknown or ambiguous.
    pub variant_id: Option<Uuid>,
    /// How many variants the id could mean (0 unknown, 1 resolved, more:
    /// a product whose variant must be named).
    pub candidates: i64,
}

/// Resolved filters of a product listing.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub only_active: bool,
    /// A category and its descendants; `None` means any category.
    pub category_ids: Option<Vec<Uuid>>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub q: Option<String>,
    pub in_stock: Option<bool>,
    pub tags: Vec<String>,
    /// By option name, the values of which the product must have one on
    /// an active variant (each option on its own).
    pub options: Vec<(String, Vec<String>)>,
}

const CATEGORY_COLUMNS: &str = "id, name, slug, parent_id";
const PRODUCT_COLUMNS: &str =
    "id, name, slug, sku, description, category_id, price, currency, stock, tags, is_active, options, \
     tax_class, created_at, updated_at";
const VARIANT_COLUMNS: &str =
    "id, product_id, sku, options, price, compare_at_price, stock, weight_grams, \
     requires_shipping, is_active, position, created_at, updated_at";
const SNAPSHOT_SELECT: &str = "SELECT v.id, v.product_id, p.name, p.slug, v.sku, v.options, v.price, p.currency, \
     (p.is_active AND v.is_active) AS is_active, v.stock, v.weight_grams, v.requires_shipping, p.tax_class \
     FROM product_variants v JOIN products p ON p.id = v.product_id";

/// Unique and foreign-key constraints the actor turns into 409s and 422s.
pub mod constraints {
    /// Category slugs are unique.
    pub const CATEGORY_SLUG: &str = "categories_slug_key";
    /// A category's parent exists (and keeps children from orphaning).
    pub const CATEGORY_PARENT: &str = "categories_parent_id_fkey";
    /// Product slugs are unique.
    pub const PRODUCT_SLUG: &str = "products_slug_key";
    /// SKUs are unique, over every variant.
    pub const VARIANT_SKU: &str = "product_variants_sku_key";
    /// One variant per combination of option values.
    pub const VARIANT_OPTIONS: &str = "product_variants_options_key";
    /// A product's category exists (and keeps products from orphaning).
    pub const PRODUCT_CATEGORY: &str = "products_category_id_fkey";
    /// Reserved lines point at existing variants.
    pub const RESERVED_VARIANT: &str = "reservation_items_variant_id_fkey";
}

/// Inserts a category; a taken slug fails on `categories_slug_key`.
pub async fn insert_category(
    pool: &PgPool,
    c: &CategoryFields,
) -> Result<CategoryRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO categories (id, name, slug, parent_id) VALUES ($1, $2, $3, $4) RETURNING {CATEGORY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(&c.name)
    .bind(&c.slug)
    .bind(c.parent_id)
    .fetch_one(pool)
    .await
}

/// One page of categories by slug, and the total.
pub async fn list_categories(
    pool: &PgPool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<CategoryRow>, i64), sqlx::Error> {
    let count = sqlx::query_scalar("SELECT count(*) FROM categories")
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories ORDER BY slug, id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, count))
}

/// A category by id.
pub async fn get_category(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<CategoryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// `id` followed by each of its ancestors up to the root.
pub async fn category_lineage(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE up(id, parent_id, depth) AS ( \
           SELECT id, parent_id, 0 FROM categories WHERE id = $1 \
           UNION ALL \
           SELECT c.id, c.parent_id, up.depth + 1 FROM categories c JOIN up ON c.id = up.parent_id \
           WHERE up.depth < 1000) \
         SELECT id FROM up ORDER BY depth",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// Serialises tree changes: a cycle check and the move it allows must not
/// interleave with another move.
pub async fn lock_category_tree(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('emporium.categories.tree'))")
        .execute(conn)
        .await?;
    Ok(())
}

/// Overwrites a category's fields; `None` when there is none.
pub async fn update_category(
    conn: &mut PgConnection,
    id: Uuid,
    c: &CategoryFields,
) -> Result<Option<CategoryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE categories SET name = $2, slug = $3, parent_id = $4, updated_at = now() WHERE id = $1 RETURNING {CATEGORY_COLUMNS}"
    ))
    .bind(id)
    .bind(&c.name)
    .bind(&c.slug)
    .bind(c.parent_id)
    .fetch_optional(conn)
    .await
}

/// Deletes a category; `false` when there was none. Products or children
/// still pointing at it fail on their foreign keys.
pub async fn delete_category(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM categories WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The category named by `reference` and all its descendants; `None` when
/// no such category exists.
pub async fn category_subtree(
    pool: &PgPool,
    reference: &CategoryRef,
) -> Result<Option<Vec<Uuid>>, sqlx::Error> {
    let (by_id, by_slug) = match reference {
        CategoryRef::Id(id) => (Some(*id), None),
        CategoryRef::Slug(slug) => (None, Some(slug.as_str())),
    };
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "WITH RECURSIVE down(id, depth) AS ( \
           SELECT id, 0 FROM categories WHERE id = $1 OR slug = $2 \
           UNION ALL \
           SELECT c.id, down.depth + 1 FROM categories c JOIN down ON c.parent_id = down.id \
           WHERE down.depth < 1000) \
         SELECT DISTINCT id FROM down",
    )
    .bind(by_id)
    .bind(by_slug)
    .fetch_all(pool)
    .await?;
    Ok((!ids.is_empty()).then_some(ids))
}

/// Inserts a product and its variants, and sets its totals from them;
/// taken slugs and SKUs fail on their unique keys.
pub async fn insert_product(
    conn: &mut PgConnection,
    id: Uuid,
    p: &ProductFields,
    variants: &[(Uuid, VariantFields)],
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO products (id, name, slug, description, category_id, price, currency, stock, tags, is_active, options, \
         tax_class) VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(&p.name)
    .bind(&p.slug)
    .bind(&p.description)
    .bind(p.category_id)
    .bind(&p.currency)
    .bind(&p.tags)
    .bind(p.is_active)
    .bind(Json(&p.options))
    .bind(&p.tax_class)
    .execute(&mut *conn)
    .await?;
    insert_variants(conn, id, variants).await?;
    refresh_totals(conn, &[id]).await?;
    read_product(conn, id).await
}

async fn read_product(conn: &mut PgConnection, id: Uuid) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Inserts variants of one product in one statement.
pub async fn insert_variants(
    conn: &mut PgConnection,
    product_id: Uuid,
    variants: &[(Uuid, VariantFields)],
) -> Result<(), sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, &VariantFields)> = variants
        .iter()
        .map(|(id, v)| (*id, product_id, v))
        .collect();
    insert_variant_rows(conn, &rows).await
}

/// Inserts `(variant id, product id, fields)` rows in one statement.
async fn insert_variant_rows(
    conn: &mut PgConnection,
    rows: &[(Uuid, Uuid, &VariantFields)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::new(
        "INSERT INTO product_variants (id, product_id, sku, options, price, compare_at_price, stock, \
         weight_grams, requires_shipping, is_active, position) ",
    );
    qb.push_values(rows, |mut row, (id, product_id, v)| {
        row.push_bind(*id)
            .push_bind(*product_id)
            .push_bind(v.sku.clone())
            .push_bind(Json(v.options.clone()))
            .push_bind(v.price)
            .push_bind(v.compare_at_price)
            .push_bind(v.stock)
            .push_bind(v.weight_grams)
            .push_bind(v.requires_shipping)
            .push_bind(v.is_active)
            .push_bind(v.position);
    });
    qb.build().execute(conn).await?;
    Ok(())
}

/// Sets each product's `price` (lowest active variant price, or lowest
/// price when none is active), `stock` (over active variants) and `sku`
/// (the one variant's, without options) from its variants. The products
/// are locked in id order first: every statement that writes several
/// products takes them in that order, after their variants, so two can
/// never wait on each other in a cycle. Answers what moved, for the
/// caches.
pub async fn refresh_totals(
    conn: &mut PgConnection,
    product_ids: &[Uuid],
) -> Result<ProductsMoved, sqlx::Error> {
    let before: Vec<(Uuid, i64, i32)> = sqlx::query_as(
        "SELECT id, price, stock FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(product_ids)
    .fetch_all(&mut *conn)
    .await?;
    let after: Vec<(Uuid, i64, i32)> = sqlx::query_as(
        "UPDATE products p SET price = t.price, stock = t.stock, \
           sku = CASE WHEN p.options = '[]'::jsonb THEN t.sku END, \
           option_values = coalesce((SELECT array_agg(DISTINCT o.key || chr(31) || o.value ORDER BY o.key || chr(31) || o.value) \
              FROM product_variants v CROSS JOIN LATERAL jsonb_each_text(v.options) AS o(key, value) \
              WHERE v.product_id = p.id AND v.is_active), '{}'), \
           updated_at = now() \
         FROM (SELECT product_id, \
                 coalesce(min(price) FILTER (WHERE is_active), min(price)) AS price, \
                 least(coalesce(sum(stock) FILTER (WHERE is_active), 0), 2147483647)::int AS stock, \
                 min(sku) AS sku \
               FROM product_variants WHERE product_id = ANY($1) GROUP BY product_id) t \
         WHERE p.id = t.product_id \
         RETURNING p.id, p.price, p.stock",
    )
    .bind(product_ids)
    .fetch_all(conn)
    .await?;
    let mut moved = ProductsMoved::default();
    for (id, price, stock) in after {
        let Some((_, old_price, old_stock)) = before.iter().find(|(b, _, _)| *b == id) else {
            // Not seen before (cannot happen under the lock): assume the
            // worst.
            moved.merge(ProductsMoved {
                ids: [id].into(),
                stock_crossed_zero: true,
                repriced: true,
            });
            continue;
        };
        moved.merge(ProductsMoved::of(
            id,
            (*old_price, *old_stock),
            (price, stock),
        ));
    }
    Ok(moved)
}

/// The variants of `product_ids`, by product, position and id.
pub async fn variants_of(
    pool: &PgPool,
    product_ids: &[Uuid],
) -> Result<Vec<VariantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VARIANT_COLUMNS} FROM product_variants WHERE product_id = ANY($1) \
         ORDER BY product_id, position, id"
    ))
    .bind(product_ids)
    .fetch_all(pool)
    .await
}

/// A product's variants locked for a change, in id order.
pub async fn lock_variants_of(
    conn: &mut PgConnection,
    product_id: Uuid,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VARIANT_COLUMNS} FROM product_variants WHERE product_id = $1 ORDER BY id FOR UPDATE"
    ))
    .bind(product_id)
    .fetch_all(conn)
    .await
}

/// Overwrites a variant's fields; `None` when there is none.
pub async fn update_variant(
    conn: &mut PgConnection,
    id: Uuid,
    v: &VariantFields,
) -> Result<Option<VariantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE product_variants SET sku = $2, options = $3, price = $4, compare_at_price = $5, stock = $6, \
         weight_grams = $7, is_active = $8, position = $9, requires_shipping = $10, updated_at = now() \
         WHERE id = $1 RETURNING {VARIANT_COLUMNS}"
    ))
    .bind(id)
    .bind(&v.sku)
    .bind(Json(&v.options))
    .bind(v.price)
    .bind(v.compare_at_price)
    .bind(v.stock)
    .bind(v.weight_grams)
    .bind(v.is_active)
    .bind(v.position)
    .bind(v.requires_shipping)
    .fetch_optional(conn)
    .await
}

/// Deletes a variant; `false` when there was none. A variant that
/// reservations refer to fails on their foreign key.
pub async fn delete_variant(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM product_variants WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether held (open) reservations hold this variant.
pub async fn variant_is_held(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM reservation_items i JOIN reservations r ON r.id = i.reservation_id \
         WHERE i.variant_id = $1 AND r.status = 'held')",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

/// A product by id, active or not.
pub async fn get_product(pool: &PgPool, id: Uuid) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A product by slug, active or not.
pub async fn get_product_by_slug(
    pool: &PgPool,
    slug: &str,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(pool)
    .await
}

/// A product locked for a read-modify-write update.
pub async fn lock_product(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Overwrites a product's own fields (not its totals); `None` when there
/// is none.
pub async fn update_product(
    conn: &mut PgConnection,
    id: Uuid,
    p: &ProductFields,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE products SET name = $2, slug = $3, description = $4, category_id = $5, currency = $6, \
         tags = $7, is_active = $8, options = $9, tax_class = $10, updated_at = now() WHERE id = $1 \
         RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(id)
    .bind(&p.name)
    .bind(&p.slug)
    .bind(&p.description)
    .bind(p.category_id)
    .bind(&p.currency)
    .bind(&p.tags)
    .bind(p.is_active)
    .bind(Json(&p.options))
    .bind(&p.tax_class)
    .fetch_optional(conn)
    .await
}

/// Deletes a product and appends its `product.deleted` event (the product
/// as it was) in one transaction; `false` when there was none. A product
/// that reservations refer to fails on their foreign key.
pub async fn delete_product(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted: Option<ProductRow> = sqlx::query_as(&format!(
        "DELETE FROM products WHERE id = $1 RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = deleted else {
        return Ok(false);
    };
    let event = Event::new(EventType::ProductDeleted, row.id, &product_data(&row));
    crate::store::events::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(true)
}

/// A product's `product.*` event payload.
pub fn product_data(row: &ProductRow) -> ProductData {
    ProductData {
        product_id: row.id,
        name: row.name.clone(),
        slug: row.slug.clone(),
        price: row.price,
        currency: row.currency.clone(),
        category_id: row.category_id,
        is_active: row.is_active,
    }
}

/// Appends a `product.*` event of `event_type` about product `id` as it is
/// now in the caller's transaction (call it after the change and its
/// [`refresh_totals`]).
pub async fn append_product_event(
    conn: &mut PgConnection,
    event_type: EventType,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    let row = read_product(&mut *conn, id).await?;
    let event = Event::new(event_type, row.id, &product_data(&row));
    crate::store::events::append(conn, &event).await
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, f: &ProductFilter) {
    qb.push(" WHERE true");
    push_base(qb, f);
    for facet in Facet::ALL {
        qb.push(" AND ");
        push_facet_filter(qb, f, facet);
    }
}

/// The filters no facet counts over: visibility and search.
fn push_base(qb: &mut QueryBuilder<'_, Postgres>, f: &ProductFilter) {
    if f.only_active {
        qb.push(" AND products.is_active");
    }
    if let Some(q) = &f.q {
        qb.push(" AND products.search @@ websearch_to_tsquery('english', ")
            .push_bind(q.clone())
            .push(")");
    }
}

/// The filters a facet ignores when it counts: its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Facet {
    Category,
    Price,
    Stock,
    Tags,
    Options,
}

impl Facet {
    const ALL: [Facet; 5] = [
        Facet::Category,
        Facet::Price,
        Facet::Stock,
        Facet::Tags,
        Facet::Options,
    ];
}

/// One facet's filter as a boolean SQL expression over `products` (`true`
/// when the filter is not set).
fn push_facet_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &ProductFilter, facet: Facet) {
    qb.push("(true");
    match facet {
        Facet::Category => {
            if let Some(ids) = &f.category_ids {
                qb.push(" AND products.category_id = ANY(")
                    .push_bind(ids.clone())
                    .push(")");
            }
        }
        Facet::Price => {
            if let Some(min) = f.min_price {
                qb.push(" AND products.price >= ").push_bind(min);
            }
            if let Some(max) = f.max_price {
                qb.push(" AND products.price <= ").push_bind(max);
            }
        }
        Facet::Stock => match f.in_stock {
            Some(true) => {
                qb.push(" AND products.stock > 0");
            }
            Some(false) => {
                qb.push(" AND products.stock = 0");
            }
            None => {}
        },
        Facet::Tags => {
            if !f.tags.is_empty() {
                qb.push(" AND products.tags @> ").push_bind(f.tags.clone());
            }
        }
        Facet::Options => push_option_filters(qb, f, None),
    }
    qb.push(")");
}

/// `name || chr(31) || value`, as `products.option_values` holds them.
fn option_terms(name: &str, values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{name}{OPTION_SEPARATOR}{v}"))
        .collect()
}

/// Joins an option name and value in `products.option_values`; option
/// names and values cannot hold control characters, so it never occurs in
/// either.
const OPTION_SEPARATOR: char = '\u{1f}';

/// `AND option_values && {name=values…}` for every option filter; for the
/// facet of option `column` (an SQL expression naming the option counted),
/// a filter on that same option is let through.
fn push_option_filters(
    qb: &mut QueryBuilder<'_, Postgres>,
    f: &ProductFilter,
    except: Option<&str>,
) {
    for (name, values) in &f.options {
        qb.push(" AND (");
        if let Some(column) = except {
            qb.push(column)
                .push(" = ")
                .push_bind(name.clone())
                .push(" OR ");
        }
        qb.push("products.option_values && ")
            .push_bind(option_terms(name, values))
            .push(")");
    }
}

/// The facets of a listing (see `domain::catalog::facets`): one statement
/// over the products the visibility and search filters leave, each facet
/// counted under every filter but its own.
pub async fn facets(pool: &PgPool, f: &ProductFilter) -> Result<Facets, sqlx::Error> {
    let mut qb = QueryBuilder::new(
        "WITH base AS MATERIALIZED (SELECT products.id, products.category_id, products.tags, \
         products.price, products.stock, products.option_values",
    );
    for (facet, column) in [
        (Facet::Category, "fc"),
        (Facet::Price, "fp"),
        (Facet::Stock, "fs"),
        (Facet::Tags, "ft"),
        (Facet::Options, "fo"),
    ] {
        qb.push(", ");
        push_facet_filter(&mut qb, f, facet);
        qb.push(" AS ").push(column);
    }
    qb.push(" FROM products WHERE true");
    push_base(&mut qb, f);
    // `products` inside the option filters is the base row here.
    qb.push(
        "), opts AS (SELECT split_part(ov, chr(31), 1) AS key, \
           substr(ov, strpos(ov, chr(31)) + 1) AS value, count(*) AS n \
         FROM base AS products, unnest(products.option_values) AS ov \
         WHERE products.fc AND products.fp AND products.fs AND products.ft",
    );
    push_option_filters(&mut qb, f, Some("split_part(ov, chr(31), 1)"));
    qb.push(
        " GROUP BY 1, 2) \
         SELECT \
          (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'slug', c.slug, 'name', c.name, 'count', x.n) \
                   ORDER BY x.n DESC, c.slug), '[]'::jsonb) \
           FROM (SELECT category_id, count(*) AS n FROM base WHERE fp AND fs AND ft AND fo \
                 AND category_id IS NOT NULL GROUP BY category_id) x JOIN categories c ON c.id = x.category_id) \
            AS categories, \
          (SELECT coalesce(jsonb_agg(jsonb_build_object('value', t, 'count', n) ORDER BY n DESC, t), '[]'::jsonb) \
           FROM (SELECT t, count(*) AS n FROM base, unnest(tags) AS t WHERE fc AND fp AND fs AND fo GROUP BY t) x) \
            AS tags, \
          (SELECT coalesce(jsonb_object_agg(key, vals), '{}'::jsonb) FROM \
             (SELECT key, jsonb_agg(jsonb_build_object('value', value, 'count', n) ORDER BY n DESC, value) AS vals \
              FROM opts GROUP BY key) y) AS options, \
          (SELECT jsonb_build_object('min', min(price), 'max', max(price)) FROM base WHERE fc AND fs AND ft AND fo) \
            AS price, \
          (SELECT jsonb_build_object('true', count(*) FILTER (WHERE stock > 0), \
                                     'false', count(*) FILTER (WHERE stock = 0)) \
           FROM base WHERE fc AND fp AND ft AND fo) AS in_stock",
    );
    let (categories, tags, options, price, in_stock): FacetColumns =
        qb.build_query_as().fetch_one(pool).await?;
    Ok(Facets {
        categories: categories.0,
        tags: tags.0,
        options: options.0,
        price: price.0,
        in_stock: in_stock.0,
    })
}

/// A product as the listing index reads it.
#[derive(sqlx::FromRow)]
struct ListingRow {
    id: Uuid,
    is_active: bool,
    category_id: Option<Uuid>,
    price: i64,
    stock: i32,
    tags: Vec<String>,
    option_values: Vec<String>,
    price_rank: i32,
    name_rank: i32,
    created_rank: i32,
}

/// What the in-memory listing index reads: every category, and every
/// product's facet fields (see `domain::catalog::listing_index`).
pub async fn listing_sources(
    pool: &PgPool,
) -> Result<(Vec<CategoryName>, Vec<IndexedProduct>), sqlx::Error> {
    let categories: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, slug, name FROM categories")
            .fetch_all(pool)
            .await?;
    let rows: Vec<ListingRow> = sqlx::query_as(
        "SELECT id, is_active, category_id, price, stock, tags, option_values, \
           (row_number() OVER (ORDER BY price, id))::int - 1 AS price_rank, \
           (row_number() OVER (ORDER BY name, id))::int - 1 AS name_rank, \
           (row_number() OVER (ORDER BY created_at, id))::int - 1 AS created_rank \
         FROM products",
    )
    .fetch_all(pool)
    .await?;
    let categories = categories
        .into_iter()
        .map(|(id, slug, name)| CategoryName { id, slug, name })
        .collect();
    let rank = |r: i32| u32::try_from(r).unwrap_or_default();
    let products = rows
        .into_iter()
        .map(|r| IndexedProduct {
            id: r.id,
            ranks: Ranks {
                price: rank(r.price_rank),
                name: rank(r.name_rank),
                created: rank(r.created_rank),
            },
            is_active: r.is_active,
            category_id: r.category_id,
            price: r.price,
            stock: i64::from(r.stock),
            tags: r.tags,
            options: r
                .option_values
                .into_iter()
                .filter_map(|v| {
                    v.split_once(OPTION_SEPARATOR)
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                })
                .collect(),
        })
        .collect();
    Ok((categories, products))
}

type FacetColumns = (
    Json<Vec<CategoryCount>>,
    Json<Vec<ValueCount>>,
    Json<std::collections::BTreeMap<String, Vec<ValueCount>>>,
    Json<PriceRange>,
    Json<StockCounts>,
);

fn page_query(
    prefix: &str,
    f: &ProductFilter,
    ordering: Ordering,
    limit: i64,
    offset: i64,
) -> QueryBuilder<'static, Postgres> {
    let mut qb = QueryBuilder::new(format!("{prefix}SELECT {PRODUCT_COLUMNS} FROM products"));
    push_filters(&mut qb, f);
    qb.push(" ORDER BY ")
        .push(ordering.sql())
        .push(" LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    qb
}

/// The query plan of one listing page, one line per row, for checking that
/// common listings use indexes.
pub async fn explain_list_products(
    pool: &PgPool,
    f: &ProductFilter,
    ordering: Ordering,
    limit: i64,
    offset: i64,
) -> Result<Vec<String>, sqlx::Error> {
    page_query("EXPLAIN ", f, ordering, limit, offset)
        .build_query_scalar()
        .fetch_all(pool)
        .await
}

/// One page of products and the total count matching the filter.
pub async fn list_products(
    pool: &PgPool,
    f: &ProductFilter,
    ordering: Ordering,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ProductRow>, i64), sqlx::Error> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM products");
    push_filters(&mut count, f);
    let count: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let rows = page_query("", f, ordering, limit, offset)
        .build_query_as()
        .fetch_all(pool)
        .await?;
    Ok((rows, count))
}

/// How each of `ids` resolves to a variant: a variant's own id, or the id
/// of a product with exactly one variant.
pub async fn resolve_items(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<ItemResolution>, sqlx::Error> {
    sqlx::query_as(
        "SELECT x.id AS requested, \
           coalesce(d.id, (SELECT v.id FROM product_variants v WHERE v.product_id = x.id ORDER BY v.id LIMIT 1)) \
             AS variant_id, \
           CASE WHEN d.id IS NOT NULL THEN 1 \
                ELSE (SELECT count(*) FROM product_variants v WHERE v.product_id = x.id) END AS candidates \
         FROM unnest($1::uuid[]) AS x(id) LEFT JOIN product_variants d ON d.id = x.id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Snapshots of the known variants among `ids`.
pub async fn variant_snapshots(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<VariantSnapshot>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SNAPSHOT_SELECT} WHERE v.id = ANY($1) ORDER BY v.id"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Creates a held reservation; `false` when one with this id exists already.
pub async fn insert_reservation(
    conn: &mut PgConnection,
    id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO reservations (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(id)
    .bind(expires_at)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// A reservation's status, if it exists.
pub async fn reservation_status(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Locks the requested variants in id order and reads them as orders are
/// priced from them.
pub async fn lock_snapshots(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<VariantSnapshot>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SNAPSHOT_SELECT} WHERE v.id = ANY($1) ORDER BY v.id FOR UPDATE OF v"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Releases a held reservation and returns its stock, answering what
/// moved; `None` when it was not held (committed or already released). A
/// reservation that does not exist yet is recorded as released, so a
/// reserve step that arrives late (after its caller timed out and
/// compensated) finds it and holds nothing.
pub async fn release_reservation(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ProductsMoved>, sqlx::Error> {
    let tombstone: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO reservations (id, status, expires_at) VALUES ($1, 'released', now()) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if tombstone.is_some() {
        return Ok(None);
    }
    let released: Option<Uuid> = sqlx::query_scalar(
        "UPDATE reservations SET status = 'released', updated_at = now() WHERE id = $1 AND status = 'held' RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if released.is_none() {
        return Ok(None);
    }
    Ok(Some(return_to_stock(conn, &[id]).await?))
}

/// Releases what a held or paid reservation has not shipped (a refunded
/// order's units go back on sale), answering what moved; `None` when it
/// was released already or does not exist.
pub async fn release_unshipped(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ProductsMoved>, sqlx::Error> {
    let released: Option<Uuid> = sqlx::query_scalar(
        "UPDATE reservations SET status = 'released', updated_at = now() \
         WHERE id = $1 AND status IN ('held', 'committed') RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if released.is_none() {
        return Ok(None);
    }
    Ok(Some(return_to_stock(conn, &[id]).await?))
}

/// Gives the lines of `reservations` back to the locations they were taken
/// from and updates the variants' and products' totals. Variants are
/// locked in id order first, then products (in [`refresh_totals`]): the
/// one order every multi-row statement uses (reserve, release, sweep,
/// commit, admin changes), so two of them can never deadlock.
async fn return_to_stock(
    conn: &mut PgConnection,
    reservations: &[Uuid],
) -> Result<ProductsMoved, sqlx::Error> {
    let locked = super::stock::lock_variants_held_by(conn, reservations).await?;
    let variants: Vec<Uuid> = locked.iter().map(|(v, _)| *v).collect();
    super::stock::unhold(conn, reservations, &variants).await?;
    let mut products: Vec<Uuid> = locked.into_iter().map(|(_, p)| p).collect();
    products.sort_unstable();
    products.dedup();
    refresh_totals(conn, &products).await
}

/// Commits a held reservation: the order is paid, so it no longer
/// expires. Its units stay held where they are until fulfilments ship
/// them ([`super::stock::ship`]). `false` when it was not held.
pub async fn commit_reservation(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let committed: Option<Uuid> = sqlx::query_scalar(
        "UPDATE reservations SET status = 'committed', updated_at = now() WHERE id = $1 AND status = 'held' RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(committed.is_some())
}

/// Releases up to `batch` expired held reservations and returns their stock
/// in one transaction; concurrent sweepers skip each other's rows. Answers
/// how many were released and what moved.
pub async fn sweep_expired_reservations(
    pool: &PgPool,
    batch: i64,
) -> Result<(u64, ProductsMoved), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE reservations SET status = 'released', updated_at = now() \
         WHERE id IN (SELECT id FROM reservations WHERE status = 'held' AND expires_at < now() \
                      ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let moved = if expired.is_empty() {
        ProductsMoved::default()
    } else {
        return_to_stock(&mut tx, &expired).await?
    };
    tx.commit().await?;
    Ok((expired.len() as u64, moved))
}

/// Creates a category by slug or renames the existing one; returns its id.
pub async fn upsert_category(
    pool: &PgPool,
    slug: &str,
    name: &str,
    parent_id: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO categories (id, name, slug, parent_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(slug)
    .bind(parent_id)
    .fetch_one(pool)
    .await
}

/// A product to insert in bulk: its id, fields, and variants with theirs.
pub type SeedProduct = (Uuid, ProductFields, Vec<(Uuid, VariantFields)>);

/// Inserts products and their variants in one transaction, skipping any
/// product whose id or slug exists already (and its variants); returns how
/// many products were inserted.
pub async fn insert_products_bulk(
    pool: &PgPool,
    products: &[SeedProduct],
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut qb = QueryBuilder::new(
        "INSERT INTO products (id, name, slug, description, category_id, price, currency, stock, tags, is_active, options, \
         tax_class) ",
    );
    qb.push_values(products, |mut row, (id, p, _)| {
        row.push_bind(*id)
            .push_bind(p.name.clone())
            .push_bind(p.slug.clone())
            .push_bind(p.description.clone())
            .push_bind(p.category_id)
            .push_bind(0_i64)
            .push_bind(p.currency.clone())
            .push_bind(0_i32)
            .push_bind(p.tags.clone())
            .push_bind(p.is_active)
            .push_bind(Json(p.options.clone()))
            .push_bind(p.tax_class.clone());
    });
    qb.push(" ON CONFLICT DO NOTHING RETURNING id");
    let inserted: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
    let fresh: std::collections::HashSet<Uuid> = inserted.iter().copied().collect();
    let variants: Vec<(Uuid, Uuid, &VariantFields)> = products
        .iter()
        .filter(|(id, _, _)| fresh.contains(id))
        .flat_map(|(id, _, vs)| vs.iter().map(move |(vid, v)| (*vid, *id, v)))
        .collect();
    // At most 11 binds per row, so a chunk stays under PostgreSQL's 65,535.
    for chunk in variants.chunks(2000) {
        insert_variant_rows(&mut tx, chunk).await?;
    }
    let opening: Vec<(Uuid, i32)> = variants.iter().map(|(id, _, v)| (*id, v.stock)).collect();
    if super::stock::record_opening_stock(&mut tx, &opening, None)
        .await?
        .is_err()
    {
        return Err(sqlx::Error::Protocol(
            "no stock location is active to hold the seeded stock; activate one first".into(),
        ));
    }
    let mut ids = inserted.clone();
    ids.sort_unstable();
    refresh_totals(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(inserted.len() as u64)
}

/// What the recommender needs of a product.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProductFeatureRow {
    pub id: Uuid,
    pub category_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub price: i64,
    pub stock: i32,
    pub is_active: bool,
}

impl ProductFeatureRow {
    /// The product as the recommender reads it: available when active and
    /// in stock.
    pub fn into_input(self) -> crate::domain::recommendations::assemble::ProductInput {
        crate::domain::recommendations::assemble::ProductInput {
            id: self.id,
            category_id: self.category_id,
            tags: self.tags,
            price: self.price,
            available: self.is_active && self.stock > 0,
        }
    }
}

/// Up to `limit` products after `after` (by id), for the recommender.
pub async fn product_features_page(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ProductFeatureRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, category_id, tags, price, stock, is_active FROM products \
         WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every category's id, parent and slug, for category paths.
pub async fn category_parents(
    pool: &PgPool,
) -> Result<Vec<(Uuid, Option<Uuid>, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, parent_id, slug FROM categories")
        .fetch_all(pool)
        .await
}

/// Products by id, in the order of `ids` (missing ids are left out).
pub async fn products_in_order(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<Vec<ProductRow>, sqlx::Error> {
    let mut rows = products_by_ids(pool, ids).await?;
    let position: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|r| position.get(&r.id).copied().unwrap_or(usize::MAX));
    Ok(rows)
}

/// Products by id, in no particular order (missing ids are left out).
pub async fn products_by_ids(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}
