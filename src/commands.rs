//! Operator commands that run without the HTTP edge.

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

/// What `seed-demo` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub categories: usize,
    pub products_inserted: u64,
}

/// Fills the catalog with the deterministic demo catalog for `seed`.
/// Running it again with the same seed inserts nothing new.
pub async fn seed_demo(
    settings: &Settings,
    products: usize,
    seed: u64,
) -> anyhow::Result<SeedReport> {
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
    let mut inserted = 0;
    for chunk in demo_products(products, seed).chunks(DEMO_BATCH) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|p| {
                let mut fields = p.fields.clone();
                fields.category_id = ids.get(&p.category_slug).copied();
                (p.id, fields)
            })
            .collect();
        inserted += store::catalog::insert_products_bulk(&pool, &rows).await?;
    }
    sqlx::query("ANALYZE products").execute(&pool).await?;
    pool.close().await;
    // A running instance must not keep serving its cached catalog.
    let cache = store::catalog_cache::CatalogCache::new(
        store::redis::pool(&settings.redis)?,
        &settings.database.prefix,
        std::time::Duration::from_millis(settings.redis.timeout_ms),
        settings.catalog.cache_ttl_secs,
    );
    if !cache.bump_generation().await {
        tracing::warn!("could not reach Redis to invalidate cached catalog responses");
    }
    Ok(SeedReport {
        categories: categories.len(),
        products_inserted: inserted,
    })
}
