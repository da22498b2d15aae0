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
static CARTS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/carts");
static WEBHOOKS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/webhooks");
static NOTIFICATIONS_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/notifications");

/// PostgreSQL's error code for "database already exists".
const DUPLICATE_DATABASE: &str = "42P04";
/// How many times a transaction that lost a deadlock or serialization
/// conflict is run again before the failure is reported.
const CONTENTION_ATTEMPTS: u32 = 4;

/// The embedded migrations of one domain.
pub fn migrator(domain: Domain) -> &'static Migrator {
    match domain {
        Domain::Auth => &AUTH_MIGRATIONS,
        Domain::Catalog => &CATALOG_MIGRATIONS,
        Domain::Orders => &ORDERS_MIGRATIONS,
        Domain::Payments => &PAYMENTS_MIGRATIONS,
        Domain::Carts => &CARTS_MIGRATIONS,
        Domain::Webhooks => &WEBHOOKS_MIGRATIONS,
        Domain::Notifications => &NOTIFICATIONS_MIGRATIONS,
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
    if !database_exists(&mut conn, &name).await? {
        match sqlx::query(&format!("CREATE DATABASE {}", quoted(&name)))
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
    Ok(lazy_pool_with(settings, connect_options(settings, domain)?))
}

/// As [`lazy_pool`], with every commit made without waiting for the WAL
/// flush (`synchronous_commit = off`): for writes whose loss in a crash of
/// PostgreSQL itself costs nothing but doing them again. (A crash of
/// Emporium loses nothing committed either way.)
pub fn lazy_pool_without_flush(
    settings: &DatabaseSettings,
    domain: Domain,
) -> anyhow::Result<PgPool> {
    let options = connect_options(settings, domain)?.options([("synchronous_commit", "off")]);
    Ok(lazy_pool_with(settings, options))
}

fn lazy_pool_with(settings: &DatabaseSettings, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        // Short, so a database that is down answers 503 quickly instead of
        // holding requests until the actor call times out.
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        // No reaper task. sqlx 0.8's reaper can spin forever at 100% CPU
        // once its idle count underflows (launchbadge/sqlx#3645, fixed by
        // #4289 after 0.8.6), and it runs on the thread that made the
        // pool: here the one that must also stop the HTTP server. Seen in
        // the test suite as an instance that never stopped. The pools are
        // small and their connections are checked before each use, so
        // keeping idle ones open costs a few backends and nothing else.
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options)
}

/// PostgreSQL's error code for "object in use" (a database with sessions
/// cannot be renamed or copied; one that just closed may still have one).
const OBJECT_IN_USE: &str = "55006";

/// The template every database of `domain` is copied from: named after its
/// migrations, so a changed migration gets a new template.
fn template_name(domain: Domain) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for m in migrator(domain).iter() {
        hasher.update(m.version.to_le_bytes());
        hasher.update(&*m.checksum);
    }
    let digest = hasher.finalize();
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("emporium_template_{}_{short}", domain.name())
}

/// Runs `statement` on `conn`, again while its database is briefly in use.
async fn execute_when_free(conn: &mut PgConnection, statement: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        match sqlx::query(statement).execute(&mut *conn).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(OBJECT_IN_USE) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other.map(|_| ()).with_context(|| statement.to_owned()),
        }
    }
    anyhow::bail!("{statement}: the database stayed in use")
}

/// A database name as an SQL identifier: names cannot be bound as
/// parameters, so they are quoted instead.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether the server has a database called `name`.
async fn database_exists(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
}

/// Creates every domain database of `settings` as a copy of a migrated
/// template, made once per set of migrations and kept: much faster than
/// migrating each one, for harnesses that make many short-lived sets (the
/// test suite). The databases must not exist yet.
pub async fn create_from_templates(settings: &DatabaseSettings) -> anyhow::Result<()> {
    for domain in Domain::ALL {
        let options = connect_options(settings, domain)?;
        let name = options
            .get_database()
            .context("no database name")?
            .to_owned();
        let template = template_name(domain);
        let mut conn = PgConnection::connect_with(&options.clone().database("postgres")).await?;
        // One maker of a template at a time, across processes; it appears
        // under its name only once migrated.
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&template)
            .execute(&mut conn)
            .await?;
        if !database_exists(&mut conn, &template).await? {
            let building = format!("{template}_building");
            let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(&building));
            sqlx::query(&statement).execute(&mut conn).await?;
            sqlx::query(&format!("CREATE DATABASE {}", quoted(&building)))
                .execute(&mut conn)
                .await?;
            let mut fresh =
                PgConnection::connect_with(&options.clone().database(&building)).await?;
            migrator(domain)
                .run(&mut fresh)
                .await
                .with_context(|| format!("migrating the {} template", domain.name()))?;
            fresh.close().await.ok();
            let rename = format!(
                "ALTER DATABASE {} RENAME TO {}",
                quoted(&building),
                quoted(&template)
            );
            execute_when_free(&mut conn, &rename).await?;
        }
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&template)
            .execute(&mut conn)
            .await?;
        let create = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quoted(&name),
            quoted(&template)
        );
        execute_when_free(&mut conn, &create).await?;
        conn.close().await.ok();
    }
    Ok(())
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
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quoted(&name)
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await.ok();
    }
    Ok(())
}

/// What kind of failure a database error is, for deciding how to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server cannot be reached or is refusing work (down, restarting,
    /// pool exhausted): retry later, answer 503.
    Unavailable,
    /// A deadlock or serialization conflict with another transaction: the
    /// transaction may simply be run again.
    Contention,
    /// Anything else: a bug (bad SQL, a broken constraint) until proven
    /// otherwise.
    Other,
}

/// Classifies `e` by SQLSTATE class and by what sqlx reports.
pub fn classify(e: &sqlx::Error) -> FailureKind {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => FailureKind::Unavailable,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001" | "40P01") => FailureKind::Contention,
            // 08: connection exception; 57P0x: shutting down or starting up;
            // 53: insufficient resources (too many connections, disk full).
            Some(code)
                if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") =>
            {
                FailureKind::Unavailable
            }
            _ => FailureKind::Other,
        },
        _ => FailureKind::Other,
    }
}

/// Whether `e` (or anything it wraps) is a database failure a client should
/// retry: an outage or a conflict that outlived its retries.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(|e| classify(e) != FailureKind::Other)
    })
}

/// A statement's result that may break a named constraint, as
/// launchbadge's realworld example does it: the caller says which
/// constraint means what, once, beside the call.
pub trait OnConstraint<T> {
    /// A violation of `constraint` becomes `map()`; any other error becomes
    /// the caller's error as usual.
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        map: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> OnConstraint<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        map: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => map(),
            _ => E::from(e),
        })
    }
}

/// Runs `attempt` (one whole transaction) again when it loses a deadlock or
/// a serialization conflict, a bounded number of times with a short random
/// pause. Every statement that locks several rows should still lock them in
/// one global order; this is the net under that rule, not a substitute.
pub async fn retry_on_contention<T, E, F, Fut>(what: &'static str, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: AsSqlxError,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e)
                if tries < CONTENTION_ATTEMPTS
                    && e.as_sqlx().map(classify) == Some(FailureKind::Contention) =>
            {
                tracing::warn!(what, tries, "transaction lost a lock conflict; retrying");
                let pause =
                    rand::Rng::gen_range(&mut rand::thread_rng(), 1..=10u64 * u64::from(tries));
                tokio::time::sleep(Duration::from_millis(pause)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Errors that may carry a `sqlx::Error`, for [`retry_on_contention`].
pub trait AsSqlxError {
    /// The database error inside, if there is one.
    fn as_sqlx(&self) -> Option<&sqlx::Error>;

    /// Whether this is a database outage (or a conflict that outlived its
    /// retries) that a caller should answer as "unavailable, retry", even
    /// after it crosses into another domain.
    fn is_transient(&self) -> bool {
        self.as_sqlx()
            .is_some_and(|e| classify(e) != FailureKind::Other)
    }
}

impl AsSqlxError for sqlx::Error {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        Some(self)
    }
}

impl AsSqlxError for anyhow::Error {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        self.chain().find_map(|c| c.downcast_ref::<sqlx::Error>())
    }
}

/// Lets the transaction on `tx` commit without waiting for its WAL flush
/// (`SET LOCAL synchronous_commit = off`). Only for bookkeeping whose loss
/// in a database crash means work is done again, never lost: a job or
/// delivery claimed again under a new lease, an event handed on twice;
/// at-least-once delivery and idempotency keys make both safe.
pub async fn commit_without_flush(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_and_conflicts_are_told_apart_from_bugs() {
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut),
            FailureKind::Unavailable
        );
        assert_eq!(classify(&sqlx::Error::PoolClosed), FailureKind::Unavailable);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&sqlx::Error::Io(io)), FailureKind::Unavailable);
        assert_eq!(classify(&sqlx::Error::RowNotFound), FailureKind::Other);
        let wrapped = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("orders database");
        assert!(is_transient(&wrapped));
        assert!(!is_transient(&anyhow::anyhow!("a bug")));
    }
}
