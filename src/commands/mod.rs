//! Operator commands that run without the HTTP edge.

pub mod recommend_eval;

use anyhow::Context as _;

use crate::config::{Domain, Settings};
use crate::domain::auth::{check_password_policy, normalize_email, PasswordHasher, Role};
use crate::startup::migrate;
use crate::store;

/// Creates an admin account (migrating first). The only way to make the
/// first admin: registration never does.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<uuid::Uuid> {
    let email = normalize_email(email).map_err(|e| anyhow::anyhow!("email: {}", e.message))?;
    check_password_policy("password", password)
        .map_err(|e| anyhow::anyhow!("password: {}", e.message))?;
    migrate(settings).await?;
    let pool = store::database::lazy_pool(&settings.database, Domain::Auth)?;
    let hash = PasswordHasher::new()?.hash(password)?;
    let result =
        store::auth::insert_user(&pool, &email, &hash, name.trim(), Role::Admin.as_str()).await;
    pool.close().await;
    match result {
        Ok(user) => Ok(user.id),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(store::auth::USERS_EMAIL_KEY) => {
            anyhow::bail!(
                "an account with email {email} already exists; an admin can promote it with PATCH /api/v1/auth/users/{{id}}/"
            )
        }
        Err(e) => Err(e).context("creating the admin"),
    }
}

/// Most products `seed-demo` makes in one run.
pub const MAX_DEMO_PRODUCTS: usize = 1_000_000;
/// Products per insert statement (11 parameters each, under PostgreSQL's 65535).
const DEMO_BATCH: usize = 2_000;
/// Demo orders per batch of array inserts (and per transaction).
const ORDER_BATCH: usize = 2_000;

/// What `seed-demo` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub categories: usize,
    pub products_inserted: u64,
    pub customers_inserted: u64,
    pub orders_inserted: u64,
    /// Shipping zones, methods and tax rates added.
    pub rules_inserted: u64,
    /// Stock locations added.
    pub locations_inserted: u64,
}

/// How much demo data to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSize {
    pub products: usize,
    pub customers: usize,
    pub orders_per_customer: usize,
}

/// One generated picture per demo product, written to the media store and
/// recorded; ids and files are derived from the product, so seeding again
/// rewrites the same files and records nothing twice.
async fn seed_images(
    settings: &Settings,
    pool: &sqlx::PgPool,
    demo: &[crate::domain::catalog::demo::DemoProduct],
    seed: u64,
) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    use sha2::Digest as _;

    use crate::domain::catalog::demo::demo_image;
    use crate::domain::catalog::image::{media_key, ImageKind};

    let media = store::media::MediaStore::from_settings(&settings.media)?;
    let bar = indicatif::ProgressBar::new(demo.len() as u64).with_message("images");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>8} {bar:40} {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for chunk in demo.chunks(DEMO_BATCH) {
        let files: Vec<(uuid::Uuid, uuid::Uuid, String, bytes::Bytes)> = chunk
            .iter()
            .map(|p| {
                let png = demo_image(p.id);
                let (hi, lo) = p.id.as_u64_pair();
                let image_id =
                    uuid::Uuid::from_u64_pair(hi ^ seed.rotate_left(7) ^ 0x696d_6167, lo);
                let digest = hex::encode(sha2::Sha256::digest(&png));
                let key = media_key(p.id, image_id, &digest, ImageKind::Png);
                (p.id, image_id, key, bytes::Bytes::from(png))
            })
            .collect();
        let writes = futures_util::stream::iter(files.iter().map(|(_, _, key, png)| {
            let media = media.clone();
            async move { media.put(key, png.clone()).await }
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        for written in writes {
            written?;
        }
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO product_images (id, product_id, key, content_type, bytes, width, height, alt) ",
        );
        qb.push_values(&files, |mut row, (product, image, key, png)| {
            row.push_bind(*image)
                .push_bind(*product)
                .push_bind(key.clone())
                .push_bind(ImageKind::Png.content_type())
                .push_bind(i32::try_from(png.len()).unwrap_or(i32::MAX))
                .push_bind(48_i32)
                .push_bind(48_i32)
                .push_bind("Product picture");
        });
        qb.push(" ON CONFLICT DO NOTHING");
        qb.build().execute(pool).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The password of every demo customer.
pub const DEMO_PASSWORD: &str = "demo password";

/// Fills the catalog with the deterministic demo catalog for `seed`, and
/// the auth and orders databases with demo customers and their delivered
/// orders. Running it again with the same seed inserts nothing new.
pub async fn seed_demo(
    settings: &Settings,
    size: SeedSize,
    seed: u64,
) -> anyhow::Result<SeedReport> {
    let products = size.products;
    use std::collections::HashMap;

    use crate::domain::catalog::demo::{demo_categories, demo_products};

    anyhow::ensure!(
        products <= MAX_DEMO_PRODUCTS,
        "at most {MAX_DEMO_PRODUCTS} products"
    );
    migrate(settings).await?;
    let pool = store::database::lazy_pool(&settings.database, Domain::Catalog)?;
    let mut ids: HashMap<String, uuid::Uuid> = HashMap::new();
    let categories = demo_categories();
    for category in &categories {
        let parent = category
            .parent_slug
            .as_ref()
            .and_then(|p| ids.get(p).copied());
        let id =
            store::catalog::upsert_category(&pool, &category.slug, &category.name, parent).await?;
        ids.insert(category.slug.clone(), id);
    }
    // Before the products: their opening stock goes to the first of them.
    let mut locations_inserted = 0;
    for location in crate::domain::catalog::demo::demo_locations() {
        locations_inserted +=
            u64::from(store::stock::insert_location_if_absent(&pool, &location).await?);
    }
    let mut inserted = 0;
    let demo = demo_products(products, seed);
    for chunk in demo.chunks(DEMO_BATCH) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|p| {
                let mut fields = p.fields.clone();
                fields.category_id = ids.get(&p.category_slug).copied();
                (p.id, fields, p.variants.clone())
            })
            .collect();
        inserted += store::catalog::insert_products_bulk(&pool, &rows).await?;
    }
    seed_images(settings, &pool, &demo, seed).await?;
    sqlx::query("ANALYZE products").execute(&pool).await?;
    sqlx::query("ANALYZE product_variants")
        .execute(&pool)
        .await?;
    pool.close().await;
    // A running instance must not keep serving its cached catalog.
    let cache = crate::actors::catalog::cache::CatalogCache::new(
        store::redis::pool(&settings.redis)?,
        &settings.database.prefix,
        std::time::Duration::from_millis(settings.redis.timeout_ms),
        settings.catalog.cache_ttl_secs,
    );
    if !cache.bump_generation().await {
        tracing::warn!("could not reach Redis to invalidate cached catalog responses");
    }
    crate::actors::read_view::CatalogView::new(
        store::redis::pool(&settings.redis)?,
        &settings.redis.url,
        &settings.database.prefix,
        "catalog",
        settings.catalog.read_view_max_bytes,
    )
    .invalidate()
    .await;
    let (customers_inserted, orders_inserted) = seed_history(settings, &demo, size, seed).await?;
    let rules_inserted = seed_pricing(settings).await?;
    Ok(SeedReport {
        categories: categories.len(),
        products_inserted: inserted,
        customers_inserted,
        orders_inserted,
        rules_inserted,
        locations_inserted,
    })
}

/// The demo shop's shipping zones, methods and tax rates, in the orders
/// database; what exists already (by id, or a rate by place) is kept.
async fn seed_pricing(settings: &Settings) -> anyhow::Result<u64> {
    use crate::domain::pricing::demo::{demo_rates, demo_zones};

    let pool = store::database::lazy_pool(&settings.database, Domain::Orders)?;
    let mut inserted = 0;
    for z in demo_zones() {
        let zone = z
            .zone
            .validate()
            .map_err(|e| anyhow::anyhow!("demo zone: {e:?}"))?;
        inserted += u64::from(store::shipping::insert_zone_if_absent(&pool, z.id, &zone).await?);
        for (id, m) in z.methods {
            let fields = m
                .validate()
                .map_err(|e| anyhow::anyhow!("demo method: {e:?}"))?;
            inserted +=
                u64::from(store::shipping::insert_method_if_absent(&pool, id, &fields).await?);
        }
    }
    for (id, r) in demo_rates() {
        let rate = r
            .validate()
            .map_err(|e| anyhow::anyhow!("demo rate: {e:?}"))?;
        inserted += u64::from(store::tax::insert_rate_if_absent(&pool, id, &rate).await?);
    }
    pool.close().await;
    Ok(inserted)
}

/// Demo customers in the auth database and their delivered orders in the
/// orders database, each written through its own domain's pool.
async fn seed_history(
    settings: &Settings,
    products: &[crate::domain::catalog::demo::DemoProduct],
    size: SeedSize,
    seed: u64,
) -> anyhow::Result<(u64, u64)> {
    use crate::domain::orders::address::ShippingAddress;
    use crate::domain::orders::demo::demo_history;
    use crate::domain::orders::pricing::OrderLine;

    anyhow::ensure!(size.customers <= 100_000, "at most 100000 customers");
    anyhow::ensure!(
        size.orders_per_customer <= 100,
        "at most 100 orders per customer"
    );
    let (customers, orders) =
        demo_history(products, size.customers, size.orders_per_customer, seed);
    if customers.is_empty() {
        return Ok((0, 0));
    }
    // One hash for all demo customers: hashing thousands would take minutes.
    let hash = PasswordHasher::new()?.hash(DEMO_PASSWORD)?;
    let auth = store::database::lazy_pool(&settings.database, Domain::Auth)?;
    let mut customers_inserted = 0;
    for chunk in customers.chunks(DEMO_BATCH) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|c| (c.id, c.email.clone(), c.name.clone()))
            .collect();
        customers_inserted += store::auth::insert_customers_bulk(&auth, &rows, &hash).await?;
    }
    auth.close().await;

    let pool = store::database::lazy_pool(&settings.database, Domain::Orders)?;
    // A bar on a terminal (indicatif draws nothing when stderr is not one).
    let bar = indicatif::ProgressBar::new(orders.len() as u64).with_message("orders");
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>8} {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut orders_inserted = 0;
    // A transaction per batch: a batch is all or nothing, and seeding again
    // skips the orders that exist.
    for chunk in orders.chunks(ORDER_BATCH) {
        let built: Vec<(Vec<OrderLine>, ShippingAddress)> = chunk
            .iter()
            .map(|order| {
                let customer = &customers[order.customer];
                let lines: Vec<OrderLine> = order
                    .lines
                    .iter()
                    .map(|l| {
                        let p = &products[l.product];
                        // Demo orders buy each product's first variant.
                        let (variant_id, variant) = &p.variants[0];
                        OrderLine {
                            product_id: p.id,
                            variant_id: *variant_id,
                            name: p.fields.name.clone(),
                            sku: Some(variant.sku.clone()),
                            options: variant.options.clone(),
                            unit_price: variant.price,
                            quantity: l.quantity,
                            line_total: variant.price * i64::from(l.quantity),
                            discount: 0,
                            tax_rate_bp: 0,
                            tax: 0,
                        }
                    })
                    .collect();
                let address = ShippingAddress {
                    name: customer.name.clone(),
                    line1: format!("{} Demo Street", order.customer + 1),
                    line2: String::new(),
                    city: "Lyon".into(),
                    region: String::new(),
                    postal_code: "69001".into(),
                    country: "FR".into(),
                    phone: String::new(),
                };
                (lines, address)
            })
            .collect();
        let batch: Vec<(store::orders::NewOrder<'_>, chrono::DateTime<chrono::Utc>)> = chunk
            .iter()
            .zip(&built)
            .map(|(order, (lines, address))| {
                let total = lines.iter().map(|l| l.line_total).sum();
                let new = store::orders::NewOrder {
                    id: order.id,
                    user_id: Some(customers[order.customer].id),
                    email: None,
                    subtotal: total,
                    discount: 0,
                    // Past demo orders predate shipping and tax: no charge
                    // for either, as the orders placed before them.
                    shipping: 0,
                    tax: 0,
                    shipping_tax: 0,
                    prices_include_tax: false,
                    shipping_method: None,
                    total,
                    currency: "EUR",
                    promotion_code: None,
                    shipping_address: address,
                    lines,
                    // Demo lines take ids from the database.
                    line_ids: &[],
                    expires_at: order.placed_at,
                };
                (new, order.placed_at)
            })
            .collect();
        let mut tx = pool.begin().await?;
        orders_inserted += store::orders::insert_delivered_orders(&mut tx, &batch).await?;
        tx.commit().await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    pool.close().await;
    Ok((customers_inserted, orders_inserted))
}
