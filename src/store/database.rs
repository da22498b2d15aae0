//! Creating each domain's database when missing, migrating it, and opening
//! the pool its actor will own.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::config::{DatabaseSettings, Domain};

static AUTH_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/auth");
static CATALOG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/catalog");
static ORDERS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/orders");
static PAYMENTS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/payments");

/// PostgreSQL's error code for "database already exists".
const DUPLICATE_DATABASE: &str = "42P04";
/// How long to wait for a database connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded migrations of one domain.
pub fn migrator(domain: Domain) -> &'static Migrator {
    match domain {
        Domain::Auth => &AUTH_MIGRATIONS,
        Domain::Catalog => &CATALOG_MIGRATIONS,
        Domain::Orders => &ORDERS_MIGRATIONS,
        Domain::Payments => &PAYMENTS_MIGRATIONS,
    }
}

/// Connection options of one domain's database.
pub fn connect_options(
    settings: &DatabaseSettings,
    domain: Domain,
) -> anyhow::Result<PgConnectOptions> {
    let url = settings.url_for(domain);
    let options = PgConnectOptions::from_str(&url)
        .with_context(|| format!("database URL for {} is malformed", domain.name()))?;
    Ok(options
        .application_name(&format!("emporium-{}", domain.name()))
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500)))
}

/// Creates the database named in `options` if it does not exist, by way of
/// the server's `postgres` maintenance database. Safe to race: a concurrent
/// creator's success counts as ours.
pub async fn ensure_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    let name = options
        .get_database()
        .context("database URL names no database")?
        .to_owned();
    let maintenance = options.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&maintenance)
        .await
        .context("connecting to PostgreSQL's maintenance database")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it instead.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e).with_context(|| format!("creating database {name}")),
        }
    }
    conn.close().await.ok();
    Ok(())
}

/// Creates (if needed) and migrates one domain's database, refusing a
/// database that belongs to another domain.
pub async fn prepare(settings: &DatabaseSettings, domain: Domain) -> anyhow::Result<()> {
    let options = connect_options(settings, domain)?;
    ensure_database(&options).await?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .with_context(|| format!("connecting to the {} database", domain.name()))?;
    let has_owner: bool =
        sqlx::query_scalar("SELECT to_regclass('public.service_info') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
    if has_owner {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT value FROM service_info WHERE key = 'domain'")
                .fetch_optional(&mut conn)
                .await?;
        if let Some(owner) = owner {
            anyhow::ensure!(
                owner == domain.name(),
                "the database configured for {} belongs to the {owner} domain",
                domain.name()
            );
        }
    }
    migrator(domain)
        .run(&mut conn)
        .await
        .with_context(|| format!("migrating the {} database", domain.name()))?;
    conn.close().await.ok();
    Ok(())
}

/// A pool for one domain. Connections open on first use, on the runtime of
/// the actor that owns the pool, so its I/O lives on that actor's arbiter.
pub fn lazy_pool(settings: &DatabaseSettings, domain: Domain) -> anyhow::Result<PgPool> {
    let options = connect_options(settings, domain)?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

/// Drops every database of a prefix (used by the test harness and
/// benchmarks to clean up after themselves).
pub async fn drop_databases(settings: &DatabaseSettings) -> anyhow::Result<()> {
    for domain in Domain::ALL {
        let options = connect_options(settings, domain)?;
        let name = options
            .get_database()
            .context("no database name")?
            .to_owned();
        let mut conn = PgConnection::connect_with(&options.clone().database("postgres")).await?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        conn.close().await.ok();
    }
    Ok(())
}
